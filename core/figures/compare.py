"""Figures of runs side by side: training curves, accuracy on each split with its interval, and
test accuracy against training time, each run colour-coded by its position in the selection."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.evaluation.evaluate import SPLIT_LABELS, SPLITS
from core.evaluation.run_selection import split_label
from core.figures.palette import colour, symbol
from core.runs.metrics_records import SplitReport

TICK_MULTIPLES = (1, 2, 5, 10)  # percent ticks are these times a power of ten apart
TARGET_TICKS = 6


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


def percent_ticks(low: float, high: float) -> tuple[list[float], str]:
    """Tick values at a round step (1, 2 or 5 times a power of ten, in percentage points) and a
    tick format with just enough decimals for that step: every label is distinct and says the
    exact value of its gridline. Letting plotly pick the step under a fixed '.0%' format gave
    '97%, 97%, 98%, 98%' and a '100%' line that was 99.5%. No tick goes above 100%."""
    rough = max(high - low, 1e-6) * 100 / TARGET_TICKS  # percentage points between ticks
    power = 10.0 ** math.floor(math.log10(rough))
    step = next(multiple * power for multiple in TICK_MULTIPLES if multiple * power >= rough)
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    top = min(high, 1.0) * 100 + 1e-9
    multiple = math.ceil(low * 100 / step - 1e-9)
    values = []
    while multiple * step <= top:
        values.append(round(multiple * step, decimals + 2) / 100)
        multiple += 1
    return values, f".{decimals}%"


def _percent_axis(title: str, ends: Sequence[float]) -> dict:
    low, high = accuracy_axis_range(ends)
    ticks, tick_format = percent_ticks(low, high)
    return {"title": title, "range": [low, high], "tickvals": ticks, "tickformat": tick_format}


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
    figure.update_layout(
        scattermode="group",
        height=360,
        margin={"t": 30, "b": 10},
        yaxis=_percent_axis("accuracy (95% interval)", ends),
    )
    return figure


def accuracy_time_chart(table: pd.DataFrame, highlighted: Iterable[str] = ()) -> go.Figure:
    """Test accuracy (official and the stricter subsets, with intervals) against training time.

    Every point names its run on hover; the highlighted (selected) runs are larger and their
    official-test point carries the run's name as text (on every subset, the labels of one run
    would sit on top of each other)."""
    figure = go.Figure()
    rows = table.dropna(subset=["train_seconds"])
    highlighted = set(highlighted)
    # A name reads towards the middle of the plot, so the fastest and slowest runs' names
    # stay inside it (centred over the point, a long run id was cut at the plot's edge).
    middle = float(np.median(np.log(rows["train_seconds"].clip(lower=1e-3)))) if len(rows) else 0

    markers = (("test", "circle"), ("duplicate_free_test", "diamond"), ("unseen_scan_test", "x"))
    ends: list[float] = []
    for split, marker in markers:
        points = rows.dropna(subset=[f"{split}_accuracy"])
        accuracy = points[f"{split}_accuracy"]
        chosen = points["run"].isin(highlighted)
        names = points["name"].astype(str)
        error = {
            "type": "data",
            "symmetric": False,
            "array": points[f"{split}_high"] - accuracy,
            "arrayminus": accuracy - points[f"{split}_low"],
        }
        for column in (f"{split}_accuracy", f"{split}_low", f"{split}_high"):
            ends += [float(value) for value in points[column].dropna()]
        figure.add_trace(
            go.Scatter(
                x=points["train_seconds"], y=accuracy, mode="markers+text",
                name=SPLIT_LABELS[split],
                text=names.where(chosen, "") if split == "test" else None,
                textposition=[
                    "top right" if math.log(max(seconds, 1e-3)) <= middle else "top left"
                    for seconds in points["train_seconds"]
                ],
                cliponaxis=False,
                hovertext=names + " · " + points["model"].fillna("?").astype(str),
                marker={"symbol": marker, "size": [14 if one else 9 for one in chosen]},
                error_y=error,
                hovertemplate="%{hovertext}<br>%{y:.1%} after %{x:.0f} s<extra></extra>",
            )
        )  # fmt: skip
    figure.update_layout(
        height=380,
        margin={"t": 30, "b": 10},
        xaxis={"title": "training time (s, log scale)", "type": "log"},
        yaxis=_percent_axis("accuracy (95% interval)", ends),
    )
    return figure
