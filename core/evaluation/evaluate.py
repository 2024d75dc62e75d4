"""Evaluate a run on its validation split, the official test split and the stricter test subsets.

The three are always computed together and stored side by side in the run's metrics.json
(key "evaluation"), with every image's probabilities in predictions.csv for galleries and
paired tests. The gap between the official and the duplicate-free test accuracy is how much
near-duplicates of training images inflate the official number.
"""

from __future__ import annotations

import functools
import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from core.atomic_files import write_bytes_atomic
from core.config import Preprocessing
from core.data import audit, scan_level
from core.data.training_data import TrainingData, prepare_training_data
from core.device import compute_policy
from core.evaluation import metrics
from core.evaluation.calibration import calibration_summary, fit_temperature
from core.events import Events, report_progress
from core.inference.predictor import WARNING_FLAG_SHARE, load_model
from core.inference.tta import with_flip_tta
from core.runs.layout import iso, jsonable, utcnow
from core.runs.metrics_records import EvaluationRecord, parse_evaluation
from core.runs.records import RunConfig
from core.runs.registry import RunInfo, resolve_run
from core.runs.writer import RunWriter
from core.training.loops import StepSettings, evaluate

SPLITS = ("val", "test", "duplicate_free_test", "unseen_scan_test")
SPLIT_LABELS = {
    "val": "validation",
    "test": "official test",
    "duplicate_free_test": "duplicate-free test",
    "unseen_scan_test": "unseen-scan test",
}
STRICTER_SPLITS = ("duplicate_free_test", "unseen_scan_test")
"""Test subsets stricter than the official test: no copy of a training image (duplicate-free);
no training image from the same scan either (unseen-scan; core.data.scan_level)."""
PREDICTIONS = "predictions.csv"
# 2: duplicate_free_test (was leak_free_test) and unseen_scan_test; 3: the warning rule.
EVALUATION_VERSION = 3
# Per-image lists are kept in predictions.csv; metrics.json keeps the summaries only.
_PER_IMAGE_KEYS = ("predicted", "correct")


class EvaluationError(ValueError):
    """A run that cannot be evaluated here (no weights, dataset missing or changed)."""


@dataclass(frozen=True)
class EvaluationSets:
    """Dataset row positions of each evaluated split, and the pixels to evaluate them on."""

    data: TrainingData
    positions: dict[str, np.ndarray]
    audit_threshold: float
    split_matches_training: bool


def evaluation_sets(config: RunConfig, events: Events | None = None) -> EvaluationSets:
    """Rebuild the run's split (seeded, so identical to training's) and the stricter subsets."""
    data_config = config.data
    if not Path(data_config.root).is_dir():
        raise EvaluationError(f"the run's dataset {data_config.root} is not on this machine")
    data = prepare_training_data(data_config, events)
    if tuple(data.classes) != config.classes:
        raise EvaluationError(
            f"the dataset's classes {list(data.classes)} differ from the run's "
            f"{list(config.classes)}"
        )
    report = data.audit_report  # built for the grouped split; None for an ungrouped one
    if report is None:
        report = audit.audit_report(data.dataset, events=events)
    audit.save_duplicate_free_manifest(data.dataset, report)
    leakage = report.test_leakage
    positions = {
        "val": data.val_positions,
        "test": data.manifest.positions("test"),
        "duplicate_free_test": leakage.loc[leakage["leakage"] == "none", "position"].to_numpy(),
        "unseen_scan_test": scan_level.unseen_scan_test(data.dataset, report, events)[
            "position"
        ].to_numpy(),
    }
    recorded = config.dataset.split_manifest_digest
    return EvaluationSets(
        data, positions, report.threshold, recorded in (None, data.manifest.digest)
    )


def stored_evaluation(info: RunInfo) -> EvaluationRecord | None:
    """The evaluation kept in the run's metrics.json, when it is there and current."""
    evaluation = info.metrics.evaluation if info.metrics else None
    return evaluation if evaluation and evaluation.version == EVALUATION_VERSION else None


def evaluate_run(
    run: str | Path,
    *,
    force: bool = False,
    bootstrap_samples: int = 1000,
    events: Events | None = None,
    tta: bool = False,
) -> EvaluationRecord:
    """The run's evaluation: computed once (then stored in metrics.json) and reused.

    `tta` scores the model with test-time augmentation (the mean over each image and its
    mirror): computed afresh and never stored, so the stored evaluation, predictions.csv and
    everything read from them stay the plain model's."""
    info = resolve_run(run)
    if info.config is None or info.damaged or not info.has_weights:
        problems = "; ".join(info.problems) or "it has no usable weights"
        raise EvaluationError(f"run {info.run_id} cannot be evaluated: {problems}")
    cached = stored_evaluation(info)
    if cached is not None and not force and not tta:
        dataset_root = Path(info.config.data.root)
        if not dataset_root.is_dir() or dataset_fingerprint(dataset_root) == cached.dataset:
            return cached  # a moved dataset keeps its stored results
    started = time.perf_counter()
    sets = evaluation_sets(info.config, events)
    model = load_model(info)
    preprocessing = info.config.preprocessing
    table = _predict(with_flip_tta(model) if tta else model, preprocessing, sets, events)
    evaluation = _summarise(info, sets, table, bootstrap_samples)
    evaluation["seconds"] = round(time.perf_counter() - started, 2)
    if tta:
        return parse_evaluation(jsonable(evaluation))
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, float_format="%.6g", lineterminator="\n")
    write_bytes_atomic(info.path / PREDICTIONS, buffer.getvalue().encode())
    RunWriter(info.path).save_metrics({"evaluation": evaluation})
    return parse_evaluation(jsonable(evaluation))


def load_predictions(info: RunInfo) -> pd.DataFrame | None:
    """Every evaluated image of a run: path, label, predicted, probabilities, split flags."""
    path = info.path / PREDICTIONS
    try:
        stat = path.stat()
    except OSError:
        return None
    # The Compare page reads the same files several times per rerun: parse each version once.
    table = _read_predictions(str(path), stat.st_mtime_ns, stat.st_size)
    return None if table is None else table.copy()


@functools.lru_cache(maxsize=32)
def _read_predictions(path: str, mtime_ns: int, size: int) -> pd.DataFrame | None:
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    required = {"path", "label", "predicted", *(f"in_{split}" for split in SPLITS)}
    return table if required <= set(table.columns) else None  # damaged: as if absent


def dataset_fingerprint(root: Path) -> str:
    """The content fingerprint of the dataset at `root` (its cached index makes this cheap)."""
    from core.data.index import open_dataset

    return open_dataset(root).fingerprint


def _predict(
    model: nn.Module,
    preprocessing: Preprocessing,
    sets: EvaluationSets,
    events: Events | None,
) -> pd.DataFrame:
    """One row per evaluated image (validation and test), with its class probabilities."""
    wanted = np.union1d(sets.positions["val"], sets.positions["test"])
    # fp32 on every machine (CUDA when present), so a run's scores do not depend on where they
    # were computed; channels_last as in training.
    policy = compute_policy(purpose="evaluate")
    settings = StepSettings(
        preprocessing, policy.device, bf16=policy.bf16, channels_last=policy.channels_last
    )
    model.to(policy.device)
    message = f"Predicting {len(wanted)} validation and test images"
    report_progress(events, "evaluate", 0, len(wanted), message)
    index = torch.from_numpy(wanted)
    result = evaluate(
        model,
        sets.data.images[index],
        sets.data.labels[index],
        loss_function=nn.CrossEntropyLoss(),
        settings=settings,
    )
    report_progress(events, "evaluate", len(wanted), len(wanted), f"Predicted {len(wanted)} images")
    probabilities = metrics.softmax(result.logits)
    frame = sets.data.dataset.frame
    table = pd.DataFrame(
        {
            "path": frame["path"].to_numpy()[wanted],
            "label": result.labels,
            "predicted": probabilities.argmax(axis=1),
        }
    )
    for column, name in enumerate(sets.data.classes):
        table[f"p_{name}"] = probabilities[:, column]
    for column, logits in enumerate(result.logits.T):
        table[f"logit_{column}"] = logits
    for split in SPLITS:
        table[f"in_{split}"] = np.isin(wanted, sets.positions[split])
    return table


def _split_arrays(table: pd.DataFrame, split: str, classes: int) -> tuple[np.ndarray, ...]:
    rows = table[table[f"in_{split}"]]
    logits = rows[[f"logit_{column}" for column in range(classes)]].to_numpy(np.float64)
    return rows["label"].to_numpy(np.int64), logits


def _summarise(
    info: RunInfo, sets: EvaluationSets, table: pd.DataFrame, bootstrap_samples: int
) -> dict[str, Any]:
    classes = list(sets.data.classes)
    reports: dict[str, Any] = {}
    arrays = {split: _split_arrays(table, split, len(classes)) for split in SPLITS}
    for split, (labels, logits) in arrays.items():
        if len(labels) == 0:
            reports[split] = None  # e.g. a dataset without a test split
            continue
        report = metrics.classification_report(
            labels, metrics.softmax(logits), classes, bootstrap_samples=bootstrap_samples
        )
        reports[split] = {k: v for k, v in report.items() if k not in _PER_IMAGE_KEYS}
    calibration: dict[str, Any] = {}
    val_labels, val_logits = arrays["val"]
    # One temperature, fitted once on validation, for every test split and the warning rule.
    temperature = fit_temperature(val_logits, val_labels) if len(val_labels) else None
    for split in ("test", *STRICTER_SPLITS):
        labels, logits = arrays[split]
        if len(labels) and temperature is not None:
            calibration[split] = calibration_summary(
                val_logits, val_labels, logits, labels, temperature=temperature
            )
    return {
        "version": EVALUATION_VERSION,
        "created_at": iso(utcnow()),
        "warning": (warning_rule(val_logits, temperature) if temperature is not None else None),
        "dataset": sets.data.dataset.fingerprint,
        "audit_threshold": sets.audit_threshold,
        "split_matches_training": sets.split_matches_training,
        "classes": classes,
        "splits": reports,
        "calibration": calibration,
    }


def warning_rule(val_logits: np.ndarray, temperature: float) -> dict[str, float]:
    """The run's warning rule: flag a prediction whose temperature-scaled top-class probability
    is below the one WARNING_FLAG_SHARE of the validation images fall under."""
    confidence = metrics.softmax(val_logits, temperature).max(axis=1)
    return {
        "temperature": temperature,
        "threshold": float(np.quantile(confidence, WARNING_FLAG_SHARE)),
        "flag_share": WARNING_FLAG_SHARE,
    }


def split_summary(evaluation: EvaluationRecord, split: str) -> dict[str, Any] | None:
    """The headline numbers of one split, as JSON (what `evaluate --json` prints per split)."""
    report = evaluation.split(split)
    if report is None:
        return None
    keys = (
        "n", "accuracy", "accuracy_ci", "balanced_accuracy", "balanced_accuracy_ci", "macro_f1",
        "macro_f1_ci", "mcc", "ece", "nll",
    )  # fmt: skip
    summary: dict[str, Any] = {key: getattr(report, key) for key in keys}
    summary.update(
        roc_auc_macro=report.roc_auc_macro,
        per_class={name: asdict(scores) for name, scores in report.per_class.items()},
        confusion_matrix=report.confusion_matrix,
    )
    calibration = evaluation.calibration.get(split)
    if calibration:
        summary["temperature_scaled"] = asdict(calibration)
    return jsonable(summary)
