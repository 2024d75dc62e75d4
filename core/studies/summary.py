"""A study's results: one row per cell from its run's stored files, then per setting and size
the mean, spread and interval over seeds, the paired difference between settings, and a
one-line verdict per size.

Which test, and why: for one seed, every setting trains on the same nested sample and is
scored on the same test images, so cells pair by seed. The difference between two settings is
taken per seed and its mean gets a t-interval over seeds (a paired t-test, `scipy.stats`): the
seed moves accuracy by a point or more, and this interval counts that. An image-level test
(McNemar on one seed's predictions) would treat the test images as the only source of chance
and be far too sure. With 3 seeds the interval is wide (t = 4.30 at 2 degrees of freedom):
that is the honest size of what 3 seeds can tell.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from core.evaluation.stress import moderate_shift_scores
from core.runs.layout import jsonable
from core.runs.registry import RunError, RunInfo, resolve_run
from core.studies.plan import Study

# Split of the stored evaluation -> prefix of its columns (the official test has none).
SPLIT_PREFIXES = {
    "val": "val_",
    "test": "",
    "duplicate_free_test": "duplicate_free_",
    "unseen_scan_test": "unseen_scan_",
}
SCORES = ("accuracy", "macro_f1", "balanced_accuracy")
VERDICT_METRIC = "unseen_scan_accuracy"  # the strictest test subset
METRIC_LABELS = {
    "unseen_scan_accuracy": "unseen-scan test accuracy",
    "duplicate_free_accuracy": "duplicate-free test accuracy",
    "accuracy": "official test accuracy",
    "unseen_scan_macro_f1": "unseen-scan test macro-F1",
    "macro_f1": "official test macro-F1",
    "val_accuracy": "validation accuracy",
    "stress_worst_accuracy": "worst accuracy under a moderate shift",
    "stress_mean_accuracy": "mean accuracy under the moderate shifts",
    "train_seconds": "training time (s)",
    "best_epoch": "best epoch",
    "generalization_gap": "train - validation accuracy at the best epoch",
}


def _run(run_id: str | None) -> RunInfo | None:
    if run_id is None:
        return None
    try:
        return resolve_run(run_id)
    except RunError:
        return None


def _gap(info: RunInfo) -> float | None:
    """Training minus validation accuracy at the best epoch (how much it overfits)."""
    best = info.metrics.best_epoch if info.metrics else None
    epoch = next((e for e in info.history if e.epoch == best), None)
    if epoch is None or epoch.train_accuracy is None or epoch.val_accuracy is None:
        return None
    return epoch.train_accuracy - epoch.val_accuracy


def cell_results(study: Study) -> pd.DataFrame:
    """One row per cell: its state and run, and (once completed and evaluated) its scores."""
    rows = []
    for cell in study.cells:
        row: dict[str, Any] = {
            "setting": cell.setting, "size": cell.size, "seed": cell.seed,
            "n_train": cell.train_images, "epochs": cell.epochs, "state": cell.state,
            "run_id": cell.run_id,
        }  # fmt: skip
        info = _run(cell.run_id) if cell.state == "completed" else None
        metrics = info.metrics if info else None
        if info is not None and metrics is not None:
            row.update(
                train_seconds=metrics.train_seconds,
                best_epoch=metrics.best_epoch,
                epochs_run=metrics.epochs_run,
                generalization_gap=_gap(info),
            )
            evaluation = metrics.evaluation
            for split, prefix in SPLIT_PREFIXES.items():
                report = evaluation.split(split) if evaluation else None
                for score in SCORES:
                    row[prefix + score] = getattr(report, score) if report else None
            row.update(moderate_shift_scores(info))
            for name, record in metrics.external.items():
                report = record.report
                row[f"external_{name}_accuracy"] = report.accuracy if report else None
        rows.append(row)
    return pd.DataFrame(rows)


def _interval(values: np.ndarray) -> tuple[float | None, float | None]:
    """95% t-interval of the mean of `values` (None with fewer than 2)."""
    if len(values) < 2:
        return None, None
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The numeric result columns the cells have (scores, times, gaps, external sets)."""
    fixed = {"seed", "n_train", "epochs"}
    return [
        column
        for column in frame.columns
        if column not in fixed and pd.api.types.is_numeric_dtype(frame[column])
    ]


def size_table(study: Study, frame: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per setting and size: n_train, completed seeds, and each metric's mean, sd, min, max
    and 95% interval over seeds (`<metric>_mean`, `_sd`, `_min`, `_max`, `_ci_low`, `_ci_high`)."""
    frame = cell_results(study) if frame is None else frame
    done = frame[frame["state"] == "completed"]
    rows = []
    for size in study.sizes:
        for setting in study.settings:
            cells = done[(done["setting"] == setting.name) & (done["size"] == size)]
            planned = frame[(frame["setting"] == setting.name) & (frame["size"] == size)]
            row: dict[str, Any] = {
                "setting": setting.name,
                "size": size,
                "n_train": int(planned["n_train"].iloc[0]) if len(planned) else None,
                "seeds": len(cells),
            }
            for column in metric_columns(frame):
                values = cells[column].dropna().to_numpy(dtype=float)
                low, high = _interval(values)
                row.update({
                    f"{column}_mean": float(values.mean()) if len(values) else None,
                    f"{column}_sd": float(values.std(ddof=1)) if len(values) > 1 else None,
                    f"{column}_min": float(values.min()) if len(values) else None,
                    f"{column}_max": float(values.max()) if len(values) else None,
                    f"{column}_ci_low": low,
                    f"{column}_ci_high": high,
                })  # fmt: skip
            rows.append(row)
    return pd.DataFrame(rows)


def paired_difference(first: pd.Series, second: pd.Series) -> dict[str, Any]:
    """`second - first` paired by seed (index): mean, sd, 95% t-interval, paired t-test p."""
    both = pd.concat([first, second], axis=1, keys=["first", "second"]).dropna()
    differences = (both["second"] - both["first"]).to_numpy(dtype=float)
    low, high = _interval(differences)
    p_value = None
    if len(differences) >= 2 and differences.std(ddof=1) > 0:
        p_value = float(stats.ttest_rel(both["second"], both["first"]).pvalue)
    return {
        "seeds": len(differences),
        "difference_mean": float(differences.mean()) if len(differences) else None,
        "difference_sd": float(differences.std(ddof=1)) if len(differences) > 1 else None,
        "ci_low": low,
        "ci_high": high,
        "p_value": p_value,
        "test": "paired t-test over seeds",
    }


def comparisons(
    study: Study, frame: pd.DataFrame | None = None, metric: str = VERDICT_METRIC
) -> list[dict[str, Any]]:
    """Per size, each setting against the study's first one on `metric`, paired by seed."""
    frame = cell_results(study) if frame is None else frame
    if metric not in frame.columns or len(study.settings) < 2:
        return []
    done = frame[frame["state"] == "completed"]
    reference = study.settings[0].name
    found = []
    for size in study.sizes:
        at_size = done[done["size"] == size]

        def by_seed(name: str, at_size: pd.DataFrame = at_size) -> pd.Series:
            return at_size[at_size["setting"] == name].set_index("seed")[metric].astype(float)

        for setting in study.settings[1:]:
            difference = paired_difference(by_seed(reference), by_seed(setting.name))
            found.append(
                {"size": size, "metric": metric, "reference": reference,
                 "setting": setting.name, **difference}
            )  # fmt: skip
    return found


def _points(value: float) -> str:
    return f"{value * 100:.1f}"


def verdict(comparison: dict[str, Any], *, percent: bool = True) -> str:
    """One plain sentence: who is ahead at this size, by how much, and how sure."""
    size = comparison["size"]
    where = "with all training images" if size == "all" else (
        f"with {size} of each class" if size.endswith("%") else f"at {size} images per class"
    )  # fmt: skip
    label = METRIC_LABELS.get(comparison["metric"], comparison["metric"])
    mean, seeds = comparison["difference_mean"], comparison["seeds"]
    if mean is None:
        return f"{where}: not enough completed seeds to compare on {label}"
    first, second = comparison["reference"], comparison["setting"]
    ahead, behind = (second, first) if mean >= 0 else (first, second)
    unit = (lambda value: _points(value)) if percent else (lambda value: f"{value:.3g}")
    size_text = f"{unit(abs(mean))} points" if percent else unit(abs(mean))
    if comparison["ci_low"] is None:
        return (
            f"{where}, {ahead} is ahead of {behind} by {size_text} on {label} (1 seed: no interval)"
        )
    low, high = comparison["ci_low"], comparison["ci_high"]
    interval = f"95% interval of {second} - {first}: [{unit(low)}, {unit(high)}], {seeds} seeds"
    if low <= 0 <= high:
        return f"{where}, no clear difference on {label}: {ahead} ahead by {size_text} ({interval})"
    return f"{where}, {ahead} is ahead of {behind} by {size_text} on {label} ({interval})"


def study_summary(study: Study, metric: str = VERDICT_METRIC) -> dict[str, Any]:
    """What `study show --json` prints: the study, its cells' states, one row per setting and
    size, the paired comparisons per size and their verdicts."""
    frame = cell_results(study)
    table = size_table(study, frame)
    compared = comparisons(study, frame, metric)
    for comparison in compared:
        comparison["verdict"] = verdict(comparison)
    # Missing scores (a size without a completed cell) are None in JSON, not NaN.
    rows = table.astype(object).where(table.notna(), None).to_dict(orient="records")
    return jsonable({
        "study_id": study.study_id, "name": study.name, "state": study.state,
        "message": study.message, "data_root": study.data_root,
        "settings": [setting.name for setting in study.settings], "sizes": study.sizes,
        "seeds": study.seeds, "cells": study.counts(), "min_steps": study.min_steps,
        "rows": rows, "comparisons": compared,
        "comparison_test": "paired t-test over seeds (see core.studies.summary)",
    })  # fmt: skip
