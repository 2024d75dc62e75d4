"""The Compare page's external test sets: score the selected runs on a labelled folder from
elsewhere, and what each external evaluation found (classes, copies, unreadable files)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import streamlit as st

from core.evaluation.external import evaluate_external, parse_class_map, stored_externals
from core.runs.registry import RunInfo
from core.serving import dataset_folder_refusal
from core.ui.progress import show_work_failures, work_on_runs
from core.ui.serving import withheld

EXTERNAL_REPORT_KEY = "_compare_external_report"


def external_table(selected: Sequence[RunInfo], labels: dict[str, str]) -> pd.DataFrame:
    """One row per run and external set: size, score with interval, what was left out."""
    rows = []
    for info in selected:
        for name, record in stored_externals(info).items():
            report = record.report
            low, high = (report.accuracy_ci if report else None) or (None, None)
            rows.append(
                {
                    "run": labels.get(info.run_id, info.run_id),
                    "external set": name,
                    "images scored": report.n if report else 0,
                    "accuracy": report.accuracy if report else None,
                    "95% low": low,
                    "95% high": high,
                    "macro F1": report.macro_f1 if report else None,
                    "copies left out": len(record.copies) if record.copies_checked else None,
                    "classes not scored": ", ".join(
                        f"{label} ({count})" for label, count in record.unknown_classes.items()
                    ),
                    "unreadable files": len(record.unreadable),
                    "folder": record.root,
                }
            )
    return pd.DataFrame(rows)


def _score(selected: Sequence[RunInfo], labels: dict[str, str], folder: str, name: str,
           class_map: dict[str, str]) -> None:  # fmt: skip
    st.session_state[EXTERNAL_REPORT_KEY] = work_on_runs(
        selected,
        labels,
        lambda info, events: evaluate_external(
            info.run_id, folder, name=name or None, class_map=class_map, events=events
        ),
        title=f"Scoring {len(selected)} run(s) on {folder}...",
        doing="matching classes, leaving out copies of its training images, predicting",
        done="Scored",
    )
    st.rerun()


def show_external_sets(selected: Sequence[RunInfo], labels: dict[str, str]) -> None:
    """A form to score the selected runs on a folder, and every stored external result."""
    show_work_failures(EXTERNAL_REPORT_KEY, "score")
    usable = [info for info in selected if info.usable]
    table = external_table(selected, labels)
    if not table.empty:
        percent = {
            column: st.column_config.NumberColumn(column, format="percent")
            for column in ("accuracy", "95% low", "95% high")
        }
        st.dataframe(table, hide_index=True, width="stretch", column_config=percent)
        st.caption(
            "An external set is scored on its images that are not copies (exact, or within the "
            "audit's near-duplicate threshold) of an image the run trained or validated on. "
            "Pick the set as a split above for its confusion matrices and per-class metrics."
        )
        for info in selected:
            for name, record in stored_externals(info).items():
                if not record.copies_checked:
                    st.warning(
                        f"{labels.get(info.run_id, info.run_id)} on {name}: the run's dataset "
                        "is not on this machine, so copies of its images were not looked for."
                    )
    if withheld("scoring the runs on an external set"):
        return
    with st.form("compare_external_form"):
        folder = st.text_input(
            "Folder of labelled images",
            key="compare_external_folder",
            placeholder="/data/other-hospital",
            help="Class folders of images (optionally under Training/ or Testing/, which are "
            "pooled); JPEG, PNG or DICOM. Class names are matched to the run's ignoring case "
            "and separators.",
        )
        left, right = st.columns(2)
        name = left.text_input("Name", key="compare_external_name", placeholder="the folder's name")
        mapping = right.text_input(
            "Class map (when names differ)",
            key="compare_external_map",
            placeholder="glioma_tumour=glioma, healthy=notumor",
        )
        submitted = st.form_submit_button(
            f"Score {len(usable)} selected run(s) on this folder", disabled=not usable
        )
    if not submitted:
        return
    try:
        items = [item.strip() for item in mapping.split(",") if item.strip()]
        class_map = parse_class_map(items)
    except ValueError as error:
        st.error(str(error))
        return
    if not folder.strip():
        st.error("Type the path of a folder of labelled images first.")
        return
    if refusal := dataset_folder_refusal(folder.strip()):
        st.error(f"Cannot score on this folder: {refusal}")
        return
    _score(usable, labels, folder.strip(), name.strip(), class_map)
