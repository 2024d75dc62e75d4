"""Seeded, stratified train/validation splits saved as manifests.

Every run names the manifest it used, so it can say exactly which images it trained and
validated on. The official test split is never part of training or model selection.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, train_test_split

from core.atomic_files import write_bytes_atomic
from core.data.discovery import DatasetError
from core.data.index import Dataset

ROLES = ("train", "val", "test")


@dataclass(frozen=True)
class SplitManifest:
    """Which image plays which role (train, val, test), saved as a CSV file."""

    path: Path
    seed: int
    val_fraction: float
    grouped: bool
    frame: pd.DataFrame = field(repr=False)

    @property
    def digest(self) -> str:
        """SHA-1 of the manifest file's content (recorded by runs)."""
        return hashlib.sha1(self.path.read_bytes()).hexdigest()[:16]

    def positions(self, role: str) -> np.ndarray:
        """Row positions in the dataset index of the images with `role`."""
        return np.flatnonzero(self.frame["role"].to_numpy() == role)


def _holdout_mask(
    labels: np.ndarray, fraction: float, seed: int, groups: np.ndarray | None
) -> np.ndarray:
    """Boolean mask of a stratified hold-out; groups (near-duplicate sets) never straddle it."""
    positions = np.arange(len(labels))
    if groups is None:
        _, held_out = train_test_split(
            positions, test_size=fraction, stratify=labels, random_state=seed
        )
    else:
        folds = max(2, round(1 / fraction))
        splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        _, held_out = next(splitter.split(positions, labels, groups))
    mask = np.zeros(len(labels), dtype=bool)
    mask[held_out] = True
    return mask


def _assign_roles(
    dataset: Dataset, val_fraction: float, seed: int, groups: np.ndarray | None
) -> np.ndarray:
    splits = dataset.frame["split"].to_numpy()
    labels = dataset.frame["label"].to_numpy()
    roles = splits.astype(object).copy()
    if "val" in set(splits):
        return roles  # the dataset ships its own validation split: use it as is
    pool = np.flatnonzero(splits == "train")
    if "test" not in set(splits):
        # A flat folder has no official test split: hold one out first, the same way.
        pool_groups = None if groups is None else groups[pool]
        test_mask = _holdout_mask(labels[pool], val_fraction, seed + 1, pool_groups)
        roles[pool[test_mask]] = "test"
        pool = pool[~test_mask]
    pool_groups = None if groups is None else groups[pool]
    val_mask = _holdout_mask(labels[pool], val_fraction, seed, pool_groups)
    roles[pool[val_mask]] = "val"
    return roles


def make_split(
    dataset: Dataset,
    *,
    seed: int = 0,
    val_fraction: float = 0.15,
    groups: Sequence[int] | np.ndarray | None = None,
) -> SplitManifest:
    """Split the training part into train/val (stratified, seeded) and save the manifest."""
    if not 0.01 <= val_fraction <= 0.5:
        raise ValueError(f"validation fraction {val_fraction} is outside 0.01..0.5")
    group_array = None if groups is None else np.asarray(groups)
    if group_array is not None and len(group_array) != len(dataset.frame):
        raise ValueError("groups must give one group id per indexed image")
    try:
        roles = _assign_roles(dataset, val_fraction, seed, group_array)
    except ValueError as error:
        raise DatasetError(f"cannot split {dataset.root} for validation: {error}") from error
    frame = pd.DataFrame(
        {"path": dataset.frame["path"], "label": dataset.frame["label"], "role": roles}
    )
    kind = "grouped" if group_array is not None else "plain"
    name = f"split-seed{seed}-val{round(val_fraction * 100)}-{kind}-{dataset.fingerprint}.csv"
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    path = dataset.cache_dir() / "splits" / name
    write_bytes_atomic(path, buffer.getvalue().encode("utf-8"))
    return SplitManifest(path, seed, val_fraction, group_array is not None, frame)


def load_split(path: Path) -> pd.DataFrame:
    """Read a saved split manifest (path, label, role)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(frame.columns) != ["path", "label", "role"] or not set(frame["role"]) <= set(ROLES):
        raise DatasetError(f"{path}: not a split manifest")
    return frame
