"""External test sets: score a run on any labelled folder from elsewhere.

The folder is read like a dataset (class folders, optionally under split folders, which are
pooled; JPEG, PNG, DICOM...). Its classes are matched to the run's by name, ignoring case,
separators and British spelling ("No Tumour" = "no_tumor" = "notumor"; "glioma_tumor" =
"glioma"), or by an explicit map; classes the run does not know are counted and reported, not
scored. Images that are copies of an image the run learned from (its training or validation part:
identical pixels, or within the audit's near-duplicate threshold) are excluded from the
external score and listed: an "external" set that is really the same images must not inflate
it.

Results are stored in the run's metrics.json under "external", by the set's name, with the
folder's content fingerprint; per-image predictions in `external-<name>.csv` in the run folder.
"""

from __future__ import annotations

import io
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.atomic_files import write_bytes_atomic
from core.data import audit
from core.data.discovery import DatasetError
from core.data.index import Dataset, open_dataset
from core.evaluation import metrics
from core.evaluation.evaluate import EvaluationError, stored_evaluation
from core.events import Events, report_progress
from core.imaging.reader import SUPPORTED_EXTENSIONS, ImageReadError, read_image
from core.inference.predictor import Predictor
from core.inference.training_copies import TrainingCopies
from core.runs.layout import iso, jsonable, utcnow
from core.runs.metrics_records import ExternalRecord, parse_external
from core.runs.registry import RunInfo, resolve_run
from core.runs.writer import RunWriter

EXTERNAL_VERSION = 1
BATCH = 64
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,59}$")


def class_key(name: str) -> str:
    """A class name reduced to what matters for matching: letters and digits, lower case,
    'tumour' spelled 'tumor'."""
    return re.sub(r"[^a-z0-9]", "", name.lower().replace("tumour", "tumor"))


def _loose_key(name: str) -> str:
    # "glioma_tumor" and "glioma" are the same class; "no_tumor" stays "notumor".
    key = class_key(name)
    return key if key == "notumor" else key.removesuffix("tumor") or key


def parse_class_map(items: Sequence[str]) -> dict[str, str]:
    """`FOLDER_CLASS=RUN_CLASS` items as a dict; ValueError for one without '='."""
    mapping = {}
    for item in items:
        folder_class, separator, run_class = item.partition("=")
        if not separator or not folder_class.strip() or not run_class.strip():
            raise ValueError(f"class map {item!r} is not FOLDER_CLASS=RUN_CLASS")
        mapping[folder_class.strip()] = run_class.strip()
    return mapping


def match_classes(
    folder_classes: Sequence[str], run_classes: Sequence[str], class_map: Mapping[str, str]
) -> dict[str, str | None]:
    """Each folder class's run class, or None when the run does not know it.

    `class_map` (folder class -> run class, both matched loosely) comes first; ValueError when
    it names a class that is in neither.
    """
    by_key = {class_key(name): name for name in run_classes}
    by_loose = {_loose_key(name): name for name in run_classes}
    folder_by_key = {class_key(name): name for name in folder_classes}
    explicit: dict[str, str] = {}
    for folder_class, run_class in class_map.items():
        target = by_key.get(class_key(run_class))
        if target is None:
            raise ValueError(
                f"class map {folder_class}={run_class}: the run has no class {run_class!r} "
                f"(it has {', '.join(run_classes)})"
            )
        source = folder_by_key.get(class_key(folder_class))
        if source is None:
            raise ValueError(
                f"class map {folder_class}={run_class}: the folder has no class "
                f"{folder_class!r} (it has {', '.join(folder_classes)})"
            )
        explicit[source] = target
    return {
        name: explicit.get(name) or by_key.get(class_key(name)) or by_loose.get(_loose_key(name))
        for name in folder_classes
    }


def _check_name(name: str) -> str:
    name = name.strip()
    if not NAME_PATTERN.match(name):
        raise ValueError(
            f"external set name {name!r}: use up to 60 letters, digits, spaces, '.', '_' or '-'"
        )
    return name


def default_name(folder: Path) -> str:
    """The folder's own name, made a valid set name."""
    cleaned = re.sub(r"[^A-Za-z0-9 ._-]", "_", Path(folder).resolve().name).strip(" ._-")
    return (cleaned or "external")[:60]


def predictions_path(info: RunInfo, name: str) -> Path:
    """Where the per-image predictions of external set `name` are kept."""
    slug = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    return info.path / f"external-{slug}.csv"


def stored_external(info: RunInfo, name: str) -> ExternalRecord | None:
    """The run's stored evaluation on external set `name`, when it is there and current."""
    return stored_externals(info).get(name)


def stored_externals(info: RunInfo) -> dict[str, ExternalRecord]:
    """Every current stored external evaluation of the run, by name."""
    records = info.metrics.external if info.metrics else {}
    return {name: one for name, one in records.items() if one.version == EXTERNAL_VERSION}


def _open_folder(folder: Path, events: Events | None) -> Dataset:
    try:
        return open_dataset(folder, events, for_testing=True)
    except DatasetError as error:
        raise EvaluationError(f"external set: {error}") from error


def _copies(
    info: RunInfo, external: Dataset, events: Events | None
) -> tuple[pd.DataFrame | None, float]:
    """Per external image: the nearest image the run learned from, its distance and whether
    it counts as a copy. None when the run's dataset is not on this machine."""
    evaluation = stored_evaluation(info)
    threshold = (evaluation.audit_threshold if evaluation else None) or audit.DEFAULT_THRESHOLD
    learned = TrainingCopies.for_run(info, threshold, events)
    if learned is None:
        return None, threshold
    report_progress(events, "external", 0, 1, "Looking for copies of the run's images")
    descriptors = audit.dataset_descriptors(external, events)
    return learned.match(descriptors, external.frame["pixel_hash"].tolist()), threshold


def _predict(
    predictor: Predictor, external: Dataset, rows: np.ndarray, events: Events | None
) -> tuple[np.ndarray, list[dict[str, str]]]:
    """Logits of the images at `rows` (NaN rows for files that no longer decode)."""
    logits = np.full((len(rows), len(predictor.classes)), np.nan, dtype=np.float32)
    unreadable: list[dict[str, str]] = []
    for start in range(0, len(rows), BATCH):
        batch, kept = [], []
        for offset, row in enumerate(rows[start : start + BATCH]):
            relative = external.frame["path"].iat[int(row)]
            try:
                batch.append(read_image(external.root / relative).pixels)
                kept.append(start + offset)
            except (ImageReadError, OSError) as error:
                unreadable.append({"path": relative, "reason": str(error)})
        if batch:
            logits[kept] = predictor.logits(batch)
        done = min(start + BATCH, len(rows))
        report_progress(events, "external", done, len(rows), f"Predicting {done}/{len(rows)}")
    return logits, unreadable


def _unreadable(external: Dataset) -> list[dict[str, str]]:
    """The image files (by extension) that indexing could not decode; not other skipped files."""
    return [
        {"path": item.path, "reason": item.reason}
        for item in external.skipped
        if Path(item.path).suffix.lower() in SUPPORTED_EXTENSIONS
        and not Path(item.path).name.startswith(".")
    ]


def _report(
    labels: np.ndarray, logits: np.ndarray, classes: list[str], bootstrap_samples: int
) -> dict[str, Any] | None:
    if len(labels) == 0:
        return None
    report = metrics.classification_report(
        labels, metrics.softmax(logits.astype(np.float64)), classes,
        bootstrap_samples=bootstrap_samples,
    )  # fmt: skip
    return {key: value for key, value in report.items() if key not in ("predicted", "correct")}


def evaluate_external(
    run: str | Path,
    folder: str | Path,
    *,
    name: str | None = None,
    class_map: Mapping[str, str] | None = None,
    force: bool = False,
    bootstrap_samples: int = 1000,
    events: Events | None = None,
) -> ExternalRecord:
    """The run's scores on the labelled folder `folder`: stored under `name` (the folder's
    name by default) and reused while the folder's content and the class map are unchanged.

    EvaluationError (one line) for a run without weights, a folder that is not a labelled
    image folder, or one none of whose classes the run knows.
    """
    info = resolve_run(run)
    if info.config is None or not info.usable:
        problems = "; ".join(info.problems) or "it is not a completed run with weights"
        raise EvaluationError(f"run {info.run_id} cannot be evaluated: {problems}")
    folder = Path(folder).expanduser()
    name = _check_name(name or default_name(folder))
    external = _open_folder(folder, events)
    run_classes = list(info.config.classes)
    try:
        matched = match_classes(external.classes, run_classes, class_map or {})
    except ValueError as error:
        raise EvaluationError(str(error)) from error
    known = {folder_class: run_class for folder_class, run_class in matched.items() if run_class}
    stored = stored_external(info, name)
    if (
        stored is not None
        and not force
        and stored.fingerprint == external.fingerprint
        and stored.class_map == known
    ):
        return stored
    counts = external.frame["label"].value_counts()
    unknown = {label: int(counts.get(label, 0)) for label, target in matched.items() if not target}
    if not known:
        raise EvaluationError(
            f"none of the folder's classes ({', '.join(external.classes)}) matches the run's "
            f"({', '.join(run_classes)}); map them with --class-map FOLDER_CLASS=RUN_CLASS"
        )
    started = time.perf_counter()
    copies, threshold = _copies(info, external, events)
    rows = np.flatnonzero(external.frame["label"].isin(list(known)).to_numpy())
    predictor = Predictor.from_run(info.path, purpose="evaluate")
    logits, failed = _predict(predictor, external, rows, events)
    decoded = ~np.isnan(logits).any(axis=1)
    frame = external.frame.iloc[rows]
    class_index = {label: index for index, label in enumerate(run_classes)}
    labels = frame["label"].map(known).map(class_index).to_numpy(np.int64)
    is_copy = copies["copy"].to_numpy()[rows] if copies is not None else np.zeros(len(rows), bool)
    scored = decoded & ~is_copy
    table = pd.DataFrame(
        {
            "path": frame["path"].to_numpy(),
            "folder_class": frame["label"].to_numpy(),
            "label": labels,
            "predicted": np.where(decoded, np.nan_to_num(logits).argmax(axis=1), -1),
            "copy": is_copy,
        }
    )
    for column in range(len(run_classes)):
        table[f"logit_{column}"] = logits[:, column]
    if copies is not None:
        table["nearest_source"] = copies["source_path"].to_numpy()[rows]
        table["nearest_distance"] = copies["distance"].to_numpy()[rows]
    copy_rows = np.flatnonzero(is_copy & decoded)
    payload = {
        "version": EXTERNAL_VERSION,
        "created_at": iso(utcnow()),
        "name": name,
        "root": str(external.root),
        "fingerprint": external.fingerprint,
        "class_map": known,
        "unknown_classes": unknown,
        "unreadable": _unreadable(external) + failed,
        "images": int(decoded.sum()),
        "copies": [
            {
                "path": table["path"].iat[row],
                "source_path": copies["source_path"].iat[rows[row]],
                "source_role": copies["source_role"].iat[rows[row]],
                "distance": float(copies["distance"].iat[rows[row]]),
            }
            for row in copy_rows
        ]
        if copies is not None
        else [],
        "copies_checked": copies is not None,
        "audit_threshold": threshold,
        "report": _report(labels[scored], logits[scored], run_classes, bootstrap_samples),
        "report_with_copies": _report(
            labels[decoded], logits[decoded], run_classes, bootstrap_samples
        ),
        "seconds": round(time.perf_counter() - started, 2),
    }
    payload = jsonable(payload)
    buffer = io.StringIO()
    table.to_csv(buffer, index=False, float_format="%.6g", lineterminator="\n")
    write_bytes_atomic(predictions_path(info, name), buffer.getvalue().encode())
    RunWriter(info.path).save_metrics_entry("external", name, payload)
    report_progress(events, "external", 1, 1, f"Scored {int(scored.sum())} external images")
    return parse_external(payload)


def external_summary(record: ExternalRecord) -> dict[str, Any]:
    """The headline of one external evaluation, as JSON (`evaluate --external --json`)."""
    report = record.report
    keys = ("n", "accuracy", "accuracy_ci", "macro_f1", "macro_f1_ci", "ece", "roc_auc_macro")
    headline = {key: getattr(report, key) if report else None for key in keys}
    return jsonable(
        {
            "name": record.name,
            "root": record.root,
            "fingerprint": record.fingerprint,
            "class_map": record.class_map,
            "unknown_classes": record.unknown_classes,
            "unreadable": list(record.unreadable),
            "images": record.images,
            "copies_excluded": len(record.copies),
            "copies_checked": record.copies_checked,
            **headline,
            "per_class": {
                name: {
                    "recall": scores.recall,
                    "specificity": scores.specificity,
                    "support": scores.support,
                }
                for name, scores in (report.per_class.items() if report else ())
            },
            "confusion_matrix": report.confusion_matrix if report else None,
            "accuracy_with_copies": (
                record.report_with_copies.accuracy if record.report_with_copies else None
            ),
        }
    )
