"""Is an input (nearly) one of the images a run learned from? Then its score says nothing
about generalization, and the user should be told.

The run's training and validation images (its saved split manifest) are compared with the
audit's descriptor and exact pixel hash: identical pixels, or within the audit's near-duplicate
threshold, is a copy. Needs the run's dataset on this machine; without it there is nothing to
compare with, and `TrainingCopies.for_run` says so by returning None.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.data import audit
from core.data.discovery import DatasetError
from core.data.index import INDEX_IMAGE_SIZE, Dataset, open_dataset
from core.data.splits import load_split
from core.imaging.pixels import resize_square, to_grayscale
from core.runs.registry import RunInfo

LEARNED_ROLES = ("train", "val")


@dataclass(frozen=True)
class CopyMatch:
    """The training image an input copies."""

    path: str  # relative to the run's dataset
    role: str  # 'train' or 'val'
    distance: float  # the audit's descriptor distance; 0 for identical pixels
    exact: bool

    def describe(self) -> str:
        """One plain sentence for the user."""
        how = "identical to" if self.exact else "a near copy of"
        part = "training" if self.role == "train" else "validation"
        return (
            f"this image is {how} the run's {part} image {self.path}: its score says nothing "
            "about how the model does on new scans"
        )


def pixel_hash(pixels: np.ndarray) -> str:
    """The index's hash of decoded grayscale pixels (core.data.index)."""
    gray = to_grayscale(pixels)
    digest = hashlib.sha1(f"{gray.shape}".encode())
    digest.update(np.ascontiguousarray(gray).data)
    return digest.hexdigest()


def learned_roles(info: RunInfo, source: Dataset) -> np.ndarray:
    """Per image of the run's dataset: 'train' or 'val' when the run learned from it (its saved
    split manifest), else ''. Without a readable manifest: the official training part."""
    assert info.config is not None
    manifest = info.config.dataset.split_manifest
    try:
        roles = load_split(Path(manifest)) if manifest else None
    except (OSError, DatasetError):
        roles = None
    if roles is not None:
        by_path = dict(zip(roles["path"], roles["role"], strict=True))
        found = [by_path.get(path, "") for path in source.frame["path"]]
        return np.array([role if role in LEARNED_ROLES else "" for role in found])
    return np.where(source.frame["split"].to_numpy() == "train", "train", "")


@dataclass(frozen=True)
class TrainingCopies:
    """The descriptors and pixel hashes of the images a run learned from."""

    paths: np.ndarray
    roles: np.ndarray
    descriptors: np.ndarray = field(repr=False)  # (N, D) float32, unit norm
    hashes: dict[str, int] = field(repr=False)  # pixel hash -> row
    threshold: float = audit.DEFAULT_THRESHOLD

    @classmethod
    def for_run(cls, info: RunInfo, threshold: float | None = None) -> TrainingCopies | None:
        """The run's lookup, or None when its dataset is not on this machine."""
        if info.config is None or not Path(info.config.data.root).is_dir():
            return None
        try:
            source = open_dataset(Path(info.config.data.root))
        except DatasetError:
            return None
        roles = learned_roles(info, source)
        rows = np.flatnonzero(roles != "")
        hashes = source.frame["pixel_hash"].to_numpy()[rows]
        return cls(
            paths=source.frame["path"].to_numpy()[rows],
            roles=roles[rows],
            descriptors=audit.dataset_descriptors(source)[rows],
            hashes={value: row for row, value in enumerate(hashes)},
            threshold=audit.DEFAULT_THRESHOLD if threshold is None else threshold,
        )

    def find(self, pixels: np.ndarray) -> CopyMatch | None:
        """The training image `pixels` copy, or None when they copy none."""
        if len(self.paths) == 0:
            return None
        exact = self.hashes.get(pixel_hash(pixels))
        if exact is not None:
            return CopyMatch(str(self.paths[exact]), str(self.roles[exact]), 0.0, True)
        query = audit.slice_descriptor(resize_square(pixels, INDEX_IMAGE_SIZE))
        distances = 1.0 - self.descriptors @ query
        row = int(distances.argmin())
        if distances[row] > self.threshold:
            return None
        return CopyMatch(str(self.paths[row]), str(self.roles[row]), float(distances[row]), False)
