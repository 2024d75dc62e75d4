"""The images a run trains and validates on: dataset, split manifest, optional subset, pixels."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.config import DataConfig
from core.data import audit, splits
from core.data.image_cache import load_images
from core.data.index import Dataset, open_dataset
from core.events import Events


@dataclass(frozen=True)
class TrainingData:
    """Pixels and labels of the training and validation images of one run."""

    dataset: Dataset
    manifest: splits.SplitManifest
    classes: tuple[str, ...]
    train_positions: np.ndarray = field(repr=False)
    val_positions: np.ndarray = field(repr=False)
    images: torch.Tensor = field(repr=False)  # (N, S, S) uint8, every indexed image
    labels: torch.Tensor = field(repr=False)  # (N,) int64 class index
    # The audit the grouped split was built from (None for an ungrouped split), kept so that
    # evaluation reuses it instead of building it again.
    audit_report: audit.AuditReport | None = field(default=None, repr=False)

    def subset(self, role: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Images and labels of 'train' or 'val'."""
        positions = torch.from_numpy(
            self.train_positions if role == "train" else self.val_positions
        )
        return self.images[positions], self.labels[positions]

    def describe(self) -> dict[str, object]:
        """What a run records about its data: manifest, counts, fingerprint."""
        return {
            "root": str(self.dataset.root),
            "synthetic": self.dataset.synthetic,
            "fingerprint": self.dataset.fingerprint,
            "split_manifest": str(self.manifest.path),
            "split_manifest_digest": self.manifest.digest,
            "grouped_split": self.manifest.grouped,
            "train_images": len(self.train_positions),
            "val_images": len(self.val_positions),
        }


def _limit_per_class(
    positions: np.ndarray, labels: np.ndarray, per_class: int, seed: int
) -> np.ndarray:
    """At most `per_class` positions of each class, chosen with a seed, in index order."""
    generator = np.random.default_rng(seed)
    kept = []
    for label in np.unique(labels[positions]):
        members = positions[labels[positions] == label]
        kept.append(generator.permutation(members)[:per_class])
    return np.sort(np.concatenate(kept)) if kept else positions


def prepare_training_data(config: DataConfig, events: Events | None = None) -> TrainingData:
    """Open the dataset, split it (seeded, stratified, grouped) and load its pixels."""
    dataset = open_dataset(Path(config.root), events)
    report = audit.audit_report(dataset, events=events) if config.grouped_split else None
    manifest = splits.make_split(
        dataset,
        seed=config.split_seed,
        val_fraction=config.val_fraction,
        groups=None if report is None else report.groups,
    )
    class_index = {label: index for index, label in enumerate(dataset.classes)}
    labels = dataset.frame["label"].map(class_index).to_numpy(dtype=np.int64).copy()
    train_positions, val_positions = manifest.positions("train"), manifest.positions("val")
    if config.subset_per_class is not None:
        per_class = config.subset_per_class
        val_per_class = max(2, round(per_class * config.val_fraction / (1 - config.val_fraction)))
        train_positions = _limit_per_class(train_positions, labels, per_class, config.split_seed)
        val_positions = _limit_per_class(val_positions, labels, val_per_class, config.split_seed)
    if len(val_positions) == 0 or len(train_positions) == 0:
        raise ValueError("the split left no training or no validation images; use more images")
    images = load_images(dataset, config.image_size, events)
    return TrainingData(
        dataset=dataset,
        manifest=manifest,
        classes=dataset.classes,
        train_positions=train_positions,
        val_positions=val_positions,
        images=torch.from_numpy(images),
        labels=torch.from_numpy(labels),
        audit_report=report,
    )
