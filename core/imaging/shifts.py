"""Scanner- and site-like shifts of a decoded slice, at graded severities, for stress tests.

Each shift turns a uint8 grayscale image into another of the same size; severity 0 is always
the identity, and a higher severity moves the image further from the original. Shifts are
applied to the decoded image, before a run's own preprocessing, as another hospital's scanner
would have changed it. Randomness (noise, which way a scale or gamma goes) comes from a
generator seeded per image, so a stress test is repeatable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from core.imaging.pixels import to_grayscale

ShiftFunction = Callable[[np.ndarray, float, np.random.Generator], np.ndarray]


@dataclass(frozen=True)
class Shift:
    """A named shift, its severities (the first is 0, the identity) and what they mean."""

    name: str
    description: str
    unit: str
    severities: tuple[float, ...]
    moderate: float  # the severity the robustness targets are stated at
    apply: ShiftFunction


def _rotate(image: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    angle = degrees if rng.random() < 0.5 else -degrees
    height, width = image.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)


def _scale(image: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    # Zoom in (a tighter field of view, cropped) or out (a wider one, black border) by `amount`.
    factor = 1.0 + amount if rng.random() < 0.5 else 1.0 - amount
    height, width = image.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0.0, factor)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)


def _gaussian_noise(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noise = rng.normal(0.0, sigma * 255.0, image.shape)
    return np.clip(image.astype(np.float64) + noise, 0, 255).round().astype(np.uint8)


def _salt_and_pepper(image: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    out = image.copy()
    hit = rng.random(image.shape) < fraction
    out[hit] = np.where(rng.random(int(hit.sum())) < 0.5, 0, 255).astype(np.uint8)
    return out


def _blur(image: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma)


def _gamma(image: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    # Another windowing: gamma = 1 + strength (darker mid-tones) or 1 / (1 + strength).
    gamma = 1.0 + strength if rng.random() < 0.5 else 1.0 / (1.0 + strength)
    table = np.clip(((np.arange(256) / 255.0) ** gamma) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(image, table)


def _low_resolution(image: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    height, width = image.shape
    small = (max(1, round(width / factor)), max(1, round(height / factor)))
    reduced = cv2.resize(image, small, interpolation=cv2.INTER_AREA)
    return cv2.resize(reduced, (width, height), interpolation=cv2.INTER_LINEAR)


def _contrast(image: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    # A narrower or wider intensity window: contrast around the mean scaled by 1 +- amount.
    factor = 1.0 + amount if rng.random() < 0.5 else 1.0 - amount
    mean = float(image.mean())
    return (
        np.clip((image.astype(np.float64) - mean) * factor + mean, 0, 255).round().astype(np.uint8)
    )


def _brightness(image: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    offset = amount * 255.0 if rng.random() < 0.5 else -amount * 255.0
    return np.clip(image.astype(np.float64) + offset, 0, 255).round().astype(np.uint8)


def _jpeg(image: np.ndarray, loss: float, rng: np.random.Generator) -> np.ndarray:
    # Severity is the quality given up: 60 means JPEG quality 40.
    quality = round(100 - loss)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not JPEG-encode the image")
    return cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)


SHIFTS: dict[str, Shift] = {
    shift.name: shift
    for shift in (
        Shift("rotation", "rotated by this many degrees, either way", "degrees",
              (0, 5, 15, 30), 15, _rotate),
        Shift("scale", "zoomed in or out by this fraction", "fraction", (0, 0.1, 0.2, 0.3), 0.2,
              _scale),
        Shift("gaussian_noise", "Gaussian noise of this standard deviation (of full scale)",
              "sigma", (0, 0.02, 0.05, 0.1), 0.05, _gaussian_noise),
        Shift("salt_and_pepper", "this fraction of pixels set to black or white", "fraction",
              (0, 0.01, 0.02, 0.05), 0.02, _salt_and_pepper),
        Shift("blur", "Gaussian blur of this sigma", "pixels", (0, 0.5, 1, 2), 1, _blur),
        Shift("gamma", "gamma of 1 + s or 1 / (1 + s), either way", "s", (0, 0.2, 0.4, 0.8),
              0.4, _gamma),
        Shift("contrast", "contrast scaled by 1 + s or 1 - s", "s", (0, 0.2, 0.4, 0.6), 0.4,
              _contrast),
        Shift("brightness", "brightness moved by this fraction of full scale, either way",
              "fraction", (0, 0.05, 0.1, 0.2), 0.1, _brightness),
        Shift("low_resolution", "down-sampled by this factor, then up again", "factor",
              (1, 2, 3, 4), 2, _low_resolution),
        Shift("jpeg", "JPEG re-compressed at quality 100 minus this", "quality lost",
              (0, 30, 60, 85), 60, _jpeg),
    )
}  # fmt: skip
"""Every shift by name; `low_resolution`'s identity is factor 1, the others' severity 0."""


def identity_severity(shift: Shift) -> float:
    """The severity at which `shift` leaves the image as it is (its first one)."""
    return shift.severities[0]


def apply_shift(image: np.ndarray, name: str, severity: float, seed: int = 0) -> np.ndarray:
    """`image` (any decoded pixels) as grayscale uint8 under shift `name` at `severity`."""
    if name not in SHIFTS:
        raise ValueError(f"unknown shift {name!r}; choose from {', '.join(SHIFTS)}")
    shift = SHIFTS[name]
    gray = to_grayscale(image)
    if severity == identity_severity(shift):
        return gray
    if severity < min(shift.severities) or severity > 10 * max(shift.severities):
        raise ValueError(f"severity {severity} of {name} is outside its range")
    return shift.apply(gray, float(severity), np.random.default_rng(seed))
