"""ONNX exports: written only once they match the run on its own test images, with metadata a
deployment can use and a model card of real numbers beside them; bad requests refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

from core.cli.main import main as cli_main
from core.evaluation.evaluate import evaluate_run
from core.evaluation.run_selection import report_of
from core.export.onnx_model import ExportError, check_images, export_inputs, export_onnx
from core.imaging.reader import read_image
from core.inference.predictor import Predictor
from core.runs.registry import load_run, load_weights
from core.runs.writer import RunWriter
from core.training.fit import fit
from tests.test_cli import run_cli
from tests.test_training import tiny_request


@pytest.fixture(scope="module")
def evaluated_run(demo_dataset_dir: Path) -> str:
    run_id = fit(tiny_request(demo_dataset_dir, epochs=1)).run_id
    evaluate_run(run_id, bootstrap_samples=100)
    return run_id


def test_an_export_matches_the_run_and_says_how_to_feed_it(
    evaluated_run: str, tmp_path: Path
) -> None:
    target = tmp_path / "model.onnx"
    result = export_onnx(evaluated_run, target, images=8)
    assert target.is_file() and result.bytes == target.stat().st_size
    assert result.images_checked == 8 and result.max_difference <= result.tolerance
    assert result.same_predictions
    model = onnx.load(str(target))
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    info = load_run(evaluated_run)
    assert json.loads(metadata["classes"]) == list(info.config.classes)
    assert json.loads(metadata["preprocessing"])["image_size"] == 64
    assert metadata["run_id"] == evaluated_run
    # A deployment following the metadata gets the run's probabilities, for any batch size.
    names, pixels = check_images(info, 3)
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    predictor = Predictor.from_run(evaluated_run)
    for count in (1, 3):
        inputs = export_inputs(pixels[:count], predictor.preprocessing)
        probabilities = session.run(None, {"pixels": inputs})[0]
        assert probabilities.shape == (count, len(info.config.classes))
        np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
        np.testing.assert_allclose(
            probabilities, predictor.probabilities(pixels[:count]), atol=1e-4
        )
    assert read_image(info.config.data.root + "/" + names[0]).pixels.shape == pixels[0].shape


def test_an_export_that_does_not_match_is_not_written(evaluated_run: str, tmp_path: Path) -> None:
    target = tmp_path / "strict.onnx"
    with pytest.raises(ExportError, match=r"differs from the run by up to .* not written"):
        export_onnx(evaluated_run, target, images=4, tolerance=0.0)
    assert list(tmp_path.iterdir()) == []  # neither the model nor a partial file


def test_the_cli_writes_the_model_and_a_card_of_the_runs_numbers(
    evaluated_run: str, tmp_path: Path
) -> None:
    target = tmp_path / "card-test.onnx"
    result = run_cli("export", evaluated_run, "--out", str(target), "--images", "4", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    card = json.loads(Path(summary["card_json"]).read_text())
    info = load_run(evaluated_run)
    test = report_of(info, "test")
    assert card["evaluation"]["test"]["accuracy"] == test.accuracy
    assert card["evaluation"]["test"]["accuracy_ci"] == list(test.accuracy_ci)
    assert card["stress"] == "not stress-tested" and card["external"] == "none measured"
    assert card["export"]["max_difference"] == summary["max_difference"]
    markdown = Path(summary["card_markdown"]).read_text()
    assert f"{test.accuracy:.1%}" in markdown and "Known limits" in markdown
    assert "synthetic demo data" in markdown


def test_bad_exports_get_one_line_errors(
    evaluated_run: str,
    demo_dataset_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = load_run(evaluated_run).config.to_json()
    no_weights = RunWriter.create(config, model_name="cnn_fast")
    no_weights.set_status("completed")
    unevaluated = RunWriter.create(config, model_name="cnn_fast")
    unevaluated.save_weights(load_weights(load_run(evaluated_run)))
    unevaluated.set_status("completed")
    # One in a process of its own (the exit status a shell sees) ...
    result = run_cli("export", no_weights.run_id)
    assert result.returncode == 2 and "has no usable weights to export" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # ... the others through the same entry point in this process (seconds, not a minute).
    cases = {
        (unevaluated.run_id,): "is not evaluated",
        (evaluated_run, "--out", str(tmp_path)): "is a folder",
        (evaluated_run, "--out", str(tmp_path / "missing" / "m.onnx")): "does not exist",
        ("no_such_run",): "no_such_run",
    }
    for arguments, message in cases.items():
        assert cli_main(["export", *arguments]) == 2, arguments
        stderr = capsys.readouterr().err
        assert message in stderr and len(stderr.strip().splitlines()) == 1, stderr
