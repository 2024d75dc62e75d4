"""metrics.json as typed records: how training went, and the stored evaluation report.

Training writes the top level and `val`; evaluation (`core.evaluation.evaluate`) writes the
`evaluation` report, whose version it checks when reading it back. A number that is not one
reads as None; a section of the wrong shape gives no record and one line of problem.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from core.runs.parsing import RecordError, matches, parse_lenient


@dataclass(frozen=True)
class ValidationMetrics:
    """The best epoch's validation numbers, as training recorded them."""

    n: int | None = None
    accuracy: float | None = None
    loss: float | None = None
    confusion_matrix: tuple[tuple[int, ...], ...] | None = None


@dataclass(frozen=True)
class ClassScores:
    """One class's one-vs-rest scores on one split."""

    precision: float | None = None
    recall: float | None = None  # sensitivity
    specificity: float | None = None
    f1: float | None = None
    support: int | None = None
    roc_auc: float | None = None  # None when the split lacks positives or negatives


@dataclass(frozen=True)
class SplitReport:
    """A run's scores on one split (validation, official test, a stricter test subset)."""

    n: int
    accuracy: float | None = None
    accuracy_ci: tuple[float, ...] | None = None  # bootstrap 95% interval (low, high)
    macro_f1: float | None = None
    macro_f1_ci: tuple[float, ...] | None = None
    balanced_accuracy: float | None = None  # mean recall over the classes present
    balanced_accuracy_ci: tuple[float, ...] | None = None
    mcc: float | None = None
    ece: float | None = None
    nll: float | None = None
    per_class: dict[str, ClassScores] = field(default_factory=dict)
    confusion_matrix: tuple[tuple[int, ...], ...] = ()  # rows true, columns predicted
    roc_auc_macro: float | None = None
    roc_curves: dict[str, Any] = field(default_factory=dict)  # class -> {fpr, tpr} or None
    reliability: tuple[dict[str, Any], ...] = ()  # non-empty confidence bins


@dataclass(frozen=True)
class Calibration:
    """Temperature scaling fitted on validation, and its effect on one test split."""

    temperature: float | None = None
    ece_before: float | None = None
    ece_after: float | None = None
    nll_before: float | None = None
    nll_after: float | None = None


@dataclass(frozen=True)
class WarningRule:
    """When Classify and `predict` warn that a prediction is unreliable: its top-class
    probability after temperature scaling is below `threshold`, the value under which
    `flag_share` of the validation images fall (core.evaluation.detectors measured it)."""

    temperature: float = 1.0
    threshold: float = 0.0
    flag_share: float | None = None


@dataclass(frozen=True)
class EvaluationRecord:
    """The stored evaluation: every split's report side by side, computed on one dataset."""

    version: int | None = None
    created_at: str | None = None
    dataset: str | None = None  # the dataset's content fingerprint
    audit_threshold: float | None = None
    split_matches_training: bool = True
    classes: tuple[str, ...] = ()
    splits: dict[str, SplitReport | None] = field(default_factory=dict)
    calibration: dict[str, Calibration] = field(default_factory=dict)
    warning: WarningRule | None = None
    seconds: float | None = None

    def split(self, name: str) -> SplitReport | None:
        """The report of one split, or None when the run has none there."""
        return self.splits.get(name)


def _split_report(values: Any) -> SplitReport | None:
    if values is None:
        return None  # e.g. a dataset without a test split
    if not isinstance(values, dict) or not isinstance(values.get("n"), int):
        raise RecordError("a split report has no image count")
    per_class = values.get("per_class")
    if not isinstance(per_class, dict) or not all(isinstance(v, dict) for v in per_class.values()):
        raise RecordError("a split report has no per-class scores")
    report = parse_lenient(SplitReport, values)
    return dataclasses.replace(
        report,
        per_class={str(name): parse_lenient(ClassScores, one) for name, one in per_class.items()},
    )


def parse_evaluation(payload: Any) -> EvaluationRecord:
    """The evaluation report as an EvaluationRecord; RecordError when its parts are misshapen."""
    if not isinstance(payload, dict):
        raise RecordError("the evaluation is not an object")
    splits, calibration = payload.get("splits"), payload.get("calibration", {})
    if not isinstance(splits, dict) or not isinstance(calibration, dict):
        raise RecordError("the evaluation has no splits")
    if not all(isinstance(one, dict) for one in calibration.values()):
        raise RecordError("the evaluation's calibration is unreadable")
    parts = ("splits", "calibration", "warning")
    top = parse_lenient(EvaluationRecord, {k: v for k, v in payload.items() if k not in parts})
    warning = payload.get("warning")
    return dataclasses.replace(
        top,
        warning=parse_lenient(WarningRule, warning) if isinstance(warning, dict) else None,
        splits={str(name): _split_report(report) for name, report in splits.items()},
        calibration={
            str(name): parse_lenient(Calibration, one) for name, one in calibration.items()
        },
    )


@dataclass(frozen=True)
class StressPoint:
    """A run's score on the stress-test images under one shift at one severity."""

    severity: float
    accuracy: float | None = None
    accuracy_ci: tuple[float, ...] | None = None
    macro_f1: float | None = None


@dataclass(frozen=True)
class StressRecord:
    """The stored stress test: per shift, the score at each severity (the first: unshifted)."""

    version: int | None = None
    created_at: str | None = None
    dataset: str | None = None  # the dataset's content fingerprint
    subset: str | None = None  # which test images were shifted (an evaluation split's name)
    n: int | None = None
    shifts: dict[str, tuple[StressPoint, ...]] = field(default_factory=dict)


def parse_stress(payload: Any) -> StressRecord:
    """The stress report as a StressRecord; RecordError when its parts are misshapen."""
    if not isinstance(payload, dict) or not isinstance(payload.get("shifts"), dict):
        raise RecordError("the stress test has no shifts")
    shifts = {}
    for name, points in payload["shifts"].items():
        if not isinstance(points, list) or not all(
            isinstance(point, dict) and matches(point.get("severity"), float) for point in points
        ):
            raise RecordError(f"the stress test's {name} points are unreadable")
        shifts[str(name)] = tuple(parse_lenient(StressPoint, point) for point in points)
    top = parse_lenient(StressRecord, {k: v for k, v in payload.items() if k != "shifts"})
    return dataclasses.replace(top, shifts=shifts)


@dataclass(frozen=True)
class ExternalCopy:
    """An external image that is a copy of an image the run learned from."""

    path: str  # in the external folder
    source_path: str  # the image of the run's dataset it copies
    source_role: str | None = None  # its role in the run: "train" or "val"
    distance: float | None = None  # the audit's descriptor distance (0 for identical pixels)


@dataclass(frozen=True)
class ExternalRecord:
    """A run's scores on one external test set (a labelled folder from elsewhere)."""

    version: int | None = None
    created_at: str | None = None
    name: str = ""
    root: str | None = None
    fingerprint: str | None = None  # the folder's content fingerprint
    class_map: dict[str, str] = field(default_factory=dict)  # folder class -> run class
    unknown_classes: dict[str, int] = field(default_factory=dict)  # not scored: class -> images
    unreadable: tuple[dict[str, str], ...] = ()  # {path, reason} of files that did not decode
    images: int | None = None  # readable images of classes the run knows
    copies: tuple[ExternalCopy, ...] = ()  # excluded from `report`
    copies_checked: bool = True  # False: the run's dataset was not here to check against
    audit_threshold: float | None = None
    report: SplitReport | None = None  # copies excluded: the external score
    report_with_copies: SplitReport | None = None
    seconds: float | None = None


def parse_external(payload: Any) -> ExternalRecord:
    """One stored external evaluation; RecordError when its parts are misshapen."""
    if not isinstance(payload, dict) or not isinstance(payload.get("name"), str):
        raise RecordError("an external evaluation has no name")
    copies = payload.get("copies", [])
    if not isinstance(copies, list) or not all(isinstance(one, dict) for one in copies):
        raise RecordError("an external evaluation's copies are unreadable")
    reports = ("report", "report_with_copies", "copies")
    top = parse_lenient(ExternalRecord, {k: v for k, v in payload.items() if k not in reports})
    return dataclasses.replace(
        top,
        copies=tuple(parse_lenient(ExternalCopy, one) for one in copies),
        report=_split_report(payload.get("report")),
        report_with_copies=_split_report(payload.get("report_with_copies")),
    )


def _parse_externals(payload: Any) -> dict[str, ExternalRecord]:
    """Each readable stored external evaluation by name; unreadable ones are left out (and
    offered for evaluation again)."""
    if not isinstance(payload, dict):
        return {}
    records = {}
    for name, one in payload.items():
        try:
            records[str(name)] = parse_external(one)
        except RecordError:
            continue
    return records


@dataclass(frozen=True)
class DetectorRecord:
    """The stored measurement of the warning scores as error detectors (`warnings` command):
    per set name, per detector, its flag report (and AURC and risk-coverage points)."""

    version: int | None = None
    created_at: str | None = None
    flag_share_on_validation: float | None = None
    temperature: float | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    shifted_sets: tuple[str, ...] = ()
    sets: dict[str, dict] = field(default_factory=dict)
    seconds: float | None = None


@dataclass(frozen=True)
class RunMetrics:
    """metrics.json: how training went, and the stored evaluation (when evaluated)."""

    best_epoch: int | None = None
    epochs_run: int | None = None
    train_seconds: float | None = None
    stopped_early: bool | None = None
    batch_size: int | None = None
    val: ValidationMetrics | None = None
    evaluation: EvaluationRecord | None = None
    stress: StressRecord | None = None
    external: dict[str, ExternalRecord] = field(default_factory=dict)  # by the set's name
    detectors: DetectorRecord | None = None


def parse_metrics(payload: Any) -> RunMetrics:
    """metrics.json as RunMetrics; RecordError when its sections have the wrong shape."""
    if not isinstance(payload, dict):
        raise RecordError("is not a JSON object")
    wrong = [
        name
        for name in ("val", "evaluation")
        if name in payload and not isinstance(payload[name], dict)
    ]
    if wrong:
        raise RecordError(f"has unreadable sections ({', '.join(wrong)})")
    try:
        evaluation = parse_evaluation(payload["evaluation"]) if "evaluation" in payload else None
    except RecordError:
        # A report of another shape (an older workbench, a hand edit) reads as no evaluation:
        # the run is offered for evaluation again, which rewrites it.
        evaluation = None
    try:
        stress = parse_stress(payload["stress"]) if "stress" in payload else None
    except RecordError:
        stress = None  # as for the evaluation: the stress test is offered again
    sections = ("val", "evaluation", "stress", "external", "detectors")
    training = {key: value for key, value in payload.items() if key not in sections}
    return dataclasses.replace(
        parse_lenient(RunMetrics, training),
        val=parse_lenient(ValidationMetrics, payload["val"]) if "val" in payload else None,
        evaluation=evaluation,
        stress=stress,
        external=_parse_externals(payload.get("external")),
        detectors=(
            parse_lenient(DetectorRecord, payload["detectors"])
            if isinstance(payload.get("detectors"), dict)
            else None
        ),
    )
