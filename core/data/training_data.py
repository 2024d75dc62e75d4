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


def nested_sample(
    positions: np.ndarray,
    labels: np.ndarray,
    *,
    per_class: int | None = None,
    fraction: float | None = None,
    seed: int = 0,
    class_names: tuple[str, ...] = (),
    keep_smaller: bool = False,
) -> np.ndarray:
    """A stratified sample of `positions`: `per_class` images of each class, or `fraction` of
    each (at least one), in index order.

    Samples are nested: for one seed, each class's images are put in one seeded order and the
    sample is its first images, so a smaller sample is always inside a larger one. A class with
    fewer than `per_class` images is a ValueError, or kept whole with `keep_smaller`.
    """
    if (per_class is None) == (fraction is None):
        raise ValueError("give either images per class or a fraction")
    if per_class is not None and per_class < 1:
        raise ValueError("a training-set size needs at least 1 image per class")
    if fraction is not None and not 0.0 < fraction <= 1.0:
        raise ValueError(f"a training-set fraction must be in (0, 1], not {fraction}")
    generator = np.random.default_rng(seed)
    kept = []
    for label in np.unique(labels[positions]):
        members = positions[labels[positions] == label]
        ordered = generator.permutation(members)  # drawn whatever the size: nesting
        count = per_class if per_class is not None else max(1, round(fraction * len(members)))
        if count > len(members) and not keep_smaller:
            name = class_names[label] if label < len(class_names) else str(label)
            raise ValueError(
                f"a training-set size of {count} images per class is larger than class "
                f"{name} ({len(members)} training images)"
            )
        kept.append(ordered[:count])
    return np.sort(np.concatenate(kept)) if kept else positions


@dataclass(frozen=True)
class TrainingPart:
    """The dataset split for training, before any pixel is decoded."""

    dataset: Dataset
    manifest: splits.SplitManifest
    labels: np.ndarray = field(repr=False)  # (N,) class index of every indexed image
    audit_report: audit.AuditReport | None = field(default=None, repr=False)

    def class_counts(self, role: str = "train") -> dict[str, int]:
        """Images per class with `role` (every class listed, in the dataset's order)."""
        counts = np.bincount(
            self.labels[self.manifest.positions(role)], minlength=len(self.dataset.classes)
        )
        return dict(zip(self.dataset.classes, counts.tolist(), strict=True))


def split_training_part(config: DataConfig, events: Events | None = None) -> TrainingPart:
    """Open the dataset and split it (seeded, stratified, grouped by the audit's near-duplicate
    groups when `config.grouped_split`)."""
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
    return TrainingPart(dataset, manifest, labels, report)


def prepare_training_data(config: DataConfig, events: Events | None = None) -> TrainingData:
    """Open the dataset, split it (seeded, stratified, grouped) and load its pixels."""
    part = split_training_part(config, events)
    dataset, manifest, labels, report = part.dataset, part.manifest, part.labels, part.audit_report
    train_positions, val_positions = manifest.positions("train"), manifest.positions("val")
    if config.subset_per_class is not None:
        per_class = config.subset_per_class
        val_per_class = max(2, round(per_class * config.val_fraction / (1 - config.val_fraction)))
        train_positions = nested_sample(
            train_positions, labels, per_class=per_class, seed=config.split_seed, keep_smaller=True
        )
        val_positions = nested_sample(
            val_positions, labels, per_class=val_per_class, seed=config.split_seed,
            keep_smaller=True,
        )  # fmt: skip
    if config.train_per_class is not None or config.train_fraction is not None:
        train_positions = nested_sample(
            train_positions,
            labels,
            per_class=config.train_per_class,
            fraction=config.train_fraction,
            seed=config.sample_seed,
            class_names=dataset.classes,
        )
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
