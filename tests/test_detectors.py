"""Warnings measured as error detectors: scores, thresholds from validation, risk-coverage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.evaluation import detectors
from core.evaluation.detector_study import study_run, summary_over_shifts
from core.imaging.shifts import SHIFTS
from core.models.build import build_model
from core.runs.registry import load_run
from core.training.fit import fit
from tests.test_cli import run_cli
from tests.test_training import tiny_request


def test_aurc_rewards_ranking_the_mistakes_last() -> None:
    correct = np.array([True, True, False, False])
    good = detectors.aurc(correct, np.array([4.0, 3.0, 2.0, 1.0]))
    bad = detectors.aurc(correct, np.array([1.0, 2.0, 3.0, 4.0]))
    assert good == pytest.approx((0 + 0 + 1 / 3 + 2 / 4) / 4)
    assert bad == pytest.approx((1 + 1 + 2 / 3 + 2 / 4) / 4) and bad > good


def test_a_flag_report_splits_accuracy_by_flag() -> None:
    correct = np.array([True, True, True, False, False])
    report = detectors.flag_report(correct, np.array([False, False, False, True, False]))
    assert report["flagged_share"] == pytest.approx(0.2)
    assert report["unflagged_accuracy"] == pytest.approx(0.75)
    assert report["flagged_accuracy"] == 0.0 and report["accuracy"] == pytest.approx(0.6)
    assert detectors.flag_report(correct, np.zeros(5, bool))["flagged_accuracy"] is None


def test_the_feature_model_scores_far_points_lower() -> None:
    generator = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0, 0.0], [6.0, 0.0, 0.0]])
    labels = generator.integers(0, 2, 400)
    features = centres[labels] + generator.normal(0, 1, (400, 3))
    model = detectors.FeatureModel.fit(features, labels, classes=2)
    near = model.score(np.array([[0.2, 0.1, 0.0], [5.8, 0.0, 0.1]]))
    far = model.score(np.array([[3.0, 9.0, -9.0]]))
    assert near.min() > far.max()


def test_the_penultimate_layer_is_the_last_linear_one() -> None:
    from core.config import ModelConfig

    model, _ = build_model(ModelConfig(name="cnn_fast", num_classes=4))
    layer = detectors.penultimate_layer(model)
    assert layer.out_features == 4


@pytest.fixture(scope="module")
def studied(demo_dataset_dir: Path) -> tuple[str, dict]:
    run_id = fit(tiny_request(demo_dataset_dir, epochs=2)).run_id
    return run_id, study_run(run_id)


def test_a_run_study_covers_every_set_and_detector(studied: tuple[str, dict]) -> None:
    run_id, payload = studied
    assert set(payload["shifted_sets"]) == {
        f"{name} {shift.moderate:g}" for name, shift in SHIFTS.items()
    }
    for reports in payload["sets"].values():
        assert set(reports) == set(detectors.SCORES)
        for name in detectors.RANKED:
            assert 0.0 <= reports[name]["flagged_share"] <= 1.0
            assert reports[name]["aurc"] >= 0.0
    # Thresholds come from validation: there, each ranking score flags about FLAG_SHARE.
    validation = payload["sets"]["validation"]
    for name in detectors.RANKED:
        assert validation[name]["flagged_share"] <= detectors.FLAG_SHARE + 0.05
    stored = json.loads((load_run(run_id).path / "metrics.json").read_text())["detectors"]
    assert stored["thresholds"] == payload["thresholds"]
    summary = summary_over_shifts(payload)
    assert set(summary) == set(detectors.SCORES)
    assert summary["familiarity"]["aurc"] is None and summary["msp"]["aurc"] is not None


def test_the_warnings_command_prints_the_table(studied: tuple[str, dict]) -> None:
    run_id, _ = studied
    result = run_cli("warnings", run_id)
    assert result.returncode == 0, result.stderr
    assert "| duplicate-free test | mahalanobis |" in result.stdout
    assert "mean over the shifted sets" in result.stdout
    missing = run_cli("warnings", "no_such_run")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


def test_evaluation_stores_a_warning_rule_set_on_validation(studied: tuple[str, dict]) -> None:
    from core.evaluation.evaluate import evaluate_run, load_predictions
    from core.evaluation.metrics import softmax

    run_id, _ = studied
    rule = evaluate_run(run_id).warning
    assert rule is not None and rule.temperature > 0 and 0 < rule.threshold <= 1
    predictions = load_predictions(load_run(run_id))
    validation = predictions[predictions["in_val"]]
    logits = validation[[c for c in validation if c.startswith("logit_")]].to_numpy()
    flagged = softmax(logits, rule.temperature).max(axis=1) < rule.threshold
    assert flagged.mean() <= detectors.FLAG_SHARE + 1 / len(flagged)


def test_the_predictor_flags_by_the_runs_rule(studied: tuple[str, dict]) -> None:
    from dataclasses import replace

    from core.evaluation.evaluate import evaluate_run
    from core.inference.predictor import Predictor
    from core.runs.metrics_records import WarningRule

    run_id, _ = studied
    evaluate_run(run_id)
    predictor = Predictor.from_run(run_id)
    assert predictor.warning_rule is not None
    image = np.random.default_rng(0).integers(0, 255, (96, 96), dtype=np.uint8)
    strict = replace(predictor, warning_rule=WarningRule(temperature=1.0, threshold=1.01))
    flagged = strict.predict(image)
    assert flagged.unreliable and any("less sure than on 95%" in w for w in flagged.warnings)
    assert flagged.calibrated_confidence is not None
    lenient = replace(predictor, warning_rule=WarningRule(temperature=1.0, threshold=0.0))
    assert not lenient.predict(image).unreliable
    # A run evaluated before rules existed keeps the old 60% rule.
    old = replace(predictor, warning_rule=None)
    assert old.predict(image).calibrated_confidence is None
