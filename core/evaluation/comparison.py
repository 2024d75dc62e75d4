"""Runs side by side: one table row per run, and paired tests of two runs on the same images."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from core.evaluation import metrics
from core.evaluation.evaluate import SPLIT_LABELS, SPLITS, STRICTER_SPLITS, load_predictions
from core.evaluation.external import stored_externals
from core.evaluation.run_selection import (
    EXTERNAL_PREFIX,
    report_of,
    run_labels,
    short_label,
    stored_evaluation,
)
from core.evaluation.stress import moderate_shift_scores
from core.runs.metrics_records import Calibration, EvaluationRecord, SplitReport
from core.runs.registry import RunInfo

PAIRED_SPLITS = ("test", *STRICTER_SPLITS)


def _interval(
    report: SplitReport | None, key: str
) -> tuple[float | None, float | None, float | None]:
    if report is None:
        return None, None, None
    low, high = getattr(report, f"{key}_ci") or (None, None)
    return getattr(report, key), low, high


def _numbers(values: Iterable[float | None]) -> list[float]:
    """The values of a history column that are numbers (a damaged line reads as None)."""
    return [value for value in values if value is not None]


def _same_dataset(a: RunInfo, b: RunInfo) -> bool:
    """Whether both runs were evaluated on the same dataset (paths alone could coincide)."""
    first, second = stored_evaluation(a), stored_evaluation(b)
    return bool(first and second and first.dataset == second.dataset)


def _headline(report: SplitReport | None) -> dict[str, Any]:
    """What `compare --json` gives per split: size, accuracy and macro-F1 with intervals, ECE."""
    keys = ("n", "accuracy", "accuracy_ci", "balanced_accuracy", "macro_f1", "ece")
    return {key: getattr(report, key) if report else None for key in keys}


def run_row(info: RunInfo) -> dict[str, Any]:
    """What the runs table shows of one run; missing facts are None, never an exception."""
    config, run_metrics, history = info.config, info.metrics, info.history
    speeds = _numbers(record.images_per_second for record in history)
    evaluation = stored_evaluation(info)
    row: dict[str, Any] = {
        "run": info.run_id,
        "name": short_label(info),
        "status": "damaged" if info.damaged else info.status,
        "model": info.model_name,
        "family": config.model_family if config else None,
        # Recorded from the weights actually loaded, not from what was asked for.
        "pretrained": config.weights_source.pretrained if config else False,
        "freeze": config.model.freeze if config else None,
        "image_size": config.data.image_size if config else None,
        "augmentation": config.train.augment.label if config and config.train else None,
        "recipe": (config.recipe.name or "none") if config else None,
        "epochs": (run_metrics.epochs_run if run_metrics else None) or len(history) or None,
        "parameters": config.parameters.total if config else None,
        "train_seconds": run_metrics.train_seconds if run_metrics else None,
        "images_per_second": float(np.median(speeds)) if speeds else None,
        "best_val_accuracy": max(_numbers(r.val_accuracy for r in history), default=None),
        "best_val_loss": min(_numbers(r.val_loss for r in history), default=None),
        "tags": ", ".join(info.tags),
        "created": info.created_at,
    }
    for split in ("test", *STRICTER_SPLITS):
        report = report_of(info, split)
        value, low, high = _interval(report, "accuracy")
        row.update({f"{split}_accuracy": value, f"{split}_low": low, f"{split}_high": high})
        row[f"{split}_n"] = report.n if report else None
        # Beside accuracy on the unbalanced stricter subsets: every class counted equally.
        row[f"{split}_balanced_accuracy"] = report.balanced_accuracy if report else None
    test_report = report_of(info, "test")
    row["test_macro_f1"] = test_report.macro_f1 if test_report else None
    row["test_ece"] = test_report.ece if test_report else None
    for name, record in stored_externals(info).items():
        row[EXTERNAL_PREFIX + name] = record.report.accuracy if record.report else None
    # Beside the same-source scores: how far the duplicate-free score falls under a scanner-like
    # shift (the stress test at moderate severity), None where the run was not stress-tested.
    row["stress_worst_accuracy"] = moderate_shift_scores(info)["stress_worst_accuracy"]
    row["evaluated"] = evaluation is not None
    return row


def runs_table(infos: Sequence[RunInfo]) -> pd.DataFrame:
    """One row per run, in the given order; a run whose files hold nonsense gets a bare
    'damaged' row instead of an exception."""
    rows = []
    labels = run_labels(infos)  # the legends' names: unique, with an id's tail where they clash
    for info in infos:
        try:
            rows.append({**run_row(info), "name": labels[info.run_id]})
        except (TypeError, ValueError, KeyError, AttributeError):  # any shape a damaged file has
            rows.append({"run": info.run_id, "name": info.display_name, "status": "damaged"})
    return pd.DataFrame(rows)


def correct_by_image(info: RunInfo, split: str) -> pd.Series | None:
    """Whether the run got each image of `split` right, indexed by image path."""
    predictions = load_predictions(info)
    column = f"in_{split}"
    if predictions is None or column not in predictions:
        return None
    rows = predictions[predictions[column].astype(bool)]
    return pd.Series((rows["label"] == rows["predicted"]).to_numpy(), index=rows["path"].to_numpy())


def paired_test(a: RunInfo, b: RunInfo, split: str) -> dict[str, Any] | None:
    """McNemar's test of runs A and B on the images of `split` both were evaluated on."""
    if not _same_dataset(a, b):
        return None
    correct_a, correct_b = correct_by_image(a, split), correct_by_image(b, split)
    if correct_a is None or correct_b is None:
        return None
    shared = correct_a.index.intersection(correct_b.index)
    if len(shared) == 0:
        return None
    result = metrics.mcnemar(
        correct_a.loc[shared].to_numpy(bool), correct_b.loc[shared].to_numpy(bool)
    )
    return {"a": a.run_id, "b": b.run_id, "split": split, **result}


def compare(infos: list[RunInfo]) -> dict[str, Any]:
    """Every run's headline numbers per split and McNemar's test of every pair of runs."""
    summary = []
    for info in infos:
        summary.append(
            {
                "run": info.run_id,
                "model": info.model_name,
                "train_seconds": info.metrics.train_seconds if info.metrics else None,
                "parameters": info.config.parameters.total if info.config else None,
                **{split: _headline(report_of(info, split)) for split in SPLITS},
                "external": {
                    name: {**_headline(record.report), "copies_excluded": len(record.copies)}
                    for name, record in stored_externals(info).items()
                },
            }
        )
    pairs = [
        test
        for a, b in combinations(infos, 2)
        for split in PAIRED_SPLITS
        if (test := paired_test(a, b, split)) is not None
    ]
    return {"runs": summary, "paired_tests": pairs}


def disagreements(a: RunInfo, b: RunInfo, split: str) -> pd.DataFrame:
    """Images of `split` that run A gets right and run B gets wrong (path, label, B's guess)."""
    predictions_a, predictions_b = load_predictions(a), load_predictions(b)
    if predictions_a is None or predictions_b is None or not _same_dataset(a, b):
        return pd.DataFrame(columns=["path", "label", "predicted_a", "predicted_b"])
    column = f"in_{split}"
    left = predictions_a[predictions_a[column].astype(bool)][["path", "label", "predicted"]]
    right = predictions_b[predictions_b[column].astype(bool)][["path", "predicted"]]
    joined = left.merge(right, on="path", suffixes=("_a", "_b"))
    mask = (joined["predicted_a"] == joined["label"]) & (joined["predicted_b"] != joined["label"])
    return joined[mask].reset_index(drop=True)


def misclassified(info: RunInfo, split: str = "test") -> pd.DataFrame:
    """Images of `split` the run got wrong, most confident mistakes first."""
    predictions = load_predictions(info)
    if predictions is None:
        return pd.DataFrame(columns=["path", "label", "predicted", "confidence"])
    rows = predictions[predictions[f"in_{split}"].astype(bool)]
    wrong = rows[rows["label"] != rows["predicted"]].copy()
    probability_columns = [column for column in rows if column.startswith("p_")]
    wrong["confidence"] = wrong[probability_columns].max(axis=1)
    columns = ["path", "label", "predicted", "confidence"]
    return wrong.sort_values("confidence", ascending=False)[columns].reset_index(drop=True)


SIGNIFICANCE = 0.05

PER_CLASS_KEYS = ("precision", "recall", "specificity", "f1", "roc_auc", "support")


def per_class_table(reports: dict[str, SplitReport]) -> pd.DataFrame:
    """Precision, recall, specificity, F1 and ROC-AUC per class and run."""
    rows = [
        {"run": label, "class": name, **{key: getattr(scores, key) for key in PER_CLASS_KEYS}}
        for label, report in reports.items()
        for name, scores in report.per_class.items()
    ]
    return pd.DataFrame(rows, columns=["run", "class", *PER_CLASS_KEYS])


def calibration_table(evaluations: dict[str, EvaluationRecord], split: str) -> pd.DataFrame:
    """Each run's ECE and NLL on `split`, before and after temperature scaling.

    "Before scaling" is the split report's own ECE and NLL: calibration_summary computes its
    "before" numbers from the same softmax, bins and log_loss, so a second pair of columns
    only repeated them. The report's numbers are there for validation too, which has no
    "after" (the temperature is fitted on it)."""
    rows = []
    for label, evaluation in evaluations.items():
        report = evaluation.split(split)
        scaled = evaluation.calibration.get(split) or Calibration()
        rows.append(
            {
                "run": label,
                "temperature": scaled.temperature,
                "ECE before scaling": report.ece if report else scaled.ece_before,
                "ECE after scaling": scaled.ece_after,
                "NLL before scaling": report.nll if report else scaled.nll_before,
                "NLL after scaling": scaled.nll_after,
            }
        )
    return pd.DataFrame(rows)


def paired_tests(a: RunInfo, b: RunInfo) -> tuple[pd.DataFrame, str | None]:
    """McNemar's test of A against B on each test split, and a problem that prevents it."""
    if not _same_dataset(a, b):
        return pd.DataFrame(), "the two runs were evaluated on different datasets: not paired"
    rows = []
    for split in PAIRED_SPLITS:
        try:
            result = paired_test(a, b, split)
        except (KeyError, ValueError):  # a predictions.csv with missing or odd columns
            result = None
        if result is None:
            continue
        rows.append(
            {
                "split": SPLIT_LABELS[split],
                "images": result["n"],
                "only A right": result["a_only"],
                "only B right": result["b_only"],
                "both right": result["both"],
                "both wrong": result["neither"],
                "statistic": result["statistic"],
                "p-value": result["p_value"],
                "method": result["method"],
            }
        )
    if not rows:
        return pd.DataFrame(), "no per-image predictions to pair (evaluate both runs again)"
    return pd.DataFrame(rows), None


def paired_verdict(table: pd.DataFrame, label_a: str, label_b: str) -> str:
    """One sentence per split saying whether the accuracy difference is more than chance."""
    sentences = []
    for row in table.to_dict("records"):
        split, p_value = row["split"], row["p-value"]
        if p_value < SIGNIFICANCE:
            better = label_a if row["only A right"] > row["only B right"] else label_b
            sentences.append(
                f"On the {split} split {better} is better (p = {p_value:.3g} < {SIGNIFICANCE})."
            )
        else:
            sentences.append(
                f"On the {split} split the difference could be chance (p = {p_value:.3g})."
            )
    return " ".join(sentences)
