"""The Compare page's report: one self-contained HTML file of the selected runs, to share."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import streamlit as st

from core.reports.html import build_report, report_file_name
from core.runs.registry import RunInfo

REPORT_KEY = "_compare_report"  # (run ids, labels, HTML) of the last report built


def show_report_download(selected: Sequence[RunInfo], labels: dict[str, str]) -> None:
    """A button that builds the report of the selected runs, then its download button.

    The report is kept in the session for the selection it was built for, so the download
    survives other clicks on the page; picking other runs asks for a new one."""
    run_ids = tuple(info.run_id for info in selected)
    shown = {run_id: labels.get(run_id, run_id) for run_id in run_ids}
    if st.button(
        "Build a report of the selected runs",
        key="compare_report",
        disabled=not selected,
        help="One HTML file (opens without a network): configuration, curves, every evaluation "
        "with its interval, confusion matrices, stress tests and external sets, CAMs, the data "
        "audit and paired tests.",
    ):
        try:
            with st.spinner(f"Building the report of {len(run_ids)} run(s)..."):
                document = build_report(selected, shown)
        # ReportError is a ValueError; a run's files changing under it, an OSError.
        except (ValueError, OSError, RuntimeError) as error:
            st.session_state.pop(REPORT_KEY, None)
            st.error(f"Could not build the report: {error}")
            return
        st.session_state[REPORT_KEY] = (run_ids, shown, document)
    stored = st.session_state.get(REPORT_KEY)
    if stored is None or stored[:2] != (run_ids, shown):
        return
    st.download_button(
        f"Download the report ({len(stored[2]) / 1e6:.1f} MB, HTML)",
        stored[2].encode("utf-8"),
        file_name=report_file_name(datetime.now(UTC).date()),
        mime="text/html",
        key="compare_report_download",
        on_click="ignore",  # downloading needs no rerun of the page
    )
