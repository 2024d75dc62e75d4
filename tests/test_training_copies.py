"""Inputs that copy an image the run learned from are called out: in `predict` and on Classify."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from core.data import audit
from core.data.index import open_dataset
from core.imaging.reader import read_image
from core.inference.training_copies import TrainingCopies, learned_roles
from core.runs.registry import load_run
from core.training.fit import fit
from tests.test_cli import run_cli
from tests.test_training import tiny_request


@pytest.fixture(scope="module")
def trained(demo_dataset_dir: Path) -> str:
    return fit(tiny_request(demo_dataset_dir, epochs=1)).run_id


def learned_image(run_id: str, demo_dataset_dir: Path) -> Path:
    """An image the run trained on, by its saved split manifest."""
    info = load_run(run_id)
    copies = TrainingCopies.for_run(info)
    assert copies is not None
    return demo_dataset_dir / copies.paths[np.flatnonzero(copies.roles == "train")[0]]


def test_copies_of_learned_images_are_found_and_new_images_are_not(
    trained: str, demo_dataset_dir: Path
) -> None:
    info = load_run(trained)
    copies = TrainingCopies.for_run(info)
    assert copies is not None and set(copies.roles) == {"train", "val"}
    source = learned_image(trained, demo_dataset_dir)
    pixels = read_image(source).pixels
    exact = copies.find(pixels)
    assert (
        exact is not None
        and exact.exact
        and exact.path == str(source.relative_to(demo_dataset_dir))
    )
    brighter = np.clip(pixels.astype(int) + 6, 0, 255).astype(np.uint8)
    near = copies.find(brighter)
    assert near is not None and not near.exact and 0 < near.distance <= copies.threshold
    assert "near copy of the run's training image" in near.describe()
    # A test image the audit calls duplicate-free is no copy of a training image.
    dataset = open_dataset(demo_dataset_dir)
    report = audit.audit_report(dataset)
    fresh = report.duplicate_free_test["path"].iloc[0]
    assert copies.find(read_image(demo_dataset_dir / fresh).pixels) is None
    roles = learned_roles(info, dataset)
    assert (roles[dataset.frame["split"].to_numpy() == "test"] == "").all()


def test_a_run_whose_dataset_is_gone_has_no_lookup(trained: str, tmp_path: Path) -> None:
    copy = tmp_path / "moved_run"
    shutil.copytree(load_run(trained).path, copy)
    config = json.loads((copy / "config.json").read_text())
    config["data"]["root"] = str(tmp_path / "not_here")
    (copy / "config.json").write_text(json.dumps(config))
    assert TrainingCopies.for_run(load_run(copy)) is None


def test_predict_warns_about_a_training_image(trained: str, demo_dataset_dir: Path) -> None:
    source = learned_image(trained, demo_dataset_dir)
    result = run_cli("predict", trained, str(source), "--json")
    assert result.returncode == 0, result.stderr
    [entry] = json.loads(result.stdout)
    assert entry["training_copy"]["exact"] is True
    assert any("identical to the run's training image" in w for w in entry["warnings"])
    fresh = sorted((demo_dataset_dir / "Testing" / "pituitary").glob("*.png"))[-1]
    other = json.loads(run_cli("predict", trained, str(fresh), "--json").stdout)
    assert other[0]["training_copy"] is None or other[0]["training_copy"]["distance"] <= 0.05


def test_classify_says_when_an_upload_is_a_training_image(
    app: AppTest, trained: str, demo_dataset_dir: Path
) -> None:
    source = learned_image(trained, demo_dataset_dir)
    app.run()
    app.switch_page("app_pages/classify.py").run()
    runs = app.selectbox(key="classify_run")
    runs.select_index(next(i for i, label in enumerate(runs.options) if trained in label)).run()
    app.get("file_uploader")[0].set_value([("copy.png", source.read_bytes(), "image/png")]).run()
    assert not app.exception
    assert any("identical to the run's training image" in w.value for w in app.warning)
