"""Bootstrap intervals: our `metrics.bootstrap_ci` against `scipy.stats.bootstrap`.

    python -m bench.bootstrap_speed [--quick] [--repeats N]

Per test-set size (1,311 official, 825 duplicate-free) and metric (accuracy, macro-F1): the best
of N timeit runs of one 95% percentile interval from 1,000 resamples, seed 0, on synthetic labels
(4 classes, ~97% accuracy). scipy runs vectorized two ways: paired=True on (y_true, y_pred), the
direct call, with the cheapest statistics (labels known to be 0..3, so no recoding); and its best
case, one pre-coded sample (correct flags; confusion cells true * 4 + pred). Both draw the same
indices from np.random.default_rng(seed) as ours, so the intervals agree (last column).
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable

import numpy as np
from scipy import stats

from core.evaluation.metrics import accuracy, bootstrap_ci, macro_f1

SIZES = (1311, 825)
CLASSES = 4
RESAMPLES = 1000


def synthetic_labels(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Uniform true labels over 4 classes and predictions with ~3% errors."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, CLASSES, n)
    y_pred = y_true.copy()
    wrong = rng.random(n) < 0.03
    y_pred[wrong] = (y_true[wrong] + rng.integers(1, CLASSES, int(wrong.sum()))) % CLASSES
    return y_true, y_pred


def macro_f1_of_cells(cells: np.ndarray) -> np.ndarray:
    """macro-F1 per row of (resamples, n) confusion cells true * CLASSES + pred."""
    cells = np.atleast_2d(cells)
    rows, k = cells.shape[0], CLASSES
    offset = (np.arange(rows) * k * k)[:, None]
    counts = np.bincount((cells + offset).ravel(), minlength=rows * k * k).reshape(rows, k, k)
    true_positive = np.diagonal(counts, axis1=1, axis2=2)
    denominator = counts.sum(axis=2) + counts.sum(axis=1)
    present = denominator > 0
    f1 = np.divide(2.0 * true_positive, denominator, out=np.zeros(denominator.shape), where=present)
    return f1.sum(axis=1) / present.sum(axis=1)


PAIRED_STATISTICS: dict[str, Callable[..., np.ndarray]] = {
    "accuracy": lambda t, p, axis=-1: (t == p).mean(axis=axis),
    "macro_f1": lambda t, p, axis=-1: macro_f1_of_cells(t * CLASSES + p),
}
PRE_CODED: dict[str, tuple[Callable[..., np.ndarray], Callable[..., np.ndarray]]] = {
    "accuracy": (lambda t, p: (t == p).astype(np.float64), lambda c, axis=-1: c.mean(axis=axis)),
    "macro_f1": (lambda t, p: t * CLASSES + p, lambda c, axis=-1: macro_f1_of_cells(c)),
}
METRICS = {"accuracy": accuracy, "macro_f1": macro_f1}


def scipy_interval(data: tuple[np.ndarray, ...], statistic, *, paired: bool) -> tuple[float, float]:
    """scipy's vectorized percentile interval, 1,000 resamples, seed 0."""
    result = stats.bootstrap(
        data, statistic, paired=paired, vectorized=True, n_resamples=RESAMPLES,
        method="percentile", confidence_level=0.95, rng=0,
    )  # fmt: skip
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def best_ms(action: Callable[[], object], repeats: int) -> float:
    """Best of `repeats` single timeit runs, in milliseconds."""
    return min(timeit.repeat(action, number=1, repeat=repeats)) * 1000


def measure(n: int, name: str, repeats: int) -> tuple[float, float, float, bool]:
    """Milliseconds of ours, scipy paired and scipy pre-coded, and whether the intervals agree."""
    y_true, y_pred = synthetic_labels(n)
    code, coded_statistic = PRE_CODED[name]
    coded = (code(y_true, y_pred),)
    actions = (
        lambda: bootstrap_ci(y_true, y_pred, METRICS[name], samples=RESAMPLES, seed=0),
        lambda: scipy_interval((y_true, y_pred), PAIRED_STATISTICS[name], paired=True),
        lambda: scipy_interval(coded, coded_statistic, paired=False),
    )
    mine, theirs, best = (best_ms(action, repeats) for action in actions)
    ours = actions[0]()
    same = all(np.allclose(ours, action()) for action in actions[1:])
    return mine, theirs, best, same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="best of 2, CI smoke mode")
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    repeats = 2 if arguments.quick else arguments.repeats
    print(
        "| n | metric | ours ms | scipy paired ms | ratio | scipy pre-coded ms | ratio "
        "| same interval |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---|")
    paired_ratios, coded_ratios = [], []
    for n in SIZES:
        for name in METRICS:
            mine, theirs, best, same = measure(n, name, repeats)
            paired_ratios.append(theirs / mine)
            coded_ratios.append(best / mine)
            print(
                f"| {n} | {name} | {mine:.2f} | {theirs:.2f} | {theirs / mine:.2f}x "
                f"| {best:.2f} | {best / mine:.2f}x | {'yes' if same else 'no'} |"
            )
    print(
        f"summary: scipy.stats.bootstrap takes {min(paired_ratios):.1f}-{max(paired_ratios):.1f}x "
        f"our time paired, {min(coded_ratios):.2f}-{max(coded_ratios):.2f}x pre-coded"
    )


if __name__ == "__main__":
    main()
