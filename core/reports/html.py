"""A self-contained HTML report of runs: configuration, curves, every evaluation with its
interval, confusion matrices and calibration, generalization (stress tests, external sets),
CAMs, the data audit and paired tests, with the Compare page's own figures (core.figures).

A run that is not evaluated (or not stress-tested, or has no weights) is reported with what it
has and says "not evaluated" where results would be; only a run whose configuration cannot be
read is refused (there would be nothing to say about it).
"""

from __future__ import annotations

import os
import platform
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import torch

import core
from core.atomic_files import write_text_atomic
from core.device import detect_device
from core.evaluation.comparison import calibration_table, runs_table
from core.evaluation.evaluate import SPLITS, stored_evaluation
from core.evaluation.run_selection import class_names, external_splits, report_of, run_labels
from core.evaluation.stress import stored_stress
from core.evaluation.verdict import verdict_line
from core.figures.compare import accuracy_time_chart, curves_chart, split_accuracy_chart
from core.figures.evaluation import (
    RELIABILITY_CAPTION,
    confusion_chart,
    reliability_chart,
    stress_chart,
)
from core.reports import facts
from core.reports.cams import run_cams
from core.reports.markup import Figures, page, paragraph, section, table, text
from core.runs.registry import RunInfo

TITLE = "Brain Tumor Workbench report"


class ReportError(ValueError):
    """A report that cannot be made: no runs, or a run whose configuration is unreadable."""


@dataclass(frozen=True)
class ReportFile:
    """A written report: where, how big, of which runs."""

    path: Path
    size_bytes: int
    run_ids: tuple[str, ...]


def report_file_name(day: date) -> str:
    """'report-20261201.html'."""
    return f"report-{day:%Y%m%d}.html"


def machine_description() -> str:
    """Host, system, CPU (or GPU), Python and torch: where the report was made."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.node() or 'unknown host'} ({platform.system()} {platform.release()}, "
        f"{cpu}, {os.cpu_count()} cores; {detect_device().describe()}; "
        f"Python {platform.python_version()}, torch {torch.__version__})"
    )


def _header(infos: Sequence[RunInfo], labels: dict[str, str], created: datetime) -> str:
    runs = ", ".join(
        labels[info.run_id] + ("" if labels[info.run_id] == info.run_id else f" ({info.run_id})")
        for info in infos
    )
    return (
        f"<h1>{text(TITLE)}</h1>"
        + paragraph(
            f"Made {created:%Y-%m-%d %H:%M} UTC by Brain Tumor Workbench {core.__version__} on "
            f"{machine_description()}.",
            "meta",
        )
        + paragraph(f"Runs: {runs}.", "meta")
        + _verdict(infos, labels)
    )


def _verdict(infos: Sequence[RunInfo], labels: dict[str, str]) -> str:
    """Compare's one-line verdict, its **bold** run names as <strong>."""
    line = verdict_line(infos, labels)
    if line is None:
        return ""
    return (
        '<p class="verdict">'
        + re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text(line))
        + "</p>"
    )


def _curves(infos: Sequence[RunInfo], labels: dict[str, str], figures: Figures) -> str:
    histories = {labels[info.run_id]: info.history for info in infos if info.history}
    if not histories:
        return paragraph("No run has a training history.", "note")
    missing = [labels[info.run_id] for info in infos if not info.history]
    parts = [
        paragraph("Per epoch; dotted: training, solid: validation.", "caption"),
        figures.div(curves_chart(histories)),
    ]
    if missing:
        parts.append(paragraph(f"No training history: {', '.join(missing)}.", "note"))
    return "".join(parts)


def _evaluations(infos: Sequence[RunInfo], labels: dict[str, str], figures: Figures) -> str:
    parts = [
        paragraph(
            "Bootstrap 95% intervals (1,000 resamples at evaluation). Duplicate-free: test "
            "images with no exact or near copy in training; unseen-scan: also no slice of the "
            "same scan in training; external sets leave out copies of the run's training images.",
            "caption",
        ),
        table(facts.evaluation_table(infos, labels)),
    ]
    evaluated = [info for info in infos if stored_evaluation(info) is not None]
    if not evaluated:
        return "".join([*parts, paragraph("No run is evaluated: no scores to draw.", "note")])
    splits = [*SPLITS, *external_splits(evaluated)]
    reports = {
        labels[info.run_id]: {split: report_of(info, split) for split in splits}
        for info in evaluated
    }
    parts.append(figures.div(split_accuracy_chart(reports, splits)))
    timed = runs_table(evaluated).dropna(subset=["train_seconds"])
    if not timed.empty:
        timed["name"] = [labels[run_id] for run_id in timed["run"]]
        parts += [
            "<h3>Test accuracy against training time</h3>",
            figures.div(accuracy_time_chart(timed, highlighted=list(timed["run"]))),
        ]
    return "".join(parts)


def _official_test(infos: Sequence[RunInfo], labels: dict[str, str], figures: Figures) -> str:
    evaluated = [info for info in infos if report_of(info, "test") is not None]
    if not evaluated:
        return paragraph(f"No run has official test results ({facts.NOT_EVALUATED}).", "note")
    reports = {labels[info.run_id]: report_of(info, "test") for info in evaluated}
    matrices = [
        confusion_chart(
            report.confusion_matrix, class_names(info), normalise=False, title=labels[info.run_id]
        )
        for info in evaluated
        if (report := report_of(info, "test")) is not None
    ]
    calibration = calibration_table(
        {labels[info.run_id]: stored_evaluation(info) for info in evaluated}, "test"
    )
    return "".join([
        "<h3>Confusion matrices</h3>",
        paragraph("Rows: true class; columns: predicted class; image counts.", "caption"),
        figures.row(matrices),
        "<h3>Calibration</h3>",
        figures.div(reliability_chart(reports)),
        paragraph(RELIABILITY_CAPTION, "caption"),
        table(facts.frame_table(calibration)),
        paragraph(
            "Temperature scaling divides the logits by one number fitted on the validation split.",
            "caption",
        ),
    ])  # fmt: skip


def _generalization(infos: Sequence[RunInfo], labels: dict[str, str], figures: Figures) -> str:
    records = {
        labels[info.run_id]: record for info in infos if (record := stored_stress(info)) is not None
    }
    parts = ["<h3>Stress tests: accuracy under scanner-like shifts</h3>"]
    if records:
        sizes = sorted({record.n for record in records.values() if record.n})
        parts += [
            figures.div(stress_chart(records)),
            paragraph(
                f"Accuracy on the duplicate-free test images ({', '.join(map(str, sizes))}) "
                "under each shift; the first point of each line is the unshifted image.",
                "caption",
            ),
        ]
    untested = [labels[info.run_id] for info in infos if labels[info.run_id] not in records]
    if untested:
        parts.append(paragraph(f"Not stress-tested: {', '.join(untested)}.", "note"))
    externals = facts.external_table(infos, labels)
    parts.append("<h3>External test sets</h3>")
    if externals.rows:
        parts.append(table(externals))
    else:
        parts.append(paragraph("No external test set was scored for these runs.", "note"))
    return "".join(parts)


def _cams(infos: Sequence[RunInfo], labels: dict[str, str]) -> str:
    parts = [
        paragraph(
            "The first official-test image of each class (by file name), with the map of the "
            "predicted class by the run's preferred CAM method (its sanity checks choose it).",
            "caption",
        )
    ]
    for info in infos:
        cams = run_cams(info)
        method = f" ({cams.method})" if cams.method else ""
        parts.append(f"<h3>{text(labels[info.run_id] + method)}</h3>")
        figures = "".join(
            f'<figure><img src="{sample.data_url}" alt="{text(sample.caption)}">'
            f"<figcaption>{text(sample.caption)}</figcaption></figure>"
            for sample in cams.samples
        )
        if figures:
            parts.append(f'<div class="cams">{figures}</div>')
        if cams.note:
            parts.append(paragraph(cams.note, "note"))
    return "".join(parts)


def _audit(infos: Sequence[RunInfo]) -> str:
    parts = []
    for summary in facts.audit_summaries(infos):
        parts.append(f"<h3>{text(summary.root)}</h3>")
        if summary.note:
            parts.append(paragraph(summary.note, "note"))
        if summary.counts:
            parts.append(table(summary.counts))
        if summary.subsets:
            parts += [paragraph("Images per class of each test subset.", "caption"),
                      table(summary.subsets)]  # fmt: skip
        elif summary.counts:
            parts.append(paragraph("Unseen-scan subset: not computed yet.", "note"))
    return "".join(parts)


def _paired(infos: Sequence[RunInfo], labels: dict[str, str]) -> str:
    if len(infos) < 2:
        return paragraph("One run: nothing to pair.", "note")
    parts = [
        paragraph(
            "McNemar's test on the images both runs were evaluated on: only the images one run "
            "gets right and the other wrong count.",
            "caption",
        )
    ]
    for pair in facts.paired_sections(infos, labels):
        parts.append(f"<h3>{text(pair.title)}</h3>")
        if pair.table:
            parts.append(table(pair.table))
        parts.append(paragraph(pair.text, None if pair.table else "note"))
    return "".join(parts)


def build_report(
    infos: Sequence[RunInfo],
    labels: dict[str, str] | None = None,
    *,
    created: datetime | None = None,
) -> str:
    """The report of `infos` as one HTML document (ReportError for no runs or an unreadable
    configuration)."""
    if not infos:
        raise ReportError("a report needs at least one run")
    unreadable = [info.run_id for info in infos if info.config is None]
    if unreadable:
        raise ReportError(
            f"run {unreadable[0]} has an unreadable configuration (config.json): nothing to report"
        )
    labels = {**run_labels(infos), **(labels or {})}
    created = created or datetime.now(UTC)
    figures = Figures()
    parts = {
        "runs": ("Runs", table(facts.configuration_table(infos, labels), align_numbers=False)),
        "curves": ("Training curves", _curves(infos, labels, figures)),
        "evaluations": ("Evaluations", _evaluations(infos, labels, figures)),
        "official-test": ("Official test", _official_test(infos, labels, figures)),
        "generalization": ("Generalization", _generalization(infos, labels, figures)),
        "cams": ("Where the models look", _cams(infos, labels)),
        "audit": ("Data audit", _audit(infos)),
        "paired": ("Paired tests", _paired(infos, labels)),
    }
    sections = {
        anchor: (name, section(anchor, name, body)) for anchor, (name, body) in parts.items()
    }
    return page(TITLE, _header(infos, labels, created), sections)


def check_output(out: Path) -> None:
    """Refuse, before any work, an output path that cannot be written (ValueError)."""
    if out.is_dir():
        raise ValueError(f"{out} is a folder: give the report a file name (report.html)")
    folder = out.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"cannot write {out}: {folder} is not a folder")
    if not os.access(folder, os.W_OK):
        raise ValueError(f"cannot write {out}: {folder} is not writable")


def write_report(
    infos: Sequence[RunInfo], out: Path, labels: dict[str, str] | None = None
) -> ReportFile:
    """Build the report and write it to `out` atomically (a reader never sees half of it)."""
    check_output(out)
    document = build_report(infos, labels)
    try:
        write_text_atomic(out, document)
    except OSError as error:
        raise OSError(f"cannot write {out}: {error.strerror or error}") from error
    return ReportFile(out, out.stat().st_size, tuple(info.run_id for info in infos))
