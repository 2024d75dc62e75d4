"""Compare: every run side by side, on validation, the official test and the leak-free test."""

import streamlit as st

from core.evaluation import SPLIT_LABELS, SPLITS
from core.ui.compare import (
    PAIRED_SPLITS,
    SELECTION_KEY,
    TABLE_COLUMNS,
    TABLE_CONFIG,
    comparable_runs,
    confirm_key,
    default_selection,
    delete_clicked,
    evaluate_with_progress,
    evaluated_ids,
    evaluation_candidates,
    evaluation_of,
    filter_options,
    filter_runs,
    load_runs,
    name_key,
    pair_defaults,
    plural,
    rename_clicked,
    report_of,
    run_labels,
    run_summary,
    runs_frame,
    show_evaluation_report,
    show_feedback,
    show_misclassified,
    show_pair,
    show_split_details,
    tags_clicked,
    tags_key,
)
from core.ui.compare_charts import accuracy_time_chart, curves_chart, split_accuracy_chart
from core.ui.downloads import csv_download

st.title("Compare runs")
show_feedback()
infos = load_runs()
if not infos:
    st.info("No training run yet: train a model on the Train page, then compare runs here.")
    st.page_link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

by_id = {info.run_id: info for info in infos}
labels = run_labels(infos)
table = runs_frame(infos)

st.subheader("Runs")
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
    shown, column_order=TABLE_COLUMNS, column_config=TABLE_CONFIG, hide_index=True, width="stretch"
)
st.caption(
    f"{len(shown)} of {len(table)} runs. Click a column header to sort. Intervals are bootstrap "
    "95% intervals; the leak-free test leaves out test images with a copy in training."
)
csv_download("Download the table (CSV)", shown, file_name="runs.csv", key="compare_download")
troubled = [info for info in infos if info.problems]
if troubled:
    with st.expander(f"Runs with problems ({len(troubled)})"):
        for info in troubled:
            st.markdown(f"{run_summary(info)}: " + "; ".join(info.problems))

with st.expander("Rename, tag or delete a run"):
    target = st.selectbox(
        "Run", list(by_id), format_func=lambda run_id: labels[run_id], key="manage_run"
    )
    chosen = by_id[target]
    st.markdown(run_summary(chosen))
    name_column, tags_column = st.columns(2)
    name_column.text_input("Name", value=chosen.name or "", key=name_key(target))
    name_column.button("Rename", key="manage_rename", on_click=rename_clicked, args=(target,))
    tags_column.text_input(
        "Tags (comma-separated)", value=", ".join(chosen.tags), key=tags_key(target)
    )
    tags_column.button("Save tags", key="manage_tags", on_click=tags_clicked, args=(target,))
    st.checkbox("Yes, delete this run and all its files", key=confirm_key(target))
    st.button("Delete run", key="manage_delete", on_click=delete_clicked, args=(target,))

show_evaluation_report()
pending = evaluation_candidates(infos)
if pending:
    st.info(
        plural(len(pending), "{} completed run") + " without test results. Evaluating computes "
        "validation, official test and leak-free test metrics once and stores them in the run."
    )
    if st.button(plural(len(pending), "Evaluate {} run"), key="compare_evaluate", type="primary"):
        evaluate_with_progress(pending)

st.subheader("Selected runs")
choices = comparable_runs(infos)
selected_ids = st.multiselect(
    "Runs to compare",
    choices,
    default=default_selection(table, choices),
    format_func=lambda run_id: labels[run_id],
    key=SELECTION_KEY,
)
selected = [by_id[run_id] for run_id in selected_ids if run_id in by_id]
evaluated = [info for info in selected if evaluation_of(info) is not None]
if not selected:
    st.info("Pick one or more runs to compare their training curves and test results.")
else:
    histories = {labels[info.run_id]: info.history for info in selected}
    st.markdown("**Training curves** (dotted: training, solid: validation)")
    per_epoch_tab, over_time_tab = st.tabs(["Per epoch", "Against wall-clock training time"])
    per_epoch_tab.plotly_chart(curves_chart(histories), width="stretch")
    over_time_tab.plotly_chart(curves_chart(histories, over_time=True), width="stretch")
if selected and not evaluated:
    st.info("None of the selected runs is evaluated yet: evaluate them above.")
if evaluated:
    st.markdown("**Accuracy on each split**, with bootstrap 95% intervals")
    split_reports = {
        labels[info.run_id]: {split: report_of(info, split) for split in SPLITS}
        for info in evaluated
    }
    st.plotly_chart(split_accuracy_chart(split_reports), width="stretch")
    split = st.segmented_control(
        "Split", SPLITS, default="test", format_func=SPLIT_LABELS.get, key="compare_split"
    )
    show_split_details(evaluated, labels, split or "test")

st.subheader("Accuracy against training time")
if table["evaluated"].fillna(False).astype(bool).any():
    st.plotly_chart(
        accuracy_time_chart(table, highlighted=[info.run_id for info in selected]),
        width="stretch",
    )
else:
    st.info("Evaluate runs to plot their test accuracy against their training time.")

st.subheader("Mistakes")
evaluated_choices = evaluated_ids(infos)
if not evaluated_choices:
    st.info("Evaluate a run to see the test images it gets wrong.")
    st.stop()
with_cam = st.toggle(
    "Overlay where the model looked (CAM of the class it chose)", value=True, key="compare_cam"
)
gallery_split = st.segmented_control(
    "Test split",
    PAIRED_SPLITS,
    default="test",
    format_func=SPLIT_LABELS.get,
    key="compare_gallery_split",
)
one_tab, pair_tab = st.tabs(["One run's mistakes", "A right, B wrong"])
with one_tab:
    gallery_run = st.selectbox(
        "Run", evaluated_choices, format_func=lambda run_id: labels[run_id], key="compare_gallery"
    )
    show_misclassified(by_id[gallery_run], gallery_split or "test", with_cam=with_cam)
with pair_tab:
    if len(evaluated_choices) < 2:
        st.info("Evaluate a second run to compare two runs image by image.")
    else:
        index_a, index_b = pair_defaults([info.run_id for info in selected], evaluated_choices)
        left, right = st.columns(2)
        run_a = left.selectbox(
            "Run A", evaluated_choices, index=index_a, format_func=labels.get, key="compare_a"
        )
        run_b = right.selectbox(
            "Run B", evaluated_choices, index=index_b, format_func=labels.get, key="compare_b"
        )
        show_pair(by_id[run_a], by_id[run_b], labels, gallery_split or "test", with_cam=with_cam)
