"""Figures of evaluations: confusion matrices, ROC curves, reliability diagrams and stress-test
curves, each run colour-coded by its position in the selection."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.figures.palette import REFERENCE, colour, dash, symbol
from core.runs.metrics_records import SplitReport, StressRecord

MIN_BIN_IMAGES = 10
"""A reliability bin of fewer images says little about calibration (one image more or less moves
its accuracy by 10 points or more): it is drawn hollow and left out of the line."""
RELIABILITY_CAPTION = (
    "Each marker is a confidence bin, sized by its number of images (hover for the count). "
    f"Hollow markers are bins of fewer than {MIN_BIN_IMAGES} images: drawn, but not joined by "
    "the line, because a handful of images makes their accuracy jump."
)


def confusion_chart(
    matrix: Sequence[Sequence[int]], classes: Sequence[str], *, normalise: bool, title: str
) -> go.Figure:
    """Heat map of a confusion matrix (rows true, columns predicted), counts or row shares."""
    counts = np.asarray(matrix, dtype=float)
    if counts.ndim != 2 or counts.shape != (len(classes), len(classes)):
        counts = np.zeros((len(classes), len(classes)))  # unreadable: an empty grid, no crash
    if normalise:
        totals = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
        text = [[f"{value:.0%}" for value in row] for row in values]
    else:
        values, text = counts, [[f"{value:.0f}" for value in row] for row in counts]
    figure = go.Figure(
        go.Heatmap(
            z=values, x=list(classes), y=list(classes), text=text, texttemplate="%{text}",
            colorscale="Blues", showscale=False, zmin=0,
            hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>",
        )
    )  # fmt: skip
    figure.update_layout(
        title={"text": title, "font": {"size": 14}},
        height=380,
        margin={"t": 40, "b": 10},
        xaxis={"title": "predicted"},
        yaxis={"title": "true", "autorange": "reversed"},
    )
    return figure


def union_of(classes: dict[str, list[str]]) -> list[str]:
    """Every class of the runs, in first-seen order."""
    return list(dict.fromkeys(name for names in classes.values() for name in names))


def roc_chart(reports: dict[str, SplitReport], classes: Sequence[str]) -> go.Figure:
    """One-vs-rest ROC curve of every class (one panel each), one line per run's report."""
    curves = {label: report.roc_curves for label, report in reports.items()}
    columns = min(4, max(1, len(classes)))
    rows = max(1, math.ceil(len(classes) / columns))
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=list(classes))
    for index, name in enumerate(classes):
        row, column = index // columns + 1, index % columns + 1
        figure.add_trace(
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", showlegend=False, hoverinfo="skip",
                       line={"color": REFERENCE, "dash": "dash", "width": 1}),
            row=row, col=column,
        )  # fmt: skip
        for position, (label, by_class) in enumerate(curves.items()):
            curve = (by_class or {}).get(name)
            if not isinstance(curve, dict):
                continue  # undefined: the split has no image (or only images) of this class
            figure.add_trace(
                go.Scatter(
                    x=curve.get("fpr"), y=curve.get("tpr"), mode="lines", name=label,
                    legendgroup=label, showlegend=index == 0,
                    line={"color": colour(position), "dash": dash(position)},
                ),
                row=row, col=column,
            )  # fmt: skip
    figure.update_xaxes(title_text="false positive rate", range=[0, 1])
    figure.update_yaxes(title_text="true positive rate", range=[0, 1.02])
    figure.update_layout(
        height=340 * rows, margin={"t": 40, "b": 10}, legend={"orientation": "h", "y": -0.25}
    )
    return figure


def reliability_frame(bins: Sequence[dict]) -> pd.DataFrame:
    """A report's non-empty confidence bins (confidence, accuracy, count) as numbers, with
    whether each holds enough images to be joined by the line."""
    frame = pd.DataFrame(list(bins)).reindex(columns=["confidence", "accuracy", "count"])
    frame = frame.apply(pd.to_numeric, errors="coerce").dropna()
    frame = frame[frame["count"] > 0].sort_values("confidence")
    frame["count"] = frame["count"].astype(int)
    frame["enough"] = frame["count"] >= MIN_BIN_IMAGES
    return frame


def reliability_chart(reports: dict[str, SplitReport]) -> go.Figure:
    """Accuracy against confidence per confidence bin, per run; the diagonal is calibrated.
    Markers are sized by the bin's image count; bins under MIN_BIN_IMAGES are hollow and not
    joined by the line (RELIABILITY_CAPTION says so where the chart is shown)."""
    figure = go.Figure(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                   line={"color": REFERENCE, "dash": "dash", "width": 1})
    )  # fmt: skip
    hover = "confidence %{x:.2f}: accuracy %{y:.2f} (%{customdata} images)<extra></extra>"
    for position, (label, report) in enumerate(reports.items()):
        frame = reliability_frame(report.reliability)
        sizes = 6 + 18 * np.sqrt(frame["count"] / max(1.0, float(frame["count"].max())))
        solid = frame["enough"].to_numpy()
        for enough, part in ((True, frame[solid]), (False, frame[~solid])):
            figure.add_trace(
                go.Scatter(
                    x=part["confidence"], y=part["accuracy"], customdata=part["count"],
                    mode="lines+markers" if enough else "markers",
                    name=label if enough else f"{label}: bins under {MIN_BIN_IMAGES} images",
                    legendgroup=label, showlegend=enough or not solid.any(),
                    marker={"size": sizes[solid if enough else ~solid],
                            "color": colour(position), "symbol": symbol(position)
                            + ("" if enough else "-open"), "line": {"width": 2}},
                    line={"color": colour(position)}, hovertemplate=f"{label}<br>{hover}",
                )
            )  # fmt: skip
    figure.update_layout(
        height=380,
        margin={"t": 30, "b": 10},
        xaxis={"title": "confidence (top-class probability)", "range": [0, 1]},
        yaxis={"title": "accuracy", "range": [0, 1.02]},
    )
    return figure


def stress_chart(records: dict[str, StressRecord]) -> go.Figure:
    """Accuracy against severity, one panel per shift, one line per run (first point: unshifted)."""
    names = list(dict.fromkeys(name for record in records.values() for name in record.shifts))
    columns = min(5, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / columns))
    titles = [name.replace("_", " ") for name in names]
    figure = make_subplots(rows=rows, cols=columns, subplot_titles=titles, shared_yaxes=True)
    for index, name in enumerate(names):
        row, column = index // columns + 1, index % columns + 1
        for position, (label, record) in enumerate(records.items()):
            points = record.shifts.get(name, ())
            figure.add_trace(
                go.Scatter(
                    x=[point.severity for point in points],
                    y=[point.accuracy for point in points],
                    mode="lines+markers", name=label, legendgroup=label,
                    showlegend=index == 0, line={"color": colour(position)},
                    marker={"symbol": symbol(position), "size": 8},
                    hovertemplate=f"{label}<br>{name} %{{x}}: %{{y:.1%}}<extra></extra>",
                ),
                row=row, col=column,
            )  # fmt: skip
    figure.update_yaxes(tickformat=".0%", range=[0, 1.02])
    figure.update_layout(
        height=260 * rows, margin={"t": 40, "b": 10}, legend={"orientation": "h", "y": -0.15}
    )
    return figure
