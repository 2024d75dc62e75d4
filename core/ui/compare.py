"""The Compare page's runs table, evaluation button and per-split details (figures:
core.figures; galleries: compare_gallery.py; renaming and deleting: run_management.py).

Everything here tolerates damaged runs: a run whose files are unreadable is shown as such in
the table and left out of the charts, never raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import streamlit as st

from core.evaluation.comparison import calibration_table, per_class_table, runs_table
from core.evaluation.evaluate import SPLITS, evaluate_run
from core.evaluation.run_selection import (
    EXTERNAL_PREFIX,
    class_names,
    comparable_runs,
    default_selection,
    evaluation_candidates,
    external_splits,
    filter_options,
    filter_runs,
    report_of,
    split_label,
    stored_evaluation,
)
from core.evaluation.verdict import verdict_line
from core.figures.compare import accuracy_time_chart, curves_chart, split_accuracy_chart
from core.figures.evaluation import RELIABILITY_CAPTION, reliability_chart, roc_chart, union_of
from core.runs.registry import RunInfo
from core.ui.compare_charts import show_confusion_matrices
from core.ui.downloads import csv_download
from core.ui.progress import work_on_runs
from core.ui.run_management import SELECTION_KEY, run_summary
from core.ui.serving import withheld
from core.ui.wording import counted

EVALUATION_REPORT_KEY = "_compare_evaluation_report"

# The answer first: which run (and whether it finished), its scores (official test, then its
# stricter twins with their intervals, external sets after the unseen-scan ones), then what the
# run cost and how it was configured.
TABLE_COLUMNS = [
    "name", "model", "status", "test_accuracy", "test_low", "test_high",
    "duplicate_free_test_accuracy",
    "duplicate_free_test_low", "duplicate_free_test_high", "duplicate_free_test_balanced_accuracy",
    "unseen_scan_test_accuracy", "unseen_scan_test_low", "unseen_scan_test_high",
    "unseen_scan_test_balanced_accuracy", "unseen_scan_test_n", "stress_worst_accuracy",
    "best_val_accuracy",
    "test_macro_f1", "test_ece", "train_seconds", "family", "pretrained", "freeze",
    "image_size", "augmentation", "epochs", "parameters", "images_per_second", "best_val_loss",
    "tags", "created", "run",
]  # fmt: skip


def _percent(label: str, help_text: str | None = None) -> Any:
    return st.column_config.NumberColumn(label, format="percent", help=help_text)


TABLE_CONFIG: dict[str, Any] = {
    "name": st.column_config.TextColumn("name"),
    "family": st.column_config.TextColumn("custom / transfer"),
    "pretrained": st.column_config.CheckboxColumn("ImageNet start"),
    "freeze": st.column_config.TextColumn("frozen", help="Layers kept frozen in training"),
    "image_size": st.column_config.NumberColumn("image px"),
    "augmentation": st.column_config.TextColumn(
        "augmentation",
        help="flip; geometry = rotation, zoom, shift; intensity = brightness, contrast",
    ),
    "parameters": st.column_config.NumberColumn("parameters", format="compact"),
    "train_seconds": st.column_config.NumberColumn("training s", format="%.0f"),
    "images_per_second": st.column_config.NumberColumn("images/s", format="%.0f"),
    "best_val_accuracy": _percent("best val accuracy"),
    "best_val_loss": st.column_config.NumberColumn("best val loss", format="%.4f"),
    "test_accuracy": _percent("test accuracy", "Official test split"),
    "test_low": _percent("test 95% low", "Bootstrap 95% interval, lower end"),
    "test_high": _percent("test 95% high", "Bootstrap 95% interval, upper end"),
    "duplicate_free_test_accuracy": _percent(
        "duplicate-free accuracy", "Test images with no exact or near copy in training"
    ),
    "duplicate_free_test_low": _percent("duplicate-free 95% low"),
    "duplicate_free_test_high": _percent("duplicate-free 95% high"),
    "duplicate_free_test_balanced_accuracy": _percent(
        "duplicate-free balanced accuracy",
        "Mean recall over classes: the subset keeps few notumor images, so plain accuracy is "
        "mostly about the other classes",
    ),
    "unseen_scan_test_accuracy": _percent(
        "unseen-scan accuracy",
        "Duplicate-free test images whose scan gave no training image either (no neighbouring "
        "slice, no other sequence of the slice): the closest this dataset gets to new patients",
    ),
    "unseen_scan_test_low": _percent("unseen-scan 95% low"),
    "unseen_scan_test_high": _percent("unseen-scan 95% high"),
    "unseen_scan_test_balanced_accuracy": _percent("unseen-scan balanced accuracy"),
    "unseen_scan_test_n": st.column_config.NumberColumn("unseen-scan images"),
    "stress_worst_accuracy": _percent(
        "worst shift accuracy",
        "Duplicate-free test accuracy under the stress test's worst shift at moderate severity "
        "(rotation, zoom, noise, blur, intensity...); empty: not stress-tested",
    ),
    "test_macro_f1": st.column_config.NumberColumn("test macro F1", format="%.3f"),
    "test_ece": st.column_config.NumberColumn(
        "test ECE", format="%.3f", help="Expected calibration error (0 = perfectly calibrated)"
    ),
    "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
    "run": st.column_config.TextColumn("run id"),
}


def evaluate_with_progress(pending: Sequence[RunInfo]) -> None:
    """Evaluate each run under a status box; one failure never stops the others. Reruns."""
    failures = work_on_runs(
        pending,
        {info.run_id: info.display_name for info in pending},
        lambda info, events: evaluate_run(info.run_id, events=events),
        title=f"Evaluating {counted(len(pending), 'run')}...",
        doing="evaluating on validation, the official test and its stricter subsets",
        done="Evaluated",
    )
    st.session_state[EVALUATION_REPORT_KEY] = (len(pending) - len(failures), failures)
    st.rerun()  # the table above was drawn before the evaluations


def show_evaluation_report() -> None:
    """What the last Evaluate click did (shown once, after its rerun)."""
    report = st.session_state.pop(EVALUATION_REPORT_KEY, None)
    if report is None:
        return
    done, failures = report
    if done:
        st.success(f"Evaluated {counted(done, 'run')}.")
    for failure in failures:
        st.error(f"Could not evaluate {failure}")


def show_split_details(evaluated: Sequence[RunInfo], labels: dict[str, str], split: str) -> None:
    """Tabs of confusion matrices, per-class metrics, ROC curves and calibration on one split."""
    reports = {
        labels[info.run_id]: report
        for info in evaluated
        if (report := report_of(info, split)) is not None
    }
    if not reports:
        st.info(f"No selected run has results on the {split_label(split)} split.")
        return
    classes = {labels[info.run_id]: class_names(info) for info in evaluated}
    confusion_tab, per_class_tab, roc_tab, calibration_tab = st.tabs(
        ["Confusion matrices", "Per-class metrics", "ROC curves", "Calibration"]
    )
    with confusion_tab:
        normalise = st.toggle("Row-normalised (share of each true class)", key="compare_normalise")
        show_confusion_matrices(reports, classes, normalise=normalise)
    with per_class_tab:
        st.dataframe(per_class_table(reports), hide_index=True, width="stretch")
    with roc_tab:
        st.plotly_chart(roc_chart(reports, union_of(classes)), width="stretch")
    with calibration_tab:
        st.plotly_chart(reliability_chart(reports), width="stretch")
        st.caption(RELIABILITY_CAPTION)
        if split not in SPLITS:
            return  # temperature scaling is fitted and reported for the run's own test splits
        evaluations = {
            labels[info.run_id]: evaluation
            for info in evaluated
            if (evaluation := stored_evaluation(info)) is not None
        }
        st.dataframe(calibration_table(evaluations, split), hide_index=True, width="stretch")
        st.caption(
            "Temperature scaling divides the logits by one number fitted on the validation "
            "split, so before/after is shown for the test splits only."
        )


def show_runs_table(infos: Sequence[RunInfo]) -> pd.DataFrame:
    """Filters, the runs table with its download, and the runs with problems; the rows the
    filters keep (what the rest of the page offers to select)."""
    table = runs_table(infos)
    external_columns = sorted(column for column in table if column.startswith(EXTERNAL_PREFIX))
    table = table.reindex(columns=[*TABLE_COLUMNS, *external_columns, "evaluated"])
    at = TABLE_COLUMNS.index("unseen_scan_test_n") + 1
    column_order = [*TABLE_COLUMNS[:at], *external_columns, *TABLE_COLUMNS[at:]]
    column_config = TABLE_CONFIG | {
        column: _percent(
            f"{column.removeprefix(EXTERNAL_PREFIX)} accuracy",
            "External test set; images that copy the run's training images are left out",
        )
        for column in external_columns
    }
    model_column, status_column, tag_column = st.columns(3)
    models = model_column.multiselect(
        "Model", filter_options(table, "model"), key="compare_filter_model"
    )
    statuses = status_column.multiselect(
        "Status", filter_options(table, "status"), key="compare_filter_status"
    )
    tags = tag_column.multiselect("Tag", filter_options(table, "tags"), key="compare_filter_tag")
    shown = filter_runs(table, models=models, statuses=statuses, tags=tags)
    st.dataframe(
        shown,
        column_order=column_order,
        column_config=column_config,
        hide_index=True,
        width="stretch",
        placeholder="—",  # a fact the run does not have, not the word "None"
    )
    st.caption(
        f"{len(shown)} of {len(table)} runs. Click a column header to sort. Intervals are "
        "bootstrap 95% intervals. Stricter test subsets: duplicate-free leaves out test images "
        "with a copy (same slice) in training; unseen-scan also leaves out those with a "
        "neighbouring slice or another sequence of the slice in training."
    )
    csv_download("Download the table (CSV)", shown, file_name="runs.csv", key="compare_download")
    troubled = [info for info in infos if info.problems]
    if troubled:
        with st.expander(f"Runs with problems ({len(troubled)})"):
            for info in troubled:
                st.markdown(f"{run_summary(info)}: " + "; ".join(info.problems))
    return shown


def show_evaluate_button(infos: Sequence[RunInfo]) -> None:
    """What the last evaluation did, and a button to evaluate the runs that have no results."""
    show_evaluation_report()
    pending = evaluation_candidates(infos)
    if not pending:
        return
    st.info(
        f"{counted(len(pending), 'completed run')} without test results. Evaluating computes "
        "validation, official test, duplicate-free and unseen-scan test metrics once and stores "
        "them in the run."
    )
    if withheld("evaluating runs"):
        return
    if st.button(
        f"Evaluate {counted(len(pending), 'run')}", key="compare_evaluate", type="primary"
    ):
        evaluate_with_progress(pending)


def show_selected_runs(
    infos: Sequence[RunInfo], table: pd.DataFrame, labels: dict[str, str]
) -> list[RunInfo]:
    """Pick runs among those `table` (the filtered runs table) shows; the verdict, their curves,
    accuracy on each split and per-split details. The picked runs."""
    by_id = {info.run_id: info for info in infos}
    kept = set(table["run"]) if "run" in table else set()
    choices = [run_id for run_id in comparable_runs(infos) if run_id in kept]
    if SELECTION_KEY in st.session_state:  # a run the filters now hide leaves the selection
        st.session_state[SELECTION_KEY] = [
            run_id for run_id in st.session_state[SELECTION_KEY] if run_id in choices
        ]
    selected_ids = st.multiselect(
        "Runs to compare",
        choices,
        default=default_selection(table, choices),
        format_func=lambda run_id: labels[run_id],
        key=SELECTION_KEY,
    )
    selected = [by_id[run_id] for run_id in selected_ids if run_id in by_id]
    if not selected:
        st.info("Pick one or more runs to compare their training curves and test results.")
        return selected
    verdict = verdict_line(selected, labels)
    if verdict:
        st.info(verdict, icon=":material/balance:")
    elif len(selected) > 1:
        st.caption("Evaluate at least two of the selected runs for a verdict.")
    histories = {labels[info.run_id]: info.history for info in selected}
    st.markdown("**Training curves** (dotted: training, solid: validation)")
    per_epoch_tab, over_time_tab = st.tabs(["Per epoch", "Against wall-clock training time"])
    per_epoch_tab.plotly_chart(curves_chart(histories), width="stretch")
    over_time_tab.plotly_chart(curves_chart(histories, over_time=True), width="stretch")
    evaluated = [info for info in selected if stored_evaluation(info) is not None]
    if not evaluated:
        st.info("None of the selected runs is evaluated yet: evaluate them above.")
        return selected
    st.markdown("**Accuracy on each split**, with bootstrap 95% intervals")
    splits = [*SPLITS, *external_splits(evaluated)]
    split_reports = {
        labels[info.run_id]: {split: report_of(info, split) for split in splits}
        for info in evaluated
    }
    st.plotly_chart(split_accuracy_chart(split_reports, splits), width="stretch")
    split = st.segmented_control(
        "Split", splits, default="test", format_func=split_label, key="compare_split"
    )
    show_split_details(evaluated, labels, split if split in splits else "test")
    return selected


def show_accuracy_against_time(table: pd.DataFrame, selected: Sequence[RunInfo]) -> None:
    """Test accuracy of every evaluated run against its training time; selected runs larger."""
    if not table["evaluated"].fillna(False).astype(bool).any():
        st.info("Evaluate runs to plot their test accuracy against their training time.")
        return
    st.plotly_chart(
        accuracy_time_chart(table, highlighted=[info.run_id for info in selected]),
        width="stretch",
    )
