"""Stress tests of a run: shifted duplicate-free test images, stored and reused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.evaluation import stress
from core.evaluation.evaluate import EvaluationError, evaluate_run
from core.imaging.shifts import SHIFTS
from core.runs.metrics_records import StressPoint
from core.runs.registry import load_run
from core.training.fit import fit
from tests.test_cli import run_cli
from tests.test_training import tiny_request


@pytest.fixture(scope="module")
def trained(demo_dataset_dir: Path) -> str:
    run_id = fit(tiny_request(demo_dataset_dir, epochs=2)).run_id
    evaluate_run(run_id, bootstrap_samples=50)
    return run_id


def test_severity_zero_is_the_evaluated_score_and_results_are_stored(trained: str) -> None:
    record = stress.stress_run(trained, shifts=["rotation", "gaussian_noise"], bootstrap_samples=50)
    evaluated = evaluate_run(trained).split("duplicate_free_test")
    assert evaluated is not None and record.n == evaluated.n
    for name in ("rotation", "gaussian_noise"):
        points = record.shifts[name]
        assert [point.severity for point in points] == list(SHIFTS[name].severities)
        assert points[0].accuracy == pytest.approx(evaluated.accuracy)
        assert all(0.0 <= point.accuracy <= 1.0 for point in points)
        low, high = points[-1].accuracy_ci
        assert low <= points[-1].accuracy <= high
    assert stress.stored_stress(load_run(trained)) == record


def test_stored_shifts_are_reused_and_only_new_ones_computed(
    trained: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stress.stress_run(trained, shifts=["blur"], bootstrap_samples=0)
    calls: list[int] = []
    real_score = stress._score

    def counted(*arguments: object, **keywords: object) -> dict:
        calls.append(1)
        return real_score(*arguments, **keywords)  # type: ignore[arg-type]

    monkeypatch.setattr(stress, "_score", counted)
    again = stress.stress_run(trained, shifts=["blur"], bootstrap_samples=0)
    assert calls == [] and "blur" in again.shifts
    both = stress.stress_run(trained, shifts=["blur", "jpeg"], bootstrap_samples=0)
    assert len(calls) == len(SHIFTS["jpeg"].severities)  # the unshifted images, then each one
    assert {"blur", "jpeg"} <= set(both.shifts)
    calls.clear()
    forced = stress.stress_run(trained, shifts=["jpeg"], force=True, bootstrap_samples=0)
    assert len(calls) == len(SHIFTS["jpeg"].severities)  # only the forced shift again
    assert {"blur", "jpeg"} <= set(forced.shifts)  # the other stored shift is kept


def test_the_cli_prints_the_curves_and_refuses_bad_input(trained: str, tmp_path: Path) -> None:
    result = run_cli("stress", trained, "--shifts", "blur", "--json")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert [point["severity"] for point in printed["shifts"]["blur"]] == list(
        SHIFTS["blur"].severities
    )
    refused = run_cli("stress", trained, "--shifts", "fog")
    assert refused.returncode == 2 and "invalid choice" in refused.stderr
    missing = run_cli("stress", "20200101T000000Z_nothing_000000")
    assert missing.returncode == 2 and missing.stderr.startswith("error: ")
    assert len(missing.stderr.strip().splitlines()) == 1


def test_a_run_without_weights_cannot_be_stress_tested(trained: str) -> None:
    info = load_run(trained)
    weights = info.path / "model.safetensors"
    saved = weights.read_bytes()
    weights.unlink()
    try:
        with pytest.raises(EvaluationError, match="cannot be stress-tested"):
            stress.stress_run(trained, shifts=["blur"], force=True)
    finally:
        weights.write_bytes(saved)
    with pytest.raises(ValueError, match="unknown shift 'fog'"):
        stress.stress_run(trained, shifts=["fog"])


def test_a_moderate_only_test_is_incomplete_for_a_full_request() -> None:
    blur = SHIFTS["blur"]
    moderate = {"blur": [StressPoint(blur.severities[0], 0.9), StressPoint(blur.moderate, 0.8)]}
    assert stress.incomplete_shifts(moderate, ["blur"], moderate_only=True) == []
    assert stress.incomplete_shifts(moderate, ["blur"]) == ["blur"]  # Compare offers the rest
    full = {"blur": [StressPoint(severity, 0.9) for severity in blur.severities]}
    assert stress.incomplete_shifts(full, ["blur"]) == []
    assert stress.incomplete_shifts(full, ["blur", "jpeg"]) == ["jpeg"]
