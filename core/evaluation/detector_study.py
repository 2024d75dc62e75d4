"""Measure the warnings of one run as error detectors (core.evaluation.detectors) on its
validation images (thresholds), its duplicate-free test (unshifted and under every stress shift
at moderate severity) and its stored external sets. `python -m core warnings RUN`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.evaluation.calibration import fit_temperature
from core.evaluation.detectors import (
    FLAG_SHARE,
    FeatureModel,
    Scored,
    evaluate_set,
    logits_and_features,
    score_images,
    score_outputs,
    thresholds,
)
from core.evaluation.evaluate import EvaluationError, evaluation_sets
from core.evaluation.external import predictions_path, stored_externals
from core.evaluation.stress import STRESS_SUBSET
from core.events import Events, report_progress
from core.imaging.reader import read_image
from core.imaging.shifts import SHIFTS, apply_shift
from core.inference.predictor import Predictor
from core.runs.layout import iso, jsonable, utcnow
from core.runs.registry import RunInfo, resolve_run
from core.runs.writer import RunWriter

DETECTORS_VERSION = 1


def _external_images(info: RunInfo, name: str) -> tuple[list[np.ndarray], np.ndarray] | None:
    """An external set's scored images (decoded, copies left out) and labels, if still there."""
    record = stored_externals(info)[name]
    try:
        table = pd.read_csv(predictions_path(info, name))
    except (OSError, ValueError):
        return None
    rows = table[(~table["copy"].astype(bool)) & (table["predicted"] >= 0)]
    root = Path(record.root or "")
    images, labels = [], []
    for path, label in zip(rows["path"], rows["label"], strict=True):
        try:
            images.append(read_image(root / path).pixels)
            labels.append(int(label))
        except (OSError, ValueError):
            continue
    return (images, np.array(labels, dtype=np.int64)) if images else None


def study_run(run: str | Path, events: Events | None = None) -> dict[str, Any]:
    """Every detector's report on every set of the run; stored in metrics.json ("detectors")."""
    info = resolve_run(run)
    if info.config is None or not info.usable:
        problems = "; ".join(info.problems) or "it is not a completed run with weights"
        raise EvaluationError(f"run {info.run_id} cannot be studied: {problems}")
    started = time.perf_counter()
    sets = evaluation_sets(info.config, events)
    data = sets.data
    labels = data.labels.numpy()
    predictor = Predictor.from_run(info.path, purpose="evaluate")
    report_progress(events, "detectors", 0, 1, "Fitting the feature model on training images")
    pixels = data.images.numpy()
    train = data.train_positions
    _, train_features = logits_and_features(predictor, list(pixels[train]))
    features_model = FeatureModel.fit(train_features, labels[train], len(data.classes))
    val = sets.positions["val"]
    val_images = list(pixels[val])
    val_logits, val_features = logits_and_features(predictor, val_images)
    temperature = fit_temperature(val_logits, labels[val])
    validation = score_outputs(
        val_logits, val_features, val_images, labels[val], temperature, features_model,
        predictor.input_ranges,
    )  # fmt: skip
    cutoffs = thresholds(validation)
    results: dict[str, Any] = {"validation": evaluate_set(validation, cutoffs)}
    positions = sets.positions[STRESS_SUBSET]
    frame, root = data.dataset.frame, data.dataset.root
    test_images = [read_image(root / frame["path"].iat[int(p)]).pixels for p in positions]
    test_labels = labels[positions]

    def scored(images: list[np.ndarray], truth: np.ndarray) -> Scored:
        return score_images(predictor, images, truth, temperature, features_model)

    results["duplicate-free test"] = evaluate_set(scored(test_images, test_labels), cutoffs)
    shifted_sets = []
    for done, (name, shift) in enumerate(SHIFTS.items()):
        report_progress(events, "detectors", done, len(SHIFTS), f"Detectors under {name}")
        shifted = [
            apply_shift(image, name, shift.moderate, seed=index)
            for index, image in enumerate(test_images)
        ]
        key = f"{name} {shift.moderate:g}"
        results[key] = evaluate_set(scored(shifted, test_labels), cutoffs)
        shifted_sets.append(key)
    for name in stored_externals(info):
        loaded = _external_images(info, name)
        if loaded is not None:
            results[f"external: {name}"] = evaluate_set(scored(*loaded), cutoffs)
            shifted_sets.append(f"external: {name}")
    payload = jsonable(
        {
            "version": DETECTORS_VERSION,
            "created_at": iso(utcnow()),
            "flag_share_on_validation": FLAG_SHARE,
            "temperature": temperature,
            "thresholds": cutoffs,
            "shifted_sets": shifted_sets,
            "sets": results,
            "seconds": round(time.perf_counter() - started, 2),
        }
    )
    RunWriter(info.path).save_metrics({"detectors": payload})
    report_progress(events, "detectors", 1, 1, "Detectors measured")
    return payload


def summary_over_shifts(payload: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per detector: the mean over the shifted sets of the share flagged, unflagged accuracy
    and AURC, and the lowest unflagged accuracy."""
    summary = {}
    shifted = payload["shifted_sets"]
    for name in payload["sets"]["validation"]:
        reports = [payload["sets"][key][name] for key in shifted]
        unflagged = [
            r["unflagged_accuracy"] for r in reports if r["unflagged_accuracy"] is not None
        ]
        summary[name] = {
            "flagged_share": float(np.mean([r["flagged_share"] for r in reports])),
            "unflagged_accuracy": float(np.mean(unflagged)) if unflagged else float("nan"),
            "worst_unflagged_accuracy": float(np.min(unflagged)) if unflagged else float("nan"),
            "aurc": float(np.mean([r["aurc"] for r in reports])) if "aurc" in reports[0] else None,
        }
    return summary
