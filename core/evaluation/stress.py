"""Stress tests: a run's accuracy on its duplicate-free test images under scanner-like shifts.

Each shift of `core.imaging.shifts` is applied at each of its severities to the decoded test
images, before the run's own preprocessing, exactly as an upload would be classified. The
unshifted score is computed once and is every shift's first point, so severity 0 equals the
evaluation's duplicate-free test accuracy. Results go into the run's metrics.json ("stress"),
are reused, and are recomputed only for shifts not stored yet, or with `force`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from core.evaluation import metrics
from core.evaluation.evaluate import EvaluationError, evaluation_sets
from core.events import Events, report_progress
from core.imaging.reader import read_image
from core.imaging.shifts import SHIFTS, apply_shift
from core.inference.predictor import Predictor
from core.runs.layout import iso, jsonable, utcnow
from core.runs.metrics_records import StressPoint, StressRecord, parse_stress
from core.runs.registry import RunInfo, resolve_run
from core.runs.writer import RunWriter

STRESS_VERSION = 1
STRESS_SUBSET = "duplicate_free_test"  # test images with no exact or near copy in training
BATCH = 64


def stored_stress(info: RunInfo) -> StressRecord | None:
    """The stress test kept in the run's metrics.json, when it is there and current."""
    stress = info.metrics.stress if info.metrics else None
    return stress if stress and stress.version == STRESS_VERSION else None


def moderate_shift_accuracies(info: RunInfo) -> dict[str, float]:
    """Duplicate-free accuracy under each stored shift at its moderate severity (the severity
    the robustness goals are stated at); empty where the run has no stress test."""
    stress = stored_stress(info)
    return {
        name: point.accuracy
        for name, points in (stress.shifts if stress else {}).items()
        for point in points
        if name in SHIFTS and point.severity == SHIFTS[name].moderate and point.accuracy is not None
    }


def moderate_shift_scores(info: RunInfo) -> dict[str, float | None]:
    """Worst and mean accuracy over the moderate shifts (None: not stress-tested)."""
    scores = list(moderate_shift_accuracies(info).values())
    return {
        "stress_worst_accuracy": min(scores) if scores else None,
        "stress_mean_accuracy": float(np.mean(scores)) if scores else None,
    }


def wanted_severities(name: str, moderate_only: bool = False) -> tuple[float, ...]:
    """The severities a stress test of shift `name` scores: all, or unshifted and moderate."""
    shift = SHIFTS[name]
    return (shift.severities[0], shift.moderate) if moderate_only else shift.severities


def incomplete_shifts(
    shifts: Mapping[str, Sequence[StressPoint]],
    names: Sequence[str],
    *,
    moderate_only: bool = False,
) -> list[str]:
    """The shifts of `names` whose stored points lack a wanted severity (a study cell's
    moderate-only test lacks the others of a full one)."""
    return [
        name
        for name in names
        if not set(wanted_severities(name, moderate_only))
        <= {point.severity for point in shifts.get(name, ())}
    ]


def _check_shifts(names: Sequence[str] | None) -> list[str]:
    chosen = list(names) if names else list(SHIFTS)
    unknown = [name for name in chosen if name not in SHIFTS]
    if unknown:
        raise ValueError(f"unknown shift {unknown[0]!r}; choose from {', '.join(SHIFTS)}")
    return chosen


def _score(
    predictor: Predictor, images: list[np.ndarray], labels: np.ndarray, bootstrap_samples: int
) -> dict[str, Any]:
    """Accuracy (with its bootstrap 95% interval) and macro-F1 of the run on `images`."""
    predicted = np.concatenate(
        [
            predictor.probabilities(images[start : start + BATCH]).argmax(axis=1)
            for start in range(0, len(images), BATCH)
        ]
    )
    interval = (
        list(metrics.bootstrap_ci(labels, predicted, metrics.accuracy, samples=bootstrap_samples))
        if bootstrap_samples > 0
        else None
    )
    return {
        "accuracy": metrics.accuracy(labels, predicted),
        "accuracy_ci": interval,
        "macro_f1": metrics.macro_f1(labels, predicted),
    }


def stress_run(
    run: str | Path,
    *,
    shifts: Sequence[str] | None = None,
    force: bool = False,
    bootstrap_samples: int = 1000,
    moderate_only: bool = False,
    events: Events | None = None,
) -> StressRecord:
    """The run's stress test for `shifts` (all by default): stored ones reused, others computed
    (`force`: the chosen shifts recomputed, the other stored ones kept).

    `moderate_only` scores each shift at its moderate severity only (a study's cells: a tenth
    of the full test's time); a later full request computes the missing severities.
    """
    chosen = _check_shifts(shifts)
    info = resolve_run(run)
    if info.config is None or not info.usable:
        problems = "; ".join(info.problems) or "it is not a completed run with weights"
        raise EvaluationError(f"run {info.run_id} cannot be stress-tested: {problems}")
    sets = evaluation_sets(info.config, events)
    fingerprint = sets.data.dataset.fingerprint
    stored = stored_stress(info)
    kept = {} if stored is None or stored.dataset != fingerprint else dict(stored.shifts)
    if force:  # recompute the chosen shifts; keep the others' stored results
        kept = {name: points for name, points in kept.items() if name not in chosen}

    missing = incomplete_shifts(kept, chosen, moderate_only=moderate_only)
    if not missing:
        return stored  # type: ignore[return-value]  # kept is non-empty only when stored is
    positions = sets.positions[STRESS_SUBSET]
    if len(positions) == 0:
        raise EvaluationError(f"run {info.run_id}: the dataset has no duplicate-free test images")
    started = time.perf_counter()
    frame, root = sets.data.dataset.frame, sets.data.dataset.root
    images = [read_image(root / frame["path"].iat[int(position)]).pixels for position in positions]
    labels = sets.data.labels.numpy()[positions]
    predictor = Predictor.from_run(info.path, purpose="evaluate")
    baseline = {"severity": None, **_score(predictor, images, labels, bootstrap_samples)}
    computed: dict[str, list[dict[str, Any]]] = {}
    total = sum(len(wanted_severities(name, moderate_only)) - 1 for name in missing)
    done = 0
    for name in missing:
        severities = wanted_severities(name, moderate_only)
        points = [{**baseline, "severity": severities[0]}]
        for severity in severities[1:]:
            report_progress(events, "stress", done, total, f"Stress test: {name} at {severity}")
            shifted = [
                apply_shift(image, name, severity, seed=index) for index, image in enumerate(images)
            ]
            points.append(
                {"severity": severity, **_score(predictor, shifted, labels, bootstrap_samples)}
            )
            done += 1
        computed[name] = points
    report_progress(events, "stress", total, total, "Stress test done")
    payload = {
        "version": STRESS_VERSION,
        "created_at": iso(utcnow()),
        "dataset": fingerprint,
        "subset": STRESS_SUBSET,
        "n": len(positions),
        "seconds": round(time.perf_counter() - started, 2),
        "shifts": {
            **{name: [asdict(point) for point in points] for name, points in kept.items()},
            **computed,
        },
    }
    payload = jsonable(payload)
    RunWriter(info.path).save_metrics({"stress": payload})
    return parse_stress(payload)
