"""Evaluation of a run on validation, official test and duplicate-free test; comparison of runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from core.evaluation import comparison, evaluate
from core.runs.registry import load_run
from core.training.fit import fit
from tests.test_cli import run_cli
from tests.test_training import tiny_request


@pytest.fixture(scope="module")
def two_runs(demo_dataset_dir: Path) -> tuple[str, str]:
    """Two tiny demo runs (different seeds), evaluated once for the whole module."""
    first = fit(tiny_request(demo_dataset_dir, epochs=2, seed=0)).run_id
    second = fit(tiny_request(demo_dataset_dir, epochs=1, seed=1)).run_id
    for run_id in (first, second):
        evaluate.evaluate_run(run_id, bootstrap_samples=200)
    return first, second


def test_three_splits_side_by_side_and_consistent_with_the_predictions(
    two_runs: tuple[str, str],
) -> None:
    info = load_run(two_runs[0])
    stored = evaluate.stored_evaluation(info)
    assert stored is not None and set(stored.splits) == set(evaluate.SPLITS)
    val, test, duplicate_free, unseen_scan = (stored.splits[split] for split in evaluate.SPLITS)
    assert val.n == info.config.dataset.val_images
    # The demo dataset plants near-duplicates of training images in its test split.
    assert 0 < unseen_scan.n <= duplicate_free.n < test.n == 60
    predictions = evaluate.load_predictions(info)
    assert predictions is not None
    assert predictions["in_duplicate_free_test"].sum() == duplicate_free.n
    assert not (predictions["in_duplicate_free_test"] & ~predictions["in_test"]).any()
    assert not (predictions["in_unseen_scan_test"] & ~predictions["in_duplicate_free_test"]).any()
    reports = (val, test, duplicate_free, unseen_scan)
    for split, report in zip(evaluate.SPLITS, reports, strict=True):
        rows = predictions[predictions[f"in_{split}"]]
        assert report.accuracy == pytest.approx((rows["label"] == rows["predicted"]).mean())
        assert np.asarray(report.confusion_matrix).sum() == len(rows)
        low, high = report.accuracy_ci
        assert low <= report.accuracy <= high
    probabilities = predictions[[column for column in predictions if column.startswith("p_")]]
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
    scaled = stored.calibration["test"]
    assert scaled.temperature > 0 and scaled.ece_before is not None and scaled.ece_after is not None
    assert stored.split_matches_training is True


def test_the_evaluation_is_computed_once_and_reused(
    two_runs: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_: object) -> None:
        raise AssertionError("recomputed a stored evaluation")

    monkeypatch.setattr(evaluate, "_predict", fail)
    first = evaluate.evaluate_run(two_runs[0])
    assert first == evaluate.stored_evaluation(load_run(two_runs[0]))
    with pytest.raises(AssertionError, match="recomputed"):
        evaluate.evaluate_run(two_runs[0], force=True)


def test_runs_without_weights_or_dataset_are_refused_clearly(
    two_runs: tuple[str, str], tmp_path: Path
) -> None:
    source = load_run(two_runs[1]).path
    no_weights = tmp_path / "no-weights"
    shutil.copytree(source, no_weights)
    (no_weights / "model.safetensors").unlink()
    with pytest.raises(ValueError, match="cannot be evaluated"):
        evaluate.evaluate_run(no_weights)
    moved = tmp_path / "moved"
    shutil.copytree(source, moved)
    config = json.loads((moved / "config.json").read_text())
    config["data"]["root"] = str(tmp_path / "gone")
    (moved / "config.json").write_text(json.dumps(config))
    # The stored evaluation stays readable when the dataset has moved...
    assert evaluate.evaluate_run(moved).splits["test"].n == 60
    # ...but recomputing it needs the dataset.
    with pytest.raises(evaluate.EvaluationError, match="not on this machine"):
        evaluate.evaluate_run(moved, force=True)


def test_paired_comparison_and_galleries(two_runs: tuple[str, str]) -> None:
    first, second = (load_run(run_id) for run_id in two_runs)
    test = comparison.paired_test(first, second, "test")
    assert test is not None and test["n"] == 60
    assert test["a_only"] + test["b_only"] + test["both"] + test["neither"] == 60
    assert 0.0 <= test["p_value"] <= 1.0
    a_right_b_wrong = comparison.disagreements(first, second, "test")
    assert len(a_right_b_wrong) == test["a_only"]
    assert (a_right_b_wrong["predicted_a"] == a_right_b_wrong["label"]).all()
    wrong = comparison.misclassified(first, "test")
    report = evaluate.stored_evaluation(first).splits["test"]
    assert len(wrong) == round(60 * (1 - report.accuracy))
    assert wrong["confidence"].is_monotonic_decreasing
    table = comparison.runs_table([first, second])
    assert list(table["run"]) == list(two_runs)
    assert table["evaluated"].all() and table["test_accuracy"].between(0, 1).all()
    assert (table["test_low"] <= table["test_accuracy"]).all()


def test_cli_evaluate_and_compare_json(two_runs: tuple[str, str]) -> None:
    result = run_cli("evaluate", two_runs[0], "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"val", "test", "duplicate_free_test", "unseen_scan_test"}
    required = {"n", "accuracy", "accuracy_ci", "macro_f1", "macro_f1_ci", "ece", "per_class"}
    assert required | {"confusion_matrix", "balanced_accuracy_ci"} <= set(report["test"])
    only = json.loads(
        run_cli("evaluate", two_runs[0], "--split", "duplicate-free", "--json").stdout
    )
    assert set(only) == {"duplicate_free_test"}
    compared = run_cli("compare", *two_runs, "--json")
    assert compared.returncode == 0, compared.stderr
    payload = json.loads(compared.stdout)
    assert [row["run"] for row in payload["runs"]] == list(two_runs)
    paired = {test["split"] for test in payload["paired_tests"]}
    assert paired == {"test", "duplicate_free_test", "unseen_scan_test"}
    assert payload["runs"][0]["unseen_scan_test"]["balanced_accuracy"] is not None
    text = run_cli("compare", *two_runs)
    assert "McNemar, official test" in text.stdout
    missing = run_cli("evaluate", "no_such_run")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == ["error: run 'no_such_run' not found"]
