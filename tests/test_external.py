"""External test sets: a labelled folder from elsewhere, classes matched by name or map,
copies of the run's own images excluded, results stored and reused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.evaluation import external
from core.evaluation.evaluate import EvaluationError, evaluate_run
from core.evaluation.metrics import accuracy
from core.imaging.reader import read_image
from core.inference.predictor import Predictor
from core.runs.registry import load_run
from core.training.fit import fit
from tests.test_cli import run_cli
from tests.test_training import tiny_request

COPIED = 3  # training images copied into the external set


@pytest.fixture(scope="module")
def trained(demo_dataset_dir: Path) -> str:
    run_id = fit(tiny_request(demo_dataset_dir, epochs=2)).run_id
    evaluate_run(run_id, bootstrap_samples=0)
    return run_id


def _images(root: Path, split: str, label: str, count: int) -> list[Path]:
    return sorted((root / split / label).iterdir())[:count]


@pytest.fixture(scope="module")
def external_folder(demo_dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_external_folder(demo_dataset_dir, tmp_path_factory.mktemp("external"))


def make_external_folder(demo_dataset_dir: Path, parent: Path) -> Path:
    """Demo test images under other class names, an unknown class, copies of training images
    (byte-identical, re-encoded as PNG, and slightly brightened) and one broken file."""
    folder = parent / "other hospital"
    renamed = {"glioma": "Glioma_Tumor", "notumor": "No Tumour", "pituitary": "pit"}
    for source, target in renamed.items():
        (folder / target).mkdir(parents=True)
        for path in _images(demo_dataset_dir, "Testing", source, 6):
            shutil.copy(path, folder / target / f"ext_{path.name}")
    (folder / "Other").mkdir()
    for path in _images(demo_dataset_dir, "Testing", "meningioma", 4):
        shutil.copy(path, folder / "Other" / path.name)
    training = _images(demo_dataset_dir, "Training", "glioma", COPIED)
    shutil.copy(training[0], folder / "Glioma_Tumor" / "copy_same_bytes.jpg")
    pixels = read_image(training[1]).pixels
    cv2.imwrite(str(folder / "Glioma_Tumor" / "copy_as_png.png"), pixels)
    brighter = np.clip(read_image(training[2]).pixels.astype(int) + 6, 0, 255).astype(np.uint8)
    cv2.imwrite(str(folder / "Glioma_Tumor" / "copy_brighter.png"), brighter)
    (folder / "No Tumour" / "broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    return folder


def test_class_names_match_loosely_and_by_map() -> None:
    run_classes = ["glioma", "meningioma", "notumor", "pituitary"]
    folder = ["Glioma_Tumor", "No Tumour", "no-tumor", "pit", "Other"]
    matched = external.match_classes(folder, run_classes, {"pit": "Pituitary"})
    assert matched == {
        "Glioma_Tumor": "glioma", "No Tumour": "notumor", "no-tumor": "notumor",
        "pit": "pituitary", "Other": None,
    }  # fmt: skip
    with pytest.raises(ValueError, match="the run has no class 'cancer'"):
        external.match_classes(folder, run_classes, {"pit": "cancer"})
    with pytest.raises(ValueError, match="the folder has no class 'x'"):
        external.match_classes(folder, run_classes, {"x": "glioma"})
    assert external.parse_class_map(["pit=pituitary"]) == {"pit": "pituitary"}
    with pytest.raises(ValueError, match="is not FOLDER_CLASS=RUN_CLASS"):
        external.parse_class_map(["pituitary"])


def test_an_external_folder_is_scored_without_its_copies(
    trained: str, external_folder: Path
) -> None:
    record = external.evaluate_external(
        trained, external_folder, class_map={"pit": "pituitary"}, bootstrap_samples=50
    )
    assert record.name == "other hospital"
    assert record.class_map == {
        "Glioma_Tumor": "glioma", "No Tumour": "notumor", "pit": "pituitary"
    }  # fmt: skip
    assert record.unknown_classes == {"Other": 4}
    assert [item["path"] for item in record.unreadable] == ["No Tumour/broken.jpg"]
    copied = {copy.path for copy in record.copies}
    planted = {f"Glioma_Tumor/copy_{kind}" for kind in ("same_bytes.jpg", "as_png.png")}
    assert planted | {"Glioma_Tumor/copy_brighter.png"} <= copied
    assert all(copy.source_role in ("train", "val") for copy in record.copies)
    assert record.images == 6 * 3 + COPIED  # the broken file is not counted
    assert record.report is not None and record.report_with_copies is not None
    assert record.report.n == record.images - len(record.copies)
    assert record.report_with_copies.n == record.images
    # The score is the run's own predictions on the images that are not copies.
    predictor = Predictor.from_run(trained)
    index = {name: position for position, name in enumerate(predictor.classes)}
    truths, guesses = [], []
    for folder_class, run_class in record.class_map.items():
        for path in sorted((external_folder / folder_class).iterdir()):
            relative = f"{folder_class}/{path.name}"
            if relative in copied or path.name == "broken.jpg":
                continue
            truths.append(index[run_class])
            guesses.append(int(predictor.probabilities([read_image(path).pixels])[0].argmax()))
    assert record.report.accuracy == pytest.approx(accuracy(np.array(truths), np.array(guesses)))
    low, high = record.report.accuracy_ci
    assert low <= record.report.accuracy <= high
    assert record.report.per_class["meningioma"].support == 0  # none in this set
    stored = external.stored_external(load_run(trained), "other hospital")
    assert stored == record
    predictions = external.predictions_path(load_run(trained), record.name)
    assert predictions.is_file() and "logit_0" in predictions.read_text().splitlines()[0]


def test_a_stored_external_result_is_reused_until_the_folder_changes(
    trained: str, external_folder: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    folder = tmp_path / "site b"
    shutil.copytree(external_folder, folder)
    first = external.evaluate_external(
        trained, folder, class_map={"pit": "pituitary"}, bootstrap_samples=0
    )
    real = Predictor.from_run
    monkeypatch.setattr(Predictor, "from_run", lambda *a, **k: pytest.fail("recomputed"))
    again = external.evaluate_external(
        trained, folder, class_map={"pit": "pituitary"}, bootstrap_samples=0
    )
    assert again == first
    monkeypatch.setattr(Predictor, "from_run", real)
    (folder / "pit" / sorted((folder / "pit").iterdir())[0].name).unlink()
    changed = external.evaluate_external(
        trained, folder, class_map={"pit": "pituitary"}, bootstrap_samples=0
    )
    assert changed.fingerprint != first.fingerprint and changed.images == first.images - 1
    # Without the map the 'pit' images are not scored, and say so.
    unmapped = external.evaluate_external(trained, folder, bootstrap_samples=0)
    assert unmapped.unknown_classes == {"Other": 4, "pit": 5}


def test_bad_external_folders_get_one_clear_message(trained: str, tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match="no images found"):
        external.evaluate_external(trained, tmp_path)
    (tmp_path / "cats").mkdir()
    cv2.imwrite(str(tmp_path / "cats" / "a.png"), np.zeros((32, 32), np.uint8))
    with pytest.raises(EvaluationError, match="none of the folder's classes \\(cats\\)"):
        external.evaluate_external(trained, tmp_path)
    with pytest.raises(EvaluationError, match="no such folder"):
        external.evaluate_external(trained, tmp_path / "missing")
    with pytest.raises(ValueError, match="external set name"):
        external.evaluate_external(trained, tmp_path, name="../escape")


def test_a_run_without_weights_cannot_be_scored(
    trained: str, external_folder: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "no_weights"
    shutil.copytree(load_run(trained).path, copy)
    (copy / "model.safetensors").unlink()
    with pytest.raises(EvaluationError, match="cannot be evaluated"):
        external.evaluate_external(copy, external_folder)


def test_the_cli_scores_an_external_folder_and_compare_shows_it(
    trained: str, external_folder: Path, demo_dataset_dir: Path
) -> None:
    result = run_cli(
        "evaluate", trained, "--external", str(external_folder), "--name", "site-a",
        "--class-map", "pit=pituitary", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["name"] == "site-a" and summary["unknown_classes"] == {"Other": 4}
    assert summary["copies_excluded"] >= COPIED and summary["n"] > 0
    text = run_cli(
        "evaluate", trained, "--external", str(external_folder), "--name", "site-a",
        "--class-map", "pit=pituitary",
    )  # fmt: skip
    assert text.returncode == 0 and "not scored: class 'Other' (4 images)" in text.stdout
    assert "unreadable: No Tumour/broken.jpg" in text.stdout
    other = fit(tiny_request(demo_dataset_dir, epochs=1)).run_id
    compared = run_cli("compare", trained, other, "--json")
    assert compared.returncode == 0, compared.stderr
    runs = {row["run"]: row for row in json.loads(compared.stdout)["runs"]}
    assert runs[trained]["external"]["site-a"]["n"] == summary["n"]
    assert runs[other]["external"] == {}
    bad = run_cli("evaluate", trained, "--external", str(external_folder / "missing"))
    assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1
    assert "no such folder" in bad.stderr
