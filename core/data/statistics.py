"""Dataset statistics shown on the Dataset page: balance, sizes, intensities, gallery samples."""

from __future__ import annotations

import numpy as np
import pandas as pd


def counts_table(counts: dict[str, dict[str, int]]) -> pd.DataFrame:
    """Classes as rows, splits as columns, with totals."""
    table = pd.DataFrame(counts).fillna(0).astype(int)
    table["total"] = table.sum(axis=1)
    table.loc["total"] = table.sum(axis=0)
    return table


def imbalance_statement(counts: dict[str, dict[str, int]]) -> str:
    """One sentence on class balance per split: largest/smallest class and their ratio."""
    parts = []
    for split, per_class in counts.items():
        nonzero = {label: count for label, count in per_class.items() if count > 0}
        if not nonzero:
            continue
        largest = max(nonzero, key=nonzero.__getitem__)
        smallest = min(nonzero, key=nonzero.__getitem__)
        ratio = nonzero[largest] / nonzero[smallest]
        verdict = "balanced" if ratio < 1.5 else "imbalanced"
        parts.append(
            f"{split}: {verdict}, largest class {largest} ({nonzero[largest]}) is "
            f"{ratio:.2f}x the smallest, {smallest} ({nonzero[smallest]})"
        )
    return "; ".join(parts) + "."


def size_table(frame: pd.DataFrame) -> pd.DataFrame:
    """How many images have each width x height, most common first."""
    sizes = frame["width"].astype(str) + " x " + frame["height"].astype(str)
    return sizes.value_counts().rename_axis("size (w x h)").reset_index(name="images")


def mode_table(frame: pd.DataFrame) -> pd.DataFrame:
    """How many images have each file format, colour mode and channel count."""
    grouped = frame.groupby(["format", "mode", "channels"]).size()
    return grouped.reset_index(name="images").sort_values("images", ascending=False)


def class_intensity_histograms(
    images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...], per_class: int = 300
) -> dict[str, np.ndarray]:
    """Fraction of pixels at each grey level, per class (on a fixed random sample of images)."""
    generator = np.random.default_rng(0)
    histograms = {}
    for label in classes:
        positions = np.flatnonzero(labels == label)
        if len(positions) > per_class:
            positions = generator.choice(positions, per_class, replace=False)
        counts = np.bincount(images[positions].ravel(), minlength=256).astype(np.float64)
        histograms[label] = counts / max(counts.sum(), 1.0)
    return histograms


def gallery_sample(
    frame: pd.DataFrame, *, split: str, label: str | None, seed: int, count: int
) -> np.ndarray:
    """Row positions of a seeded random sample of images of one split (and class)."""
    mask = frame["split"].to_numpy() == split
    if label is not None:
        mask &= frame["label"].to_numpy() == label
    positions = np.flatnonzero(mask)
    if len(positions) <= count:
        return positions
    return np.sort(np.random.default_rng(seed).choice(positions, count, replace=False))
