"""The Compare page's figures: curves, accuracy bars, scatter, confusion matrices, ROC and
reliability diagrams (plotly), each colour-coded by the run's position in the selection."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.evaluation.evaluate import SPLIT_LABELS, SPLITS
from core.evaluation.run_selection import split_label
from core.runs.metrics_records import SplitReport, StressRecord
from core.ui.palette import colour, symbol

DASHES = ("solid", "dash", "dot", "dashdot")  # ROC curves have no markers: a dash per run


def history_frame(history: Sequence[dict]) -> pd.DataFrame:
    """Per-epoch numbers as floats (unreadable values become NaN), with elapsed time."""
    columns = ["epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy"]
    frame = pd.DataFrame(list(history)).reindex(
        columns=[*columns, "elapsed_seconds", "epoch_seconds"]
    )
    frame = frame.apply(pd.to_numeric, errors="coerce")
    if frame["elapsed_seconds"].isna().all():  # older runs kept only the time of each epoch
        frame["elapsed_seconds"] = frame["epoch_seconds"].cumsum()
    return frame.dropna(subset=["epoch"]).sort_values("epoch")


def _time_axis(seconds: float) -> tuple[float, str]:
    if seconds >= 2 * 3600:
        return 3600.0, "training time (h)"
    if seconds >= 5 * 60:
        return 60.0, "training time (min)"
    return 1.0, "training time (s)"


def curves_chart(histories: dict[str, Sequence[dict]], *, over_time: bool = False) -> go.Figure:
    """Loss (left) and accuracy (right) of each run, per epoch or against wall-clock time."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    frames = {label: history_frame(history) for label, history in histories.items()}
    ends = [float(frame["elapsed_seconds"].max()) for frame in frames.values()]
    scale, time_title = _time_axis(max((end for end in ends if math.isfinite(end)), default=0.0))
    for position, (label, frame) in enumerate(frames.items()):
        x = frame["elapsed_seconds"] / scale if over_time else frame["epoch"]
        for column, panel in (
            ("train_loss", 1), ("val_loss", 1), ("train_accuracy", 2), ("val_accuracy", 2)
        ):  # fmt: skip
            training = column.startswith("train")
            figure.add_trace(
                go.Scatter(
                    x=x, y=frame[column], mode="lines+markers", name=label,
                    legendgroup=label, showlegend=column == "val_loss",
                    line={"color": colour(position), "dash": "dot" if training else "solid"},
                    marker={"symbol": symbol(position)},
                    hovertemplate=f"{label}<br>{column}: %{{y:.4f}}<extra></extra>",
                ),
                row=1, col=panel,
            )  # fmt: skip
    figure.update_xaxes(title_text=time_title if over_time else "epoch")
    figure.update_layout(
        height=360,
        margin={"t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.3},
    )
    return figure


def split_accuracy_chart(
    reports: dict[str, dict[str, SplitReport | None]], splits: Sequence[str] = SPLITS
) -> go.Figure:
    """Accuracy of each run on each split (and external set) as a dot with its bootstrap 95%
    interval, runs side by side within a split, on an axis that spans the intervals: on a 0-100%
    axis, 97% and 99% looked the same."""
    figure = go.Figure()
    labels = [split_label(split) for split in splits]
    ends: list[float] = []
    for position, (run_label, by_split) in enumerate(reports.items()):
        values, above, below = [], [], []
        for split in splits:
            report = by_split.get(split)
            value = report.accuracy if report else None
            low, high = (report.accuracy_ci if report else None) or (value, value)
            values.append(value)
            above.append(high - value if value is not None and high is not None else None)
            below.append(value - low if value is not None and low is not None else None)
            ends += [end for end in (low, high) if end is not None]
        figure.add_trace(
            go.Scatter(
                x=labels, y=values, name=run_label, mode="markers",
                marker={"color": colour(position), "size": 11, "symbol": symbol(position)},
                error_y={"type": "data", "symmetric": False, "array": above, "arrayminus": below,
                         "thickness": 2, "width": 6},
                hovertemplate=f"{run_label}<br>%{{x}}: %{{y:.1%}}<extra></extra>",
            )
        )  # fmt: skip
    low, high = accuracy_axis_range(ends)
    figure.update_layout(
        scattermode="group",
        height=360,
        margin={"t": 30, "b": 10},
        yaxis={"title": "accuracy (95% interval)", "range": [low, high],
               "tickformat": ".1%" if high - low < 0.1 else ".0%"},
    )  # fmt: skip
    return figure


def accuracy_axis_range(ends: Sequence[float]) -> tuple[float, float]:
    """An accuracy axis that shows every interval with a little room, at least 2 points tall,
    never below 0 or far above 100%."""
    if not ends:
        return 0.0, 1.05
    low, high = min(ends), max(ends)
    room = max((high - low) * 0.1, 0.005)
    low, high = max(0.0, low - room), min(1.0, high) + room
    if high - low < 0.02:
        middle = (high + low) / 2
        low, high = max(0.0, middle - 0.01), middle + 0.01
    return low, high


def accuracy_time_chart(table: pd.DataFrame, highlighted: Iterable[str] = ()) -> go.Figure:
    """Test accuracy (official and duplicate-free, with intervals) against training time."""
    figure = go.Figure()
    rows = table.dropna(subset=["train_seconds"])
    highlighted = set(highlighted)
    markers = (("test", "circle"), ("duplicate_free_test", "diamond"), ("unseen_scan_test", "x"))
    for split, marker in markers:
        points = rows.dropna(subset=[f"{split}_accuracy"])
        accuracy = points[f"{split}_accuracy"]
        sizes = [14 if run_id in highlighted else 9 for run_id in points["run"]]
        error = {
            "type": "data",
            "symmetric": False,
            "array": points[f"{split}_high"] - accuracy,
            "arrayminus": accuracy - points[f"{split}_low"],
        }
        figure.add_trace(
            go.Scatter(
                x=points["train_seconds"], y=accuracy, mode="markers", name=SPLIT_LABELS[split],
                text=points["name"] + " · " + points["model"].fillna("?").astype(str),
                marker={"symbol": marker, "size": sizes}, error_y=error,
                hovertemplate="%{text}<br>%{y:.1%} after %{x:.0f} s<extra></extra>",
            )
        )  # fmt: skip
    figure.update_layout(
        height=380,
        margin={"t": 30, "b": 10},
        xaxis={"title": "training time (s, log scale)", "type": "log"},
        yaxis={"title": "accuracy (95% interval)", "tickformat": ".0%"},
    )
    return figure


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
                       line={"color": "grey", "dash": "dash", "width": 1}),
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
                    line={"color": colour(position), "dash": DASHES[position % len(DASHES)]},
                ),
                row=row, col=column,
            )  # fmt: skip
    figure.update_xaxes(title_text="false positive rate", range=[0, 1])
    figure.update_yaxes(title_text="true positive rate", range=[0, 1.02])
    figure.update_layout(
        height=340 * rows, margin={"t": 40, "b": 10}, legend={"orientation": "h", "y": -0.25}
    )
    return figure


def reliability_chart(reports: dict[str, SplitReport]) -> go.Figure:
    """Accuracy against confidence per confidence bin, per run; the diagonal is calibrated."""
    bins = {label: report.reliability for label, report in reports.items()}
    figure = go.Figure(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
                   line={"color": "grey", "dash": "dash", "width": 1})
    )  # fmt: skip
    for position, (label, rows) in enumerate(bins.items()):
        frame = pd.DataFrame(list(rows)).reindex(columns=["confidence", "accuracy", "count"])
        frame = frame.apply(pd.to_numeric, errors="coerce").dropna()
        frame = frame[frame["count"] > 0]
        sizes = 6 + 18 * np.sqrt(frame["count"] / max(1.0, float(frame["count"].max())))
        figure.add_trace(
            go.Scatter(
                x=frame["confidence"], y=frame["accuracy"], mode="lines+markers", name=label,
                customdata=frame["count"], marker={"size": sizes, "color": colour(position)},
                line={"color": colour(position)},
                hovertemplate="confidence %{x:.2f}: accuracy %{y:.2f} "
                "(%{customdata} images)<extra></extra>",
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
