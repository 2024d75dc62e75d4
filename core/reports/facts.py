"""What a report says about its runs, as plain rows of text: each run's configuration, every
stored evaluation with its intervals, external sets, the data audit and the paired tests.

Read from what is stored (config.json, metrics.json, predictions.csv, the audit cache); nothing
here trains, evaluates or audits, so a report takes seconds and never changes a run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

import pandas as pd

from core.data import audit, scan_level
from core.data.discovery import DatasetError
from core.data.index import open_dataset
from core.evaluation.comparison import paired_tests, paired_verdict
from core.evaluation.evaluate import SPLIT_LABELS, SPLITS, stored_evaluation
from core.evaluation.external import stored_externals
from core.evaluation.run_selection import external_splits, report_of, split_label
from core.runs.metrics_records import SplitReport
from core.runs.registry import RunInfo

NOT_EVALUATED = "not evaluated"
Rows = list[list[str]]


@dataclass(frozen=True)
class Table:
    """A table of text: column headers and rows (every cell already formatted)."""

    headers: list[str]
    rows: Rows


def percent(value: float | None, interval: Sequence[float] | None = None) -> str:
    """'97.9% [97.1, 98.7]' (the interval in percent), '97.9%' without one, '–' for none."""
    if value is None:
        return "–"
    if not interval or len(interval) != 2 or None in interval:
        return f"{value:.1%}"
    low, high = interval
    return f"{value:.1%} [{low * 100:.1f}, {high * 100:.1f}]"


def _number(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    if value < 10:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{value:.0f} s" + (f" ({minutes} min {seconds} s)" if minutes else "")


def _recipe(info: RunInfo) -> str:
    recipe = info.config.recipe if info.config else None
    if recipe is None:
        return "–"
    changed = f" (changed: {', '.join(recipe.changed)})" if recipe.changed else ""
    return (recipe.name or "none") + changed


def run_settings(info: RunInfo) -> dict[str, str]:
    """What was trained and how, and what it cost, as text ('–' where unknown)."""
    config, run_metrics = info.config, info.metrics
    train = config.train if config else None
    weights = config.weights_source if config else None
    epochs_run = (run_metrics.epochs_run if run_metrics else None) or len(info.history)
    total = config.parameters.total if config else None
    return {
        "run id": info.run_id,
        "status": "damaged" if info.damaged else info.status,
        "model": info.model_name or "–",
        "custom / transfer": (config.model_family if config else None) or "–",
        "recipe": _recipe(info),
        "pretrained (ImageNet start)": ("yes" if weights.pretrained else "no") if weights else "–",
        "weights source": (weights.description or weights.kind) if weights else "–",
        "frozen layers": config.model.freeze if config else "–",
        "image size": f"{config.data.image_size} px" if config else "–",
        "augmentation": train.augment.label if train else "–",
        "epochs (run / planned)": f"{epochs_run} / {train.epochs if train else '–'}",
        "seed": str(train.seed) if train else "–",
        "batch size, learning rate": f"{train.batch_size}, {train.lr:g}" if train else "–",
        "training time": _seconds(run_metrics.train_seconds if run_metrics else None),
        "parameters": f"{total:,}" if total else "–",
        "dataset": config.data.root if config else "–",
        "created": info.created_at.strftime("%Y-%m-%d %H:%M UTC") if info.created_at else "–",
        "weights file": "present" if info.has_weights else "missing",
        "problems": "; ".join(info.problems) or "none",
    }


def configuration_table(infos: Sequence[RunInfo], labels: dict[str, str]) -> Table:
    """One column per run, one row per setting (runs side by side read best as columns)."""
    settings = [run_settings(info) for info in infos]
    headers = ["", *(labels[info.run_id] for info in infos)]
    names = list(settings[0]) if settings else []
    return Table(headers, [[name, *(one[name] for one in settings)] for name in names])


def _evaluation_row(label: str, split: str, report: SplitReport | None) -> list[str]:
    if report is None:
        return [label, split_label(split), "0", "no images", "–", "–", "–"]
    return [
        label,
        split_label(split),
        str(report.n),
        percent(report.accuracy, report.accuracy_ci),
        percent(report.balanced_accuracy, report.balanced_accuracy_ci),
        percent(report.macro_f1, report.macro_f1_ci),
        _number(report.ece),
    ]


def evaluation_table(infos: Sequence[RunInfo], labels: dict[str, str]) -> Table:
    """Every stored evaluation of every run: validation, the official test, its stricter subsets
    and the external sets, with bootstrap 95% intervals."""
    headers = [
        "run", "set", "images", "accuracy [95% CI]", "balanced accuracy [95% CI]",
        "macro-F1 [95% CI]", "ECE",
    ]  # fmt: skip
    rows: Rows = []
    for info in infos:
        label = labels[info.run_id]
        if stored_evaluation(info) is None:
            rows.append([label, NOT_EVALUATED, "–", "–", "–", "–", "–"])
            continue
        for split in [*SPLITS, *external_splits([info])]:
            rows.append(_evaluation_row(label, split, report_of(info, split)))
    return Table(headers, rows)


def external_table(infos: Sequence[RunInfo], labels: dict[str, str]) -> Table:
    """What each external evaluation scored and left out (copies of training images, classes
    the run does not know, unreadable files)."""
    headers = ["run", "external set", "folder", "images scored", "copies left out",
               "classes not scored", "unreadable files", "accuracy [95% CI]"]  # fmt: skip
    rows: Rows = []
    for info in infos:
        for name, record in stored_externals(info).items():
            report = record.report
            rows.append([
                labels[info.run_id], name, record.root or "–", str(report.n if report else 0),
                str(len(record.copies)) if record.copies_checked else "not checked",
                ", ".join(f"{label} ({count})" for label, count in record.unknown_classes.items())
                or "none",
                str(len(record.unreadable)),
                percent(report.accuracy, report.accuracy_ci) if report else "–",
            ])  # fmt: skip
    return Table(headers, rows)


@dataclass(frozen=True)
class AuditSummary:
    """The stored audit of one dataset, or why there is none (`note`)."""

    root: str
    note: str | None = None
    counts: Table | None = None
    subsets: Table | None = None


def audit_summary(root: str, threshold: float | None = None) -> AuditSummary:
    """The audit of the dataset at `root` when it is stored; 'not audited' otherwise (auditing
    decodes and compares every image: minutes, not for a report to start)."""
    folder = Path(root)
    if not folder.is_dir():
        return AuditSummary(root, "the dataset is not on this machine")
    try:
        dataset = open_dataset(folder)
    except (DatasetError, OSError) as error:
        return AuditSummary(root, f"the dataset could not be opened: {error}")
    if not audit.candidates_are_cached(dataset):
        return AuditSummary(root, "not audited (audit it on the Dataset page or with `audit`)")
    report = audit.audit_report(dataset, threshold or audit.DEFAULT_THRESHOLD)
    summary = audit.summarize(dataset, report)
    counts = Table(["", "images"], [
        ["images", f"{summary['images']:,}"],
        ["official test images", f"{summary['test_images']:,}"],
        ["test images with an exact copy in training", f"{summary['exact_cross_split']:,}"],
        ["test images with a near copy in training", f"{summary['near_cross_split']:,}"],
        ["duplicate-free test images", f"{summary['duplicate_free_test']:,}"],
        ["exact / near duplicate pairs", f"{summary['exact_pairs']:,} / {summary['near_pairs']:,}"],
        ["pairs with conflicting labels", f"{summary['conflicting_labels']:,}"],
        ["near-duplicate threshold", f"{report.threshold:g}"],
    ])  # fmt: skip
    subsets = None
    if scan_level.is_computed(dataset):  # the unseen-scan subset is stored too
        by_subset = scan_level.subset_counts(dataset, report)
        subsets = Table(
            ["class", *(SPLIT_LABELS[name] for name in by_subset)],
            [
                [name, *(str(by_subset[subset][name]) for subset in by_subset)]
                for name in dataset.classes
            ],
        )
    return AuditSummary(root, None, counts, subsets)


def audit_summaries(infos: Sequence[RunInfo]) -> list[AuditSummary]:
    """The audit of each dataset the runs trained on, once per dataset."""
    thresholds: dict[str, float | None] = {}
    for info in infos:
        if info.config is not None:
            evaluation = stored_evaluation(info)
            threshold = evaluation.audit_threshold if evaluation else None
            thresholds.setdefault(info.config.data.root, threshold)
    return [audit_summary(root, threshold) for root, threshold in thresholds.items()]


@dataclass(frozen=True)
class PairedSection:
    """McNemar's test of run A against run B on each test split, or why it cannot be done."""

    title: str
    table: Table | None
    text: str


def frame_table(frame: pd.DataFrame) -> Table:
    """A table of a DataFrame: whole numbers as they are, others to 3 significant digits."""

    def cell(value: object) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "–"
        if isinstance(value, float) and not value.is_integer():
            return f"{value:.3g}"
        return str(int(value)) if isinstance(value, float) else str(value)

    rows = [[cell(value) for value in row.values()] for row in frame.to_dict("records")]
    return Table([str(column) for column in frame.columns], rows)


def paired_sections(infos: Sequence[RunInfo], labels: dict[str, str]) -> list[PairedSection]:
    """Every pair of runs, tested on the images both were evaluated on."""
    sections = []
    for a, b in combinations(infos, 2):
        label_a, label_b = labels[a.run_id], labels[b.run_id]
        title = f"A: {label_a} against B: {label_b}"
        unevaluated = [labels[one.run_id] for one in (a, b) if stored_evaluation(one) is None]
        if unevaluated:
            sections.append(
                PairedSection(title, None, f"{' and '.join(unevaluated)}: {NOT_EVALUATED}")
            )
            continue
        frame, problem = paired_tests(a, b)
        if problem is not None:
            sections.append(PairedSection(title, None, problem))
            continue
        verdict = paired_verdict(frame, label_a, label_b)
        sections.append(PairedSection(title, frame_table(frame), verdict))
    return sections
