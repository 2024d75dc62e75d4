"""Classification metrics for an evaluated model: report, bootstrap CIs, McNemar (calibration:
core.evaluation.calibration).

Pure numpy / scipy / scikit-learn so it can be tested and used without torch or Streamlit.
Everything returned by the public functions is plain Python (JSON-serialisable).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from scipy import stats
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    log_loss,
    matthews_corrcoef,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)

from core.evaluation.calibration import (
    checked_probabilities,
    expected_calibration_error,
    reliability_bins,
)
from core.evaluation.calibration import softmax as softmax  # callers use metrics.softmax

# ROC curves are stored in run reports and sent to the browser; a few hundred points is
# visually indistinguishable from thousands and keeps the JSON small.
MAX_ROC_POINTS = 200

# Below this many discordant pairs the chi-square approximation to McNemar's test is poor,
# so the exact binomial test is used instead (the usual rule of thumb).
MCNEMAR_EXACT_BELOW = 25

# Bootstrap resamples are drawn in chunks so the (resamples x n) index matrix stays around
# this many entries (16 MB of int64) however large the evaluation set is.
_BOOTSTRAP_CHUNK_ENTRIES = 2_000_000


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Fraction of items predicted correctly (bootstrap_ci has a vectorised path for it)."""
    return float(accuracy_score(y_true, y_pred))


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean recall over the classes present in y_true: what accuracy would be if every class
    had as many images (bootstrap_ci vectorises it). The honest headline of an unbalanced
    subset, e.g. a duplicate-free test that keeps few `notumor` images."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    recalls = [float((y_pred[y_true == c] == c).mean()) for c in np.unique(y_true)]
    return float(np.mean(recalls)) if recalls else float("nan")


def _balanced_accuracy_rows(
    y_true: np.ndarray, y_pred: np.ndarray, indices: np.ndarray
) -> np.ndarray:
    truth, hit = y_true[indices], (y_true == y_pred)[indices]
    recall_sum, present = np.zeros(len(indices)), np.zeros(len(indices))
    for c in np.unique(y_true):
        members = truth == c
        count = members.sum(axis=1)
        recall_sum += (hit & members).sum(axis=1) / np.maximum(count, 1)
        present += count > 0
    return recall_sum / present


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Unweighted mean F1 over classes seen in y_true or y_pred (bootstrap_ci vectorises it)."""
    # sklearn's default label set (union of true and predicted) is deliberate: a class that is
    # absent from the evaluation set and never predicted has no F1, and counting it as 0 would
    # punish the model for the data, not for its predictions.
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def bootstrap_ci(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    *,
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of metric(y_true, y_pred) over resampled items.

    Same intervals as scipy.stats.bootstrap (paired, method="percentile", vectorized, rng=seed;
    both draw default_rng(seed).integers(0, n, (samples, n)) while samples * n fits one chunk),
    kept because it is faster: best of 5 timeit runs, 1,000 resamples, 4 classes, ~97% accuracy,
    on the project's 2-core AVX2 CPU, `python -m bench.bootstrap_speed`:

        n      metric    ours     scipy paired      scipy on one pre-coded sample
        1,311  accuracy  4.6 ms   14.7 ms (3.2x)    7.7 ms (1.7x)
        1,311  macro-F1  9.2 ms   20.7 ms (2.3x)    10.0 ms (1.1x)
        825    accuracy  3.0 ms    6.4 ms (2.2x)    3.7 ms (1.3x)
        825    macro-F1  4.2 ms   13.7 ms (3.2x)    5.1 ms (1.2x)
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal 1-D")
    if len(y_true) == 0:
        raise ValueError("cannot bootstrap an empty evaluation set")
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")

    values = np.concatenate(
        [
            _resampled_metric(y_true, y_pred, metric, idx)
            for idx in _resample_indices(len(y_true), samples, seed)
        ]
    )
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _resample_indices(n: int, samples: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap index matrices, (chunk, n) each, `samples` rows in total, one at a time."""
    generator = np.random.default_rng(seed)
    chunk = max(1, _BOOTSTRAP_CHUNK_ENTRIES // n)
    # A generator, so only one chunk of indices is alive while its metric values are computed.
    for start in range(0, samples, chunk):
        yield generator.integers(0, n, size=(min(chunk, samples - start), n))


def _resampled_metric(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    metric: Callable[[np.ndarray, np.ndarray], float],
    indices: np.ndarray,
) -> np.ndarray:
    """Metric value for each row of a (resamples, n) index matrix."""
    # The two metrics the report needs get vectorised paths: calling sklearn once per resample
    # costs ~1 ms each, i.e. a second or more per interval. Any other metric is looped.
    if metric is accuracy or metric is accuracy_score:
        return (y_true == y_pred)[indices].mean(axis=1)
    if metric is macro_f1:
        return _macro_f1_rows(y_true, y_pred, indices)
    if metric is balanced_accuracy:
        return _balanced_accuracy_rows(y_true, y_pred, indices)
    return np.array([metric(y_true[row], y_pred[row]) for row in indices], dtype=np.float64)


def _macro_f1_rows(y_true: np.ndarray, y_pred: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """macro_f1 of every resample at once, from one bincount of (resample, true, pred) cells."""
    # Recode labels to 0..k-1 so any label values (negative, sparse, strings) index the cells.
    classes, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    k = len(classes)
    true_code, pred_code = codes[: len(y_true)], codes[len(y_true) :]
    resamples = len(indices)
    cell = (true_code.astype(np.int64) * k + pred_code)[indices]
    cell += (np.arange(resamples, dtype=np.int64) * k * k)[:, None]
    counts = np.bincount(cell.ravel(), minlength=resamples * k * k).reshape(resamples, k, k)
    true_positive = np.diagonal(counts, axis1=1, axis2=2)
    # 2TP + FP + FN is support + predicted count; zero means the class is absent from both and,
    # as in sklearn's default label set, it is left out of the average.
    denominator = counts.sum(axis=2) + counts.sum(axis=1)
    present = denominator > 0
    f1 = np.divide(2.0 * true_positive, denominator, out=np.zeros(denominator.shape), where=present)
    return f1.sum(axis=1) / present.sum(axis=1)


def _thin(fpr: np.ndarray, tpr: np.ndarray) -> tuple[list[float], list[float]]:
    """At most MAX_ROC_POINTS evenly spaced points of a ROC curve, keeping both endpoints."""
    if len(fpr) > MAX_ROC_POINTS:
        keep = np.unique(np.linspace(0, len(fpr) - 1, MAX_ROC_POINTS).round().astype(np.int64))
        fpr, tpr = fpr[keep], tpr[keep]
    return [float(x) for x in fpr], [float(x) for x in tpr]


def classification_report(
    y_true: np.ndarray,
    probabilities: np.ndarray,
    class_names: list[str],
    *,
    bootstrap_samples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Everything the evaluation page shows about argmax predictions, as a JSON-ready dict."""
    k = len(class_names)
    y_true, probabilities = checked_probabilities(y_true, probabilities, k)
    labels = list(range(k))
    y_pred = probabilities.argmax(axis=1)

    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    # Per-class (tn, fp, fn, tp) for specificity, which sklearn has no scorer for.
    one_vs_rest = multilabel_confusion_matrix(y_true, y_pred, labels=labels)
    per_class: dict[str, dict[str, Any]] = {}
    roc_curves: dict[str, dict[str, list[float]] | None] = {}
    defined_aucs: list[float] = []
    for c, name in enumerate(class_names):
        tn, fp = int(one_vs_rest[c, 0, 0]), int(one_vs_rest[c, 0, 1])
        positive = y_true == c
        auc: float | None = None
        roc_curves[name] = None
        # One-vs-rest AUC needs both positives and negatives; sklearn would raise (AUC) or warn
        # (curve) otherwise, so the class is reported as undefined instead.
        if 0 < positive.sum() < len(y_true):
            auc = float(roc_auc_score(positive, probabilities[:, c]))
            fpr, tpr, _ = roc_curve(positive, probabilities[:, c])
            thinned_fpr, thinned_tpr = _thin(fpr, tpr)
            roc_curves[name] = {"fpr": thinned_fpr, "tpr": thinned_tpr}
            defined_aucs.append(auc)
        per_class[name] = {
            "precision": float(precision[c]),
            "recall": float(recall[c]),
            # Same convention as zero_division=0: no negatives at all gives 0, not NaN.
            "specificity": tn / (tn + fp) if tn + fp else 0.0,
            "f1": float(f1[c]),
            "support": int(support[c]),
            "roc_auc": auc,
        }

    # bootstrap_samples=0 skips the intervals (they are the slow part of the report).
    accuracy_ci: list[float] | None = None
    macro_f1_ci: list[float] | None = None
    balanced_ci: list[float] | None = None
    if bootstrap_samples > 0:
        balanced_ci = list(
            bootstrap_ci(y_true, y_pred, balanced_accuracy, samples=bootstrap_samples, seed=seed)
        )
        accuracy_ci = list(
            bootstrap_ci(y_true, y_pred, accuracy, samples=bootstrap_samples, seed=seed)
        )
        macro_f1_ci = list(
            bootstrap_ci(y_true, y_pred, macro_f1, samples=bootstrap_samples, seed=seed)
        )
    return {
        "n": len(y_true),
        "accuracy": accuracy(y_true, y_pred),
        "accuracy_ci": accuracy_ci,
        "macro_f1": macro_f1(y_true, y_pred),
        "macro_f1_ci": macro_f1_ci,
        "balanced_accuracy": balanced_accuracy(y_true, y_pred),
        "balanced_accuracy_ci": balanced_ci,
        "mcc": float(matthews_corrcoef(y_true, y_pred)),
        "ece": expected_calibration_error(y_true, probabilities),
        # sklearn clips probabilities to [eps, 1 - eps], so a confident miss is finite.
        "nll": float(log_loss(y_true, probabilities, labels=labels)),
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "roc_auc_macro": float(np.mean(defined_aucs)) if defined_aucs else None,
        "roc_curves": roc_curves,
        "reliability": reliability_bins(y_true, probabilities),
        "predicted": y_pred.tolist(),
        "correct": (y_pred == y_true).tolist(),
    }


def mcnemar(correct_a: np.ndarray, correct_b: np.ndarray) -> dict[str, Any]:
    """McNemar's paired test of two models' per-item correctness on the same items."""
    correct_a = np.asarray(correct_a, dtype=bool)
    correct_b = np.asarray(correct_b, dtype=bool)
    if correct_a.shape != correct_b.shape:
        raise ValueError(f"paired vectors differ in shape: {correct_a.shape} vs {correct_b.shape}")
    a_only = int(np.sum(correct_a & ~correct_b))
    b_only = int(np.sum(~correct_a & correct_b))
    discordant = a_only + b_only
    # Only items where the models disagree carry information about which is better.
    if discordant == 0:
        statistic, p_value, method = 0.0, 1.0, "exact"
    elif discordant < MCNEMAR_EXACT_BELOW:
        # Under H0 each discordant item is a fair coin flip; the statistic is A's win count.
        statistic = float(a_only)
        p_value = float(stats.binomtest(a_only, discordant, 0.5).pvalue)
        method = "exact"
    else:
        statistic = (abs(a_only - b_only) - 1) ** 2 / discordant
        p_value = float(stats.chi2.sf(statistic, df=1))
        method = "chi2"
    return {
        "n": int(correct_a.size),
        "a_only": a_only,
        "b_only": b_only,
        "both": int(np.sum(correct_a & correct_b)),
        "neither": int(np.sum(~correct_a & ~correct_b)),
        "statistic": float(statistic),
        "p_value": min(p_value, 1.0),
        "method": method,
    }
