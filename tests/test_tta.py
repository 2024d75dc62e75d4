"""Test-time augmentation: the mean of the logits over an image and its mirror, for predict and
evaluate; an evaluation with it is computed afresh and never replaces the stored one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.evaluation.evaluate import PREDICTIONS, evaluate_run
from core.imaging.model_input import prepare_images
from core.imaging.reader import read_image
from core.inference.predictor import Predictor
from core.runs.registry import load_run
from core.training.fit import fit
from tests.test_cli import run_cli
from tests.test_training import tiny_request


@pytest.fixture(scope="module")
def evaluated_run(demo_dataset_dir: Path) -> str:
    run_id = fit(tiny_request(demo_dataset_dir, epochs=1)).run_id
    evaluate_run(run_id, bootstrap_samples=100)
    return run_id


def test_tta_logits_are_the_mean_over_the_image_and_its_mirror(evaluated_run: str) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (80, 72), dtype=np.uint8) for _ in range(3)]
    plain, flipped = Predictor.from_run(evaluated_run), Predictor.from_run(evaluated_run, tta=True)
    batch = prepare_images(images, plain.preprocessing)
    with torch.no_grad():
        expected = (plain.model(batch) + plain.model(batch.flip(-1))) / 2
    np.testing.assert_allclose(flipped.logits(images), expected.numpy(), atol=1e-5)
    assert not np.allclose(flipped.logits(images), plain.logits(images), atol=1e-5)
    # The map is still of the plain model: a CAM is of one view.
    assert flipped.explain(images[0]).cam.shape == plain.explain(images[0]).cam.shape


def test_an_evaluation_with_tta_is_not_stored(evaluated_run: str) -> None:
    info = load_run(evaluated_run)
    metrics_before = (info.path / "metrics.json").read_bytes()
    predictions_before = (info.path / PREDICTIONS).read_bytes()
    with_tta = evaluate_run(evaluated_run, tta=True, bootstrap_samples=100)
    stored = evaluate_run(evaluated_run)
    assert with_tta.split("test").n == stored.split("test").n
    assert (info.path / "metrics.json").read_bytes() == metrics_before
    assert (info.path / PREDICTIONS).read_bytes() == predictions_before
    result = run_cli("evaluate", evaluated_run, "--tta", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["test"]["n"] == stored.split("test").n
    refused = run_cli("evaluate", evaluated_run, "--tta", "--external", str(info.path))
    assert refused.returncode == 2 and "does not go with --external" in refused.stderr


def test_predict_with_tta_gives_the_tta_probabilities(
    evaluated_run: str, demo_dataset_dir: Path
) -> None:
    image = next((demo_dataset_dir / "Testing").rglob("*.png"))
    result = run_cli("predict", evaluated_run, str(image), "--json", "--tta")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)[0]["probabilities"]
    pixels = read_image(image).pixels
    plain = Predictor.from_run(evaluated_run)
    expected = Predictor.from_run(evaluated_run, tta=True).probabilities([pixels])[0]
    shown_in_order = np.array([shown[name] for name in plain.classes])
    # The demo model is nearly uniform, so the two differ by about 1e-6: compare closely.
    assert np.abs(shown_in_order - expected).max() < 1e-7
    assert np.abs(shown_in_order - plain.probabilities([pixels])[0]).max() > 1e-7
