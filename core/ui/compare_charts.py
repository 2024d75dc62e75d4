"""The Compare page's drawing of figures that need Streamlit's layout (the figures themselves
are built in core.figures, which the HTML report shares)."""

from __future__ import annotations

import streamlit as st

from core.figures.evaluation import confusion_chart
from core.runs.metrics_records import SplitReport


def show_confusion_matrices(
    reports: dict[str, SplitReport], classes: dict[str, list[str]], *, normalise: bool
) -> None:
    """The runs' confusion matrices side by side, three to a row."""
    columns = st.columns(min(3, len(reports)))
    for position, (label, report) in enumerate(reports.items()):
        figure = confusion_chart(
            report.confusion_matrix, classes.get(label, []), normalise=normalise,
            title=label,
        )  # fmt: skip
        columns[position % len(columns)].plotly_chart(
            figure, width="stretch", key=f"compare_confusion_{position}"
        )
