"""Compare: every run side by side, on validation, the official test and the duplicate-free test."""

import streamlit as st

from core.evaluation.run_selection import run_labels
from core.runs.registry import list_runs
from core.ui.compare import (
    show_accuracy_against_time,
    show_evaluate_button,
    show_runs_table,
    show_selected_runs,
)
from core.ui.compare_export import show_export_download
from core.ui.compare_external import show_external_sets
from core.ui.compare_gallery import show_mistakes
from core.ui.compare_report import show_report_download
from core.ui.compare_stress import show_stress_tests
from core.ui.compare_warnings import show_warnings
from core.ui.run_management import show_feedback, show_run_management
from core.ui.studies import show_run_overfitting

st.title("Compare runs")
show_feedback()
# Read afresh on every run: other sessions and the CLI write runs too.
infos = list_runs()
if not infos:
    st.info("No training run yet: train a model on the Train page, then compare runs here.")
    st.page_link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()
labels = run_labels(infos)

st.subheader("Runs")
table = show_runs_table(infos)
show_run_management(infos, labels)
show_evaluate_button(infos)

st.subheader("Selected runs")
selected = show_selected_runs(infos, table, labels)
show_report_download(selected, labels)
show_export_download(selected, labels)

st.subheader("Accuracy against training time")
show_accuracy_against_time(table, selected)

st.subheader("Overfitting: training against validation")
show_run_overfitting(selected, labels)

st.subheader("Stress tests: accuracy under scanner-like shifts")
show_stress_tests(selected, labels)

st.subheader("External test sets: data from elsewhere")
show_external_sets(selected, labels)

st.subheader("Warnings: do they catch the mistakes?")
show_warnings(selected, labels)

st.subheader("Mistakes")
show_mistakes(infos, selected, labels)
