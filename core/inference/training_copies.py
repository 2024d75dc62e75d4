"""Is an input (nearly) one of the images a run learned from? Then its score says nothing
about generalization, and the user should be told.

The run's training and validation images (its saved split manifest) are compared with the
audit's descriptor and exact pixel hash: identical pixels, or within the audit's near-duplicate
threshold, is a copy. Needs the run's dataset on this machine; without it there is nothing to
compare with, and `TrainingCopies.for_run` says so by returning None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.data import audit
from core.data.discovery import DatasetError
from core.data.index import INDEX_IMAGE_SIZE, Dataset, open_dataset, pixel_hash
from core.data.splits import load_split
from core.events import Events
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
    def for_run(
        cls, info: RunInfo, threshold: float | None = None, events: Events | None = None
    ) -> TrainingCopies | None:
        """The run's lookup, or None when its dataset is not on this machine."""
        if info.config is None or not Path(info.config.data.root).is_dir():
            return None
        try:
            source = open_dataset(Path(info.config.data.root), events)
        except DatasetError:
            return None
        roles = learned_roles(info, source)
        rows = np.flatnonzero(roles != "")
        hashes = source.frame["pixel_hash"].to_numpy()[rows]
        return cls(
            paths=source.frame["path"].to_numpy()[rows],
            roles=roles[rows],
            descriptors=audit.dataset_descriptors(source, events)[rows],
            hashes={value: row for row, value in enumerate(hashes)},
            threshold=audit.DEFAULT_THRESHOLD if threshold is None else threshold,
        )

    def match(self, descriptors: np.ndarray, hashes: Sequence[str]) -> pd.DataFrame:
        """Per query image (its audit descriptor and pixel hash): the closest image the run
        learned from (`source_path`, `source_role`), the `distance` (0 for identical pixels),
        whether the pixels are identical (`exact`) and whether it is a `copy`."""
        count = len(hashes)
        if len(self.paths) == 0:
            empty = np.full(count, "", dtype=object)
            return pd.DataFrame(
                {"source_path": empty, "source_role": empty, "distance": np.full(count, 2.0),
                 "exact": np.zeros(count, dtype=bool), "copy": np.zeros(count, dtype=bool)}
            )  # fmt: skip
        nearest, distance = audit.nearest_matches(descriptors, self.descriptors)
        exact = np.array([self.hashes.get(one, -1) for one in hashes], dtype=np.int64)
        nearest = np.where(exact >= 0, exact, nearest)
        distance = np.where(exact >= 0, 0.0, distance)
        return pd.DataFrame(
            {
                "source_path": self.paths[nearest],
                "source_role": self.roles[nearest],
                "distance": distance,
                "exact": exact >= 0,
                "copy": distance <= self.threshold,
            }
        )

    def find(self, pixels: np.ndarray) -> CopyMatch | None:
        """The training image `pixels` copy, or None when they copy none."""
        query = audit.slice_descriptor(resize_square(pixels, INDEX_IMAGE_SIZE))
        row = self.match(query[None, :], [pixel_hash(to_grayscale(pixels))]).iloc[0]
        if not row["copy"]:
            return None
        return CopyMatch(
            str(row["source_path"]),
            str(row["source_role"]),
            float(row["distance"]),
            bool(row["exact"]),
        )
