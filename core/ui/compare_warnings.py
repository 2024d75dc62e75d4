"""The Compare page's warnings section: how well each run's warning scores tell its wrong
predictions from its right ones (stored by `python -m core warnings` or the button here)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.evaluation.detector_study import DETECTORS_VERSION, study_run
from core.figures.palette import colour
from core.runs.metrics_records import DetectorRecord
from core.runs.registry import RunInfo
from core.ui.progress import show_work_failures, work_button

WARNINGS_REPORT_KEY = "_compare_warnings_report"
DETECTOR_LABELS = {
    "familiarity": "intensity statistics + top class < 60%",
    "msp": "calibrated confidence (the default)",
    "energy": "energy",
    "mahalanobis": "Mahalanobis distance of features",
}


def stored_detectors(info: RunInfo) -> DetectorRecord | None:
    """The run's stored detector measurement, when current."""
    record = info.metrics.detectors if info.metrics else None
    return record if record and record.version == DETECTORS_VERSION else None


def detector_table(records: dict[str, DetectorRecord], set_name: str) -> pd.DataFrame:
    """Per run and detector on one set: share flagged, accuracy unflagged and flagged, AURC."""
    rows = []
    for label, record in records.items():
        for name, report in record.sets.get(set_name, {}).items():
            rows.append(
                {
                    "run": label,
                    "detector": DETECTOR_LABELS.get(name, name),
                    "flagged": report.get("flagged_share"),
                    "unflagged accuracy": report.get("unflagged_accuracy"),
                    "flagged accuracy": report.get("flagged_accuracy"),
                    "AURC": report.get("aurc"),
                }
            )
    return pd.DataFrame(rows)


def risk_coverage_chart(records: dict[str, DetectorRecord], set_name: str) -> go.Figure:
    """Error rate among the most trusted predictions against the share kept, per run and
    ranking detector (solid: the default, calibrated confidence)."""
    figure = go.Figure()
    for position, (label, record) in enumerate(records.items()):
        for name, report in record.sets.get(set_name, {}).items():
            curve = report.get("risk_coverage")
            if not curve:
                continue
            figure.add_trace(
                go.Scatter(
                    x=curve["coverage"], y=curve["risk"], mode="lines",
                    name=f"{label} · {name}", line={
                        "color": colour(position), "dash": "solid" if name == "msp" else "dot"
                    },
                    hovertemplate="keep %{x:.0%}: %{y:.1%} wrong<extra></extra>",
                )
            )  # fmt: skip
    figure.update_layout(
        height=340,
        margin={"t": 20, "b": 10},
        xaxis={
            "title": "coverage (share of predictions kept, most trusted first)",
            "tickformat": ".0%",
        },
        yaxis={"title": "error rate among those kept", "tickformat": ".1%", "rangemode": "tozero"},
    )
    return figure


def show_warnings(selected: Sequence[RunInfo], labels: dict[str, str]) -> None:
    """The selected runs' detector measurements, and a button for those not measured yet."""
    show_work_failures(WARNINGS_REPORT_KEY, "measure the warnings of")
    records = {
        labels[info.run_id]: record
        for info in selected
        if (record := stored_detectors(info)) is not None
    }
    if records:
        sets = list(dict.fromkeys(name for record in records.values() for name in record.sets))
        chosen = st.selectbox("Set", sets, key="compare_warnings_set")
        table = detector_table(records, chosen)
        percent = {
            column: st.column_config.NumberColumn(column, format="percent")
            for column in ("flagged", "unflagged accuracy", "flagged accuracy")
        }
        st.dataframe(table, hide_index=True, width="stretch", column_config=percent)
        st.plotly_chart(risk_coverage_chart(records, chosen), width="stretch")
        st.caption(
            "A warning helps when what it does not flag is right. Each score flags the "
            "predictions below the value that flags 5% of the validation images; AURC is the "
            "mean error rate over every coverage (lower is better)."
        )
    pending = [info for info in selected if info.usable and stored_detectors(info) is None]
    if not pending:
        if not records:
            st.info("Pick completed runs to measure their warnings.")
        return
    st.info(
        f"{len(pending)} selected run(s) without a warnings measurement: every warning score "
        "on the duplicate-free test, under each stress shift and on stored external sets "
        "(about 25 s for cnn_fast, 4-5 minutes for MobileNetV2 on a laptop CPU)."
    )
    work_button(
        pending,
        labels,
        lambda info, events: study_run(info.run_id, events=events),
        label=f"Measure the warnings of {len(pending)} run(s)",
        key="compare_warnings",
        report_key=WARNINGS_REPORT_KEY,
        title=f"Measuring the warnings of {len(pending)} run(s)...",
        doing="every warning score on the test images, shifted and unshifted",
        done="Measured",
    )
