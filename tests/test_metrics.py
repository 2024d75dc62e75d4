"""Classification metrics: hand-computed cases, agreement with sklearn, bootstrap, calibration."""

from __future__ import annotations

import json
import math
import time
import warnings
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

from core.evaluation import calibration, metrics

NAMES = ["glioma", "meningioma", "pituitary"]

# Hand case: supports 4 / 3 / 1, five of eight right. Confusion matrix (rows = true):
#   [[2, 1, 1],
#    [1, 2, 0],
#    [0, 0, 1]]
HAND_TRUE = np.array([0, 0, 0, 0, 1, 1, 1, 2])
HAND_PRED = np.array([0, 0, 1, 2, 1, 1, 0, 2])


def one_hot_ish(predicted: np.ndarray, k: int, top: float = 0.6) -> np.ndarray:
    """Probabilities with `top` on the predicted class and the rest spread evenly."""
    probabilities = np.full((len(predicted), k), (1.0 - top) / (k - 1))
    probabilities[np.arange(len(predicted)), predicted] = top
    return probabilities


def random_problem(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and informative-but-noisy probabilities."""
    generator = np.random.default_rng(seed)
    y_true = generator.integers(0, k, size=n)
    logits = generator.normal(size=(n, k))
    logits[np.arange(n), y_true] += 1.0
    return y_true, metrics.softmax(logits)


def calibrated_problem(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels drawn from softmax(logits), so softmax(logits) is perfectly calibrated."""
    generator = np.random.default_rng(seed)
    logits = generator.normal(scale=1.5, size=(n, k))
    cumulative = metrics.softmax(logits).cumsum(axis=1)
    labels = (generator.random(n)[:, None] > cumulative).sum(axis=1)
    return logits, np.minimum(labels, k - 1)


def assert_plain_json(value: Any, where: str = "report") -> None:
    """Only builtin JSON types all the way down (json.dumps accepts np.float64 silently)."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str, f"{where}: key {key!r} is {type(key)}"
            assert_plain_json(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            assert_plain_json(item, f"{where}[{i}]")
    else:
        assert value is None or type(value) in (str, int, float, bool), f"{where}: {type(value)}"


def test_hand_computed_report() -> None:
    report = metrics.classification_report(
        HAND_TRUE, one_hot_ish(HAND_PRED, 3), NAMES, bootstrap_samples=0
    )
    assert report["n"] == 8
    assert report["accuracy"] == pytest.approx(5 / 8)
    assert report["confusion_matrix"] == [[2, 1, 1], [1, 2, 0], [0, 0, 1]]
    assert report["predicted"] == HAND_PRED.tolist()
    assert report["correct"] == [True, True, False, False, True, True, False, True]
    expected = {
        # name: (precision, recall, specificity, f1, support)
        "glioma": (2 / 3, 2 / 4, 3 / 4, 4 / 7, 4),
        "meningioma": (2 / 3, 2 / 3, 4 / 5, 2 / 3, 3),
        "pituitary": (1 / 2, 1 / 1, 6 / 7, 2 / 3, 1),
    }
    for name, (precision, recall, specificity, f1, support) in expected.items():
        row = report["per_class"][name]
        assert row["precision"] == pytest.approx(precision), name
        assert row["recall"] == pytest.approx(recall), name
        assert row["specificity"] == pytest.approx(specificity), name
        assert row["f1"] == pytest.approx(f1), name
        assert row["support"] == support, name
    assert report["macro_f1"] == pytest.approx((4 / 7 + 2 / 3 + 2 / 3) / 3)
    # Every item has confidence 0.6 and 5/8 are right, so one bin and ECE = |0.625 - 0.6|.
    assert report["ece"] == pytest.approx(0.025)
    assert report["reliability"] == [
        pytest.approx(
            {"low": 0.6, "high": 0.6 + 1 / 15, "count": 8, "confidence": 0.6, "accuracy": 0.625}
        )
    ]
    assert report["nll"] == pytest.approx((5 * -math.log(0.6) + 3 * -math.log(0.2)) / 8)
    # Pituitary's one positive scores 0.6; of 7 negatives one ties at 0.6, six score 0.2.
    assert report["per_class"]["pituitary"]["roc_auc"] == pytest.approx(6.5 / 7)
    assert report["accuracy_ci"] is None and report["macro_f1_ci"] is None


def test_report_agrees_with_sklearn_on_random_data() -> None:
    k = 4
    y_true, probabilities = random_problem(600, k, seed=1)
    names = [f"c{c}" for c in range(k)]
    report = metrics.classification_report(y_true, probabilities, names, bootstrap_samples=50)
    y_pred = probabilities.argmax(axis=1)
    assert 0.4 < report["accuracy"] < 0.9  # informative but imperfect, so the checks bite
    assert report["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert report["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert report["mcc"] == pytest.approx(matthews_corrcoef(y_true, y_pred))
    assert report["confusion_matrix"] == confusion_matrix(y_true, y_pred).tolist()
    precision = precision_score(y_true, y_pred, average=None)
    recall = recall_score(y_true, y_pred, average=None)
    aucs = []
    for c, name in enumerate(names):
        auc = roc_auc_score(y_true == c, probabilities[:, c])
        aucs.append(auc)
        assert report["per_class"][name]["roc_auc"] == pytest.approx(auc)
        assert report["per_class"][name]["precision"] == pytest.approx(precision[c])
        assert report["per_class"][name]["recall"] == pytest.approx(recall[c])
    assert report["roc_auc_macro"] == pytest.approx(np.mean(aucs))
    assert report["roc_auc_macro"] == pytest.approx(
        roc_auc_score(y_true, probabilities, multi_class="ovr", average="macro")
    )


def test_bootstrap_interval_contains_estimate_and_shrinks_with_more_data() -> None:
    widths = []
    for n in (200, 2000):
        y_true = np.zeros(n, dtype=int)
        y_pred = np.where(np.arange(n) < 0.8 * n, 0, 1)  # exactly 80% right
        low, high = metrics.bootstrap_ci(y_true, y_pred, metrics.accuracy, seed=3)
        assert low < 0.8 < high
        widths.append(high - low)
    # Width scales like 1/sqrt(n): about 3.2x narrower with 10x the data.
    assert widths[1] < widths[0] / 2.5
    assert 0.08 < widths[0] < 0.14  # 2 * 1.96 * sqrt(0.8 * 0.2 / 200) = 0.111


def test_report_intervals_bracket_point_estimates_and_are_seeded() -> None:
    y_true, probabilities = random_problem(300, 3, seed=2)
    first = metrics.classification_report(y_true, probabilities, NAMES, bootstrap_samples=300)
    again = metrics.classification_report(y_true, probabilities, NAMES, bootstrap_samples=300)
    other = metrics.classification_report(
        y_true, probabilities, NAMES, bootstrap_samples=300, seed=1
    )
    for key in ("accuracy", "macro_f1"):
        low, high = first[f"{key}_ci"]
        assert low < first[key] < high
        assert again[f"{key}_ci"] == [low, high]
        assert other[f"{key}_ci"] != [low, high]


@pytest.mark.parametrize(
    ("fast", "reference"),
    [
        (metrics.accuracy, lambda t, p: float(np.mean(t == p))),
        (accuracy_score, lambda t, p: float(np.mean(t == p))),
        (metrics.macro_f1, lambda t, p: f1_score(t, p, average="macro", zero_division=0)),
    ],
    ids=["accuracy", "sklearn-accuracy", "macro_f1"],
)
def test_vectorised_bootstrap_matches_looping_the_metric(fast: Any, reference: Any) -> None:
    generator = np.random.default_rng(4)
    # A rare class (label 7, sparse label values) that some resamples lose entirely: macro-F1
    # must then average over the classes present, as sklearn does per resample.
    y_true = np.concatenate([generator.integers(0, 3, size=80), [7, 7]])
    y_pred = np.where(generator.random(82) < 0.7, y_true, generator.integers(0, 3, size=82))
    y_pred[-1] = 7
    for confidence in (0.9, 0.5):
        got = metrics.bootstrap_ci(y_true, y_pred, fast, samples=150, confidence=confidence, seed=5)
        want = metrics.bootstrap_ci(
            y_true, y_pred, reference, samples=150, confidence=confidence, seed=5
        )
        assert got == pytest.approx(want, abs=1e-12)
    assert metrics.macro_f1(y_true, y_pred) == pytest.approx(
        f1_score(y_true, y_pred, average="macro")
    )


def test_bootstrap_is_fast_for_a_realistic_test_set() -> None:
    y_true, probabilities = random_problem(1300, 4, seed=6)
    y_pred = probabilities.argmax(axis=1)
    for metric, budget in ((metrics.accuracy, 1.0), (metrics.macro_f1, 1.5)):
        start = time.perf_counter()
        metrics.bootstrap_ci(y_true, y_pred, metric, samples=1000)
        assert time.perf_counter() - start < budget, metric.__name__


def test_bootstrap_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        metrics.bootstrap_ci(np.zeros(3), np.zeros(4), metrics.accuracy)
    with pytest.raises(ValueError):
        metrics.bootstrap_ci(np.zeros(0), np.zeros(0), metrics.accuracy)
    with pytest.raises(ValueError):
        metrics.bootstrap_ci(np.zeros(3), np.zeros(3), metrics.accuracy, confidence=1.0)


def test_calibrated_predictor_has_small_ece_and_overconfident_one_is_fixed_by_temperature() -> None:
    logits, y_true = calibrated_problem(20_000, 4, seed=7)
    calibrated_ece = calibration.expected_calibration_error(y_true, metrics.softmax(logits))
    assert calibrated_ece < 0.02
    overconfident = 3.0 * logits
    overconfident_ece = calibration.expected_calibration_error(
        y_true, metrics.softmax(overconfident)
    )
    assert overconfident_ece > 0.1
    assert overconfident_ece > 5 * calibrated_ece

    assert calibration.fit_temperature(overconfident, y_true) == pytest.approx(3.0, rel=0.15)
    assert calibration.fit_temperature(logits, y_true) == pytest.approx(1.0, rel=0.15)

    summary = calibration.calibration_summary(
        overconfident[:10_000], y_true[:10_000], overconfident[10_000:], y_true[10_000:]
    )
    assert set(summary) == {"temperature", "ece_before", "ece_after", "nll_before", "nll_after"}
    assert summary["temperature"] == pytest.approx(3.0, rel=0.15)
    assert summary["ece_after"] < 0.03 < 0.1 < summary["ece_before"]
    assert summary["nll_after"] < summary["nll_before"]
    assert_plain_json(summary, "summary")


def test_reliability_bins_partition_the_items_and_reproduce_ece() -> None:
    y_true, probabilities = random_problem(1000, 4, seed=8)
    probabilities[0] = [1.0, 0.0, 0.0, 0.0]  # confidence exactly 1 belongs in the top bin
    bins = calibration.reliability_bins(y_true, probabilities, bins=10)
    assert sum(b["count"] for b in bins) == 1000
    assert all(b["count"] > 0 and b["low"] <= b["confidence"] <= b["high"] for b in bins)
    assert bins[-1]["high"] == 1.0
    ece = sum(b["count"] / 1000 * abs(b["accuracy"] - b["confidence"]) for b in bins)
    assert calibration.expected_calibration_error(y_true, probabilities, bins=10) == pytest.approx(
        ece
    )


def test_softmax_is_stable_and_respects_temperature() -> None:
    out = metrics.softmax(np.array([[1000.0, 0.0], [0.0, 0.0]]))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, [[1.0, 0.0], [0.5, 0.5]])
    sharp = metrics.softmax(np.array([[2.0, 0.0]]), temperature=0.5)
    np.testing.assert_allclose(sharp, metrics.softmax(np.array([[4.0, 0.0]])))
    with pytest.raises(ValueError):
        metrics.softmax(np.zeros((1, 2)), temperature=0.0)


def test_mcnemar_exact_test_by_hand() -> None:
    # A alone right on 1 item, B alone on 9, both right on 5, neither on 3.
    a = np.array([1] + [0] * 9 + [1] * 5 + [0] * 3, dtype=bool)
    b = np.array([0] + [1] * 9 + [1] * 5 + [0] * 3, dtype=bool)
    result = metrics.mcnemar(a, b)
    assert {k: result[k] for k in ("n", "a_only", "b_only", "both", "neither")} == {
        "n": 18,
        "a_only": 1,
        "b_only": 9,
        "both": 5,
        "neither": 3,
    }
    assert result["method"] == "exact"
    # P(X <= 1) + P(X >= 9) for X ~ Binomial(10, 1/2) = 2 * 11 / 1024.
    assert result["p_value"] == pytest.approx(22 / 1024)
    assert metrics.mcnemar(b, a)["p_value"] == pytest.approx(22 / 1024)


def test_mcnemar_chi_square_for_many_discordant_pairs() -> None:
    a = np.array([1] * 40 + [0] * 20 + [1] * 100, dtype=bool)
    b = np.array([0] * 40 + [1] * 20 + [1] * 100, dtype=bool)
    result = metrics.mcnemar(a, b)
    assert result["method"] == "chi2"
    statistic = (abs(40 - 20) - 1) ** 2 / 60
    assert result["statistic"] == pytest.approx(statistic)
    # Chi-square with 1 df: P(X > x) = erfc(sqrt(x / 2)).
    assert result["p_value"] == pytest.approx(math.erfc(math.sqrt(statistic / 2)))
    assert 0.01 < result["p_value"] < 0.02


def test_mcnemar_switches_to_chi_square_at_25_discordant_pairs() -> None:
    def method(discordant: int) -> str:
        a = np.arange(discordant) % 2 == 0
        return metrics.mcnemar(a, ~a)["method"]

    assert method(24) == "exact"
    assert method(25) == "chi2"


def test_mcnemar_identical_models_and_mismatched_lengths() -> None:
    same = np.array([True, False, True, True])
    result = metrics.mcnemar(same, same)
    assert result["p_value"] == 1.0
    assert result["a_only"] == result["b_only"] == 0
    assert_plain_json(result, "mcnemar")
    # Length 1 would silently broadcast against 4 if lengths were not checked.
    for short in (same[:3], same[:1]):
        with pytest.raises(ValueError, match="differ"):
            metrics.mcnemar(same, short)


def test_absent_class_gives_undefined_auc_without_warnings() -> None:
    names = ["glioma", "meningioma", "notumor", "pituitary"]
    y_true, probabilities = random_problem(200, 4, seed=9)
    y_true = np.where(y_true == 2, 3, y_true)  # nobody is "notumor"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = metrics.classification_report(y_true, probabilities, names, bootstrap_samples=50)
    notumor = report["per_class"]["notumor"]
    assert notumor["roc_auc"] is None
    assert notumor["support"] == 0 and notumor["recall"] == 0.0
    assert report["roc_curves"].get("notumor") is None
    defined = [report["per_class"][n]["roc_auc"] for n in ("glioma", "meningioma", "pituitary")]
    assert all(auc is not None for auc in defined)
    assert report["roc_auc_macro"] == pytest.approx(np.mean(defined))
    json.dumps(report, allow_nan=False)
    assert_plain_json(report)


def test_single_class_evaluation_set_has_no_auc_at_all() -> None:
    y_true = np.zeros(20, dtype=int)
    _, probabilities = random_problem(20, 3, seed=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = metrics.classification_report(y_true, probabilities, NAMES, bootstrap_samples=20)
    assert report["roc_auc_macro"] is None
    assert all(row["roc_auc"] is None for row in report["per_class"].values())
    # Class 0 has no negatives: specificity is reported as 0 (the zero_division convention).
    assert report["per_class"]["glioma"]["specificity"] == 0.0
    json.dumps(report, allow_nan=False)


def test_report_is_plain_json_with_small_roc_curves() -> None:
    y_true, probabilities = random_problem(5000, 3, seed=11)
    report = metrics.classification_report(y_true, probabilities, NAMES, bootstrap_samples=100)
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    assert_plain_json(report)
    for name in NAMES:
        curve = report["roc_curves"][name]
        assert 50 < len(curve["fpr"]) == len(curve["tpr"]) <= metrics.MAX_ROC_POINTS
        assert (curve["fpr"][0], curve["tpr"][0]) == (0.0, 0.0)
        assert (curve["fpr"][-1], curve["tpr"][-1]) == (1.0, 1.0)
        # The thinned curve still integrates to (nearly) the exact AUC.
        auc = float(np.trapezoid(curve["tpr"], curve["fpr"]))
        assert auc == pytest.approx(report["per_class"][name]["roc_auc"], abs=0.01)


def test_float32_probabilities_do_not_trip_sklearn_sum_check() -> None:
    generator = np.random.default_rng(12)
    logits = generator.normal(size=(500, 4)).astype(np.float32)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)  # float32, like torch
    y_true = generator.integers(0, 4, size=500)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = metrics.classification_report(
            y_true, probabilities, [f"c{c}" for c in range(4)], bootstrap_samples=0
        )
    assert report["nll"] > 0


def test_report_rejects_logits_and_wrong_shapes() -> None:
    logits = np.random.default_rng(13).normal(size=(10, 3))
    y_true = np.zeros(10, dtype=int)
    with pytest.raises(ValueError, match="sum"):
        metrics.classification_report(y_true, logits, NAMES)
    with pytest.raises(ValueError, match="columns"):
        metrics.classification_report(y_true, metrics.softmax(logits), NAMES[:2])
    with pytest.raises(ValueError):
        metrics.classification_report(y_true[:5], metrics.softmax(logits), NAMES)
    with pytest.raises(ValueError):
        metrics.classification_report(np.full(10, 3), metrics.softmax(logits), NAMES)
