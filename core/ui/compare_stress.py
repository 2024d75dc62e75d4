"""The Compare page's stress tests: accuracy of the selected runs under scanner-like shifts."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from core.evaluation.stress import incomplete_shifts, stored_stress, stress_run
from core.figures.evaluation import stress_chart
from core.imaging.shifts import SHIFTS
from core.runs.registry import RunInfo
from core.ui.progress import show_work_failures, work_button

STRESS_REPORT_KEY = "_compare_stress_report"


def show_stress_tests(selected: Sequence[RunInfo], labels: dict[str, str]) -> None:
    """The selected runs' stress curves, and a button for those not stress-tested yet."""
    show_work_failures(STRESS_REPORT_KEY, "stress-test")
    records = {
        labels[info.run_id]: record
        for info in selected
        if (record := stored_stress(info)) is not None
    }
    if records:
        sizes = sorted({record.n for record in records.values() if record.n})
        st.plotly_chart(stress_chart(records), width="stretch")
        st.caption(
            f"Accuracy on the duplicate-free test images ({', '.join(map(str, sizes))}) under each "
            "shift, applied to the decoded image before the run's own preprocessing; the first "
            "point of each line is the unshifted image. Same-source test scores hide these drops."
        )
    pending = [  # not stress-tested, or only at moderate severity (a study's cells)
        info
        for info in selected
        if info.usable
        and ((record := stored_stress(info)) is None or incomplete_shifts(record.shifts, SHIFTS))
    ]
    if not pending:
        if not records:
            st.info("Pick completed runs to stress-test them.")
        return
    st.info(
        f"{len(pending)} selected run(s) without a full stress test: rotation, zoom, noise, blur, "
        "intensity, resolution and JPEG shifts at four severities each (about half a minute for "
        "cnn_fast, several minutes for MobileNetV2 on a laptop CPU)."
    )
    work_button(
        pending,
        labels,
        lambda info, events: stress_run(info.run_id, events=events),
        label=f"Stress-test {len(pending)} run(s)",
        key="compare_stress",
        report_key=STRESS_REPORT_KEY,
        title=f"Stress-testing {len(pending)} run(s)...",
        doing="every shift at every severity",
        done="Stress-tested",
    )
