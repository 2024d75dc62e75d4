"""Calibration of predicted probabilities: softmax with a temperature, expected calibration
error, reliability bins, and temperature scaling fitted on validation logits."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize, special
from sklearn.metrics import log_loss

# Bounds for the fitted temperature: wide enough for any sane network, narrow enough that a
# degenerate validation set cannot drive T to 0 or infinity.
TEMPERATURE_BOUNDS = (0.05, 20.0)

# Row sums further than this from 1 mean the caller passed logits or scores, not probabilities.
_PROBABILITY_SUM_TOLERANCE = 1e-3


def checked_probabilities(
    y_true: np.ndarray, probabilities: np.ndarray, k: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Validated int labels and float64 probabilities whose rows sum to exactly 1."""
    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if y_true.ndim != 1 or len(y_true) == 0:
        raise ValueError(f"y_true must be a non-empty 1-D array, got shape {y_true.shape}")
    if probabilities.ndim != 2 or len(probabilities) != len(y_true):
        raise ValueError(f"probabilities {probabilities.shape} must be (n, k), n = {len(y_true)}")
    if k is not None and probabilities.shape[1] != k:
        raise ValueError(f"probabilities have {probabilities.shape[1]} columns, {k} classes")
    if not np.issubdtype(y_true.dtype, np.integer):
        raise ValueError(f"y_true must hold integer class indices, got {y_true.dtype}")
    if y_true.min() < 0 or y_true.max() >= probabilities.shape[1]:
        raise ValueError(f"y_true values must be in [0, {probabilities.shape[1]})")
    sums = probabilities.sum(axis=1)
    if np.any(probabilities < 0) or not np.allclose(sums, 1.0, atol=_PROBABILITY_SUM_TOLERANCE):
        raise ValueError("probabilities must be non-negative with rows summing to 1")
    # Renormalise: float32 softmax output upcast to float64 is off by ~1e-7, which trips
    # sklearn's log_loss sum-to-one check (tolerance ~1e-8) and makes it warn.
    return y_true.astype(np.int64), probabilities / sums[:, None]


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature, stable for large logits."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    # scipy subtracts the row max before exponentiating, so large logits do not overflow.
    return special.softmax(np.asarray(logits, dtype=np.float64) / temperature, axis=1)


def _top_label_bins(
    y_true: np.ndarray, probabilities: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width confidence bin: item count, summed confidence, summed correctness."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    y_true, probabilities = checked_probabilities(y_true, probabilities)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    # Bins are [low, high) with the last one closed, so confidence 1.0 lands in the top bin.
    # sklearn's calibration_curve is binary-only and does not return bin sizes, hence bincount.
    which = np.minimum((confidence * bins).astype(np.int64), bins - 1)
    count = np.bincount(which, minlength=bins)
    confidence_sum = np.bincount(which, weights=confidence, minlength=bins)
    correct_sum = np.bincount(which, weights=correct.astype(np.float64), minlength=bins)
    return count, confidence_sum, correct_sum


def expected_calibration_error(
    y_true: np.ndarray, probabilities: np.ndarray, *, bins: int = 15
) -> float:
    """Top-label ECE: bin-size-weighted mean |accuracy - confidence| over equal-width bins."""
    count, confidence_sum, correct_sum = _top_label_bins(y_true, probabilities, bins)
    # sum_b (n_b / n) * |acc_b - conf_b| simplifies to sum_b |correct_b - conf_b| / n.
    return float(np.abs(correct_sum - confidence_sum).sum() / count.sum())


def reliability_bins(
    y_true: np.ndarray, probabilities: np.ndarray, *, bins: int = 15
) -> list[dict[str, Any]]:
    """Non-empty equal-width confidence bins with their mean confidence and accuracy."""
    count, confidence_sum, correct_sum = _top_label_bins(y_true, probabilities, bins)
    edges = np.linspace(0.0, 1.0, bins + 1)
    return [
        {
            "low": float(edges[b]),
            "high": float(edges[b + 1]),
            "count": int(count[b]),
            "confidence": float(confidence_sum[b] / count[b]),
            "accuracy": float(correct_sum[b] / count[b]),
        }
        for b in np.flatnonzero(count)
    ]


def _mean_nll_from_logits(logits: np.ndarray, y_true: np.ndarray, temperature: float) -> float:
    """Mean negative log-likelihood of softmax(logits / T), via log_softmax (no clipping)."""
    log_probabilities = special.log_softmax(logits / temperature, axis=1)
    return float(-log_probabilities[np.arange(len(y_true)), y_true].mean())


def fit_temperature(logits: np.ndarray, y_true: np.ndarray) -> float:
    """Single temperature T > 0 minimising the NLL of softmax(logits / T) (temperature scaling)."""
    logits = np.asarray(logits, dtype=np.float64)
    y_true = np.asarray(y_true, dtype=np.int64)
    if logits.ndim != 2 or len(logits) != len(y_true) or len(y_true) == 0:
        raise ValueError(f"logits {logits.shape} must be (n, k) with n = len(y_true) > 0")
    if y_true.min() < 0 or y_true.max() >= logits.shape[1]:
        raise ValueError(f"y_true values must be in [0, {logits.shape[1]})")
    # Searching log T makes the bounded 1-D search symmetric between sharpening and softening
    # and keeps T positive; log_softmax is used instead of sklearn's log_loss because it is
    # exact (no clipping) and cheap enough to call inside the optimiser.
    result = optimize.minimize_scalar(
        lambda log_t: _mean_nll_from_logits(logits, y_true, math.exp(log_t)),
        bounds=(math.log(TEMPERATURE_BOUNDS[0]), math.log(TEMPERATURE_BOUNDS[1])),
        method="bounded",
        options={"xatol": 1e-5},
    )
    return float(math.exp(result.x))


def calibration_summary(
    val_logits: np.ndarray,
    val_y: np.ndarray,
    test_logits: np.ndarray,
    test_y: np.ndarray,
    *,
    bins: int = 15,
    temperature: float | None = None,
) -> dict[str, float]:
    """Fit a temperature on validation logits (unless the fitted one is given); test-set ECE
    and NLL before and after applying it."""
    if temperature is None:
        temperature = fit_temperature(val_logits, val_y)
    test_logits = np.asarray(test_logits, dtype=np.float64)
    if test_logits.ndim != 2:
        raise ValueError(f"test_logits must be (n, k), got shape {test_logits.shape}")
    test_y, before = checked_probabilities(test_y, softmax(test_logits))
    after = softmax(test_logits, temperature)
    k = test_logits.shape[1]
    # NLL uses the same clipped log_loss as classification_report so the numbers compare.
    return {
        "temperature": temperature,
        "ece_before": expected_calibration_error(test_y, before, bins=bins),
        "ece_after": expected_calibration_error(test_y, after, bins=bins),
        "nll_before": float(log_loss(test_y, before, labels=list(range(k)))),
        "nll_after": float(log_loss(test_y, after, labels=list(range(k)))),
    }
