"""Seeded, stratified train/validation split manifests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.data import splits
from core.data.index import Dataset, open_dataset
from tests.test_data import make_kaggle, write_image


@pytest.fixture
def dataset(tmp_path: Path) -> Dataset:
    return open_dataset(make_kaggle(tmp_path / "ds", per_class=40, classes=("a", "b", "c")))


def test_same_seed_gives_the_same_manifest_file(dataset: Dataset) -> None:
    first = splits.make_split(dataset, seed=3)
    first_bytes = first.path.read_bytes()
    second = splits.make_split(dataset, seed=3)
    assert second.path == first.path
    assert second.path.read_bytes() == first_bytes
    other = splits.make_split(dataset, seed=4)
    assert not other.frame["role"].equals(first.frame["role"])


def test_split_is_stratified_and_never_touches_the_test_split(dataset: Dataset) -> None:
    manifest = splits.make_split(dataset, seed=0, val_fraction=0.25)
    frame = manifest.frame.assign(split=dataset.frame["split"])
    assert (frame.loc[frame["split"] == "test", "role"] == "test").all()
    assert set(frame.loc[frame["split"] == "train", "role"]) == {"train", "val"}
    per_class_val = frame[frame["role"] == "val"].groupby("label").size()
    assert per_class_val.to_dict() == {"a": 10, "b": 10, "c": 10}
    assert manifest.positions("val").tolist() == np.flatnonzero(frame["role"] == "val").tolist()
    reloaded = splits.load_split(manifest.path)
    assert reloaded["role"].tolist() == manifest.frame["role"].tolist()
    assert len(manifest.digest) == 16


def test_grouped_split_keeps_each_group_on_one_side(dataset: Dataset) -> None:
    groups = np.arange(len(dataset.frame)) // 4  # sets of four images that must stay together
    manifest = splits.make_split(dataset, seed=1, val_fraction=0.2, groups=groups)
    roles = manifest.frame["role"].to_numpy()
    training_part = dataset.frame["split"].to_numpy() == "train"
    for group in np.unique(groups[training_part]):
        assert len(set(roles[training_part & (groups == group)])) == 1
    assert manifest.grouped


def test_flat_dataset_gets_a_held_out_test_role(tmp_path: Path) -> None:
    for label in ("x", "y"):
        for number in range(20):
            write_image(tmp_path / label / f"{number}.png", number + (100 if label == "y" else 0))
    manifest = splits.make_split(open_dataset(tmp_path), seed=0, val_fraction=0.2)
    counts = manifest.frame.groupby(["role", "label"]).size().to_dict()
    assert counts[("test", "x")] == 4 and counts[("val", "y")] >= 3


def test_shipped_validation_split_is_kept(tmp_path: Path) -> None:
    root = make_kaggle(tmp_path / "ds")
    for label in ("a", "b"):
        write_image(root / "Validation" / label / "v.png", 500 + len(label))
    manifest = splits.make_split(open_dataset(root))
    roles = manifest.frame.set_index("path")["role"]
    assert roles["Validation/a/v.png"] == "val"
    assert (roles[roles.index.str.startswith("Training/")] == "train").all()


def test_bad_fraction_is_refused(dataset: Dataset) -> None:
    with pytest.raises(ValueError, match="outside"):
        splits.make_split(dataset, val_fraction=0.9)
