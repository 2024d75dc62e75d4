"""Does an input look like the images a run was trained on? Cheap statistics, clear warnings.

At training time the run records, for a few per-image statistics, the range that 99% of its
training images fall in. At prediction time an image outside those ranges gets a warning
instead of a silently confident answer (a photo, a CT, an inverted or cropped slice...).
"""

from __future__ import annotations

import numpy as np

from core.imaging.pixels import to_grayscale

STATISTICS = {
    "mean intensity": "average brightness (0-255)",
    "contrast": "standard deviation of brightness",
    "dark background": "fraction of near-black pixels",
}
LOW_PERCENTILE, HIGH_PERCENTILE = 0.5, 99.5
COLOUR_TOLERANCE = 12.0  # mean absolute difference between colour channels, in grey levels


def image_statistics(gray: np.ndarray) -> dict[str, float]:
    """The per-image statistics, for a grayscale uint8 image."""
    values = gray.astype(np.float32)
    return {
        "mean intensity": float(values.mean()),
        "contrast": float(values.std()),
        "dark background": float((gray < 16).mean()),
    }


def training_ranges(images: np.ndarray) -> dict[str, list[float]]:
    """[low, high] of each statistic over training images (N, H, W) uint8, 0.5-99.5 percentile."""
    table = [image_statistics(image) for image in images]
    ranges = {}
    for name in STATISTICS:
        values = np.array([row[name] for row in table])
        low, high = np.percentile(values, [LOW_PERCENTILE, HIGH_PERCENTILE])
        ranges[name] = [round(float(low), 4), round(float(high), 4)]
    return ranges


def unfamiliar_reasons(
    pixels: np.ndarray, ranges: dict[str, tuple[float, float]] | None
) -> list[str]:
    """Why `pixels` look unlike the training images (empty when they look alike)."""
    reasons = []
    if pixels.ndim == 3:
        channels = pixels.astype(np.float32)
        spread = float(np.abs(channels - channels.mean(axis=2, keepdims=True)).mean())
        if spread > COLOUR_TOLERANCE:
            reasons.append(
                "a colour image: MRI slices are grayscale; is this a photo or a screenshot?"
            )
    if ranges:
        statistics = image_statistics(to_grayscale(pixels))
        for name, (low, high) in ranges.items():
            value = statistics.get(name)
            if value is not None and not low <= value <= high:
                reasons.append(
                    f"{STATISTICS.get(name, name)} {value:.2f} is outside the training images' "
                    f"range {low:.2f}-{high:.2f}"
                )
    return reasons
