"""Plotly figures of a study: data-efficiency curves and the overfitting view (pure functions
of the summary tables; the Studies page draws them)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from core.figures.palette import REFERENCE, SPLIT_COLOURS
from core.figures.palette import colour as _colour
from core.figures.palette import symbol as _symbol
from core.figures.palette import translucent as _translucent
from core.runs.records import EpochRecord

PERCENT_METRICS_SUFFIXES = ("accuracy", "macro_f1", "generalization_gap")
BANDS = {
    "min-max over seeds": ("_min", "_max"),
    "95% interval of the mean": ("_ci_low", "_ci_high"),
}


def is_percent(metric: str) -> bool:
    """Whether the metric is a share (drawn in percent)."""
    return metric.endswith(PERCENT_METRICS_SUFFIXES)


def data_efficiency_chart(
    sizes: pd.DataFrame,
    cells: pd.DataFrame,
    metric: str,
    *,
    title: str,
    band: str = "min-max over seeds",
    settings: Sequence[str] = (),
) -> go.Figure:
    """`metric` against training images (log axis): per setting the mean over seeds as a line,
    a band (min-max or 95% interval), and each seed's own point."""
    figure = go.Figure()
    low_suffix, high_suffix = BANDS[band]
    scale = 100.0 if is_percent(metric) else 1.0
    names = list(settings) or list(dict.fromkeys(sizes["setting"]))
    for index, name in enumerate(names):
        colour = _colour(index)
        rows = sizes[(sizes["setting"] == name) & sizes[f"{metric}_mean"].notna()]
        rows = rows.sort_values("n_train")
        if rows.empty:
            continue
        x = rows["n_train"].to_numpy(dtype=float)
        low = rows[f"{metric}{low_suffix}"].fillna(rows[f"{metric}_mean"]).to_numpy(float) * scale
        high = rows[f"{metric}{high_suffix}"].fillna(rows[f"{metric}_mean"]).to_numpy(float) * scale
        figure.add_trace(go.Scatter(
            x=np.concatenate([x, x[::-1]]), y=np.concatenate([high, low[::-1]]),
            fill="toself", fillcolor=_translucent(colour), line={"width": 0},
            hoverinfo="skip", showlegend=False, legendgroup=name,
        ))  # fmt: skip
        hover = [
            f"{name}<br>size {size} ({n} images)<br>mean {value:.1f}" + ("%" if scale > 1 else "")
            for size, n, value in zip(
                rows["size"], rows["n_train"], rows[f"{metric}_mean"] * scale, strict=True
            )
        ]
        figure.add_trace(go.Scatter(
            x=x, y=rows[f"{metric}_mean"] * scale, mode="lines+markers", name=name,
            line={"color": colour, "width": 2}, legendgroup=name, hovertext=hover,
            marker={"symbol": _symbol(index), "size": 9},
            hoverinfo="text",
        ))  # fmt: skip
        points = cells[(cells["setting"] == name) & (cells["state"] == "completed")]
        if metric in points and points[metric].notna().any():
            points = points[points[metric].notna()]
            figure.add_trace(go.Scatter(
                x=points["n_train"], y=points[metric] * scale, mode="markers",
                marker={"color": colour, "size": 7, "opacity": 0.55, "symbol": "circle-open"},
                name=f"{name}: each seed", legendgroup=name, showlegend=False,
                hovertext=[f"{name}, seed {seed}: {value * scale:.1f}" for seed, value
                           in zip(points["seed"], points[metric], strict=True)],
                hoverinfo="text",
            ))  # fmt: skip
    ticks = sorted(set(sizes["n_train"].dropna().astype(int)))
    figure.update_xaxes(
        type="log", title_text="training images (log scale)", tickvals=ticks,
        ticktext=[f"{tick:,}" for tick in ticks],
    )  # fmt: skip
    figure.update_yaxes(title_text=title + (" (%)" if scale > 1 else ""))
    figure.update_layout(
        height=380, margin={"t": 30, "b": 10}, legend={"orientation": "h", "y": -0.25},
        hovermode="closest",
    )  # fmt: skip
    return figure


def overfitting_chart(history: Sequence[EpochRecord], best_epoch: int | None) -> go.Figure:
    """Train and validation loss (left) and accuracy (right) per epoch, the gap between them
    shaded, and the epoch whose validation loss was lowest marked."""
    frame = pd.DataFrame([epoch.to_json() for epoch in history])
    figure = go.Figure()
    if frame.empty:
        return figure
    frame = frame.sort_values("epoch")
    panels = (("loss", "y"), ("accuracy", "y2"))
    for metric, axis in panels:
        train, val = frame[f"train_{metric}"], frame[f"val_{metric}"]
        figure.add_trace(go.Scatter(
            x=frame["epoch"], y=train, name=f"train {metric}", yaxis=axis,
            line={"color": SPLIT_COLOURS["train"], "dash": "dot"}, legendgroup=metric,
        ))  # fmt: skip
        figure.add_trace(go.Scatter(
            x=frame["epoch"], y=val, name=f"validation {metric}", yaxis=axis, fill="tonexty",
            fillcolor=_translucent(SPLIT_COLOURS["val"], 0.15),
            line={"color": SPLIT_COLOURS["val"]}, legendgroup=metric,
        ))  # fmt: skip
    marked = best_epoch
    if marked is None and frame["val_loss"].notna().any():  # a run without metrics.json
        marked = int(frame.loc[frame["val_loss"].idxmin(), "epoch"])
    if marked is not None:
        figure.add_vline(
            x=float(marked), line_dash="dash", line_color=REFERENCE,
            annotation_text=f"lowest validation loss: epoch {int(marked)}",
        )  # fmt: skip
    figure.update_layout(
        height=360, margin={"t": 40, "b": 10}, legend={"orientation": "h", "y": -0.3},
        xaxis={"title": "epoch", "domain": [0, 0.45]},
        xaxis2={"title": "epoch", "domain": [0.55, 1], "anchor": "y2"},
        yaxis={"title": "loss (shaded: validation - train)"},
        yaxis2={"title": "accuracy", "anchor": "x2", "tickformat": ".0%"},
    )  # fmt: skip
    for trace in figure.data:
        if trace.yaxis == "y2":
            trace.xaxis = "x2"
    return figure
