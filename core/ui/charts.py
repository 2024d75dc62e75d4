"""Plotly figures for the pages (pure functions of data; the pages draw them)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from core.figures.palette import HIGHLIGHT, SPLIT_COLOURS, class_colours, class_dashes


def class_counts_chart(counts: dict[str, dict[str, int]]) -> go.Figure:
    """Grouped bars: images per class, one colour per split."""
    rows = [
        {"split": split, "class": label, "images": count}
        for split, per_class in counts.items()
        for label, count in per_class.items()
    ]
    figure = px.bar(
        pd.DataFrame(rows),
        x="class",
        y="images",
        color="split",
        pattern_shape="split",  # a hatch per split as well: not told apart by colour alone
        barmode="group",
        text="images",
        color_discrete_map=SPLIT_COLOURS,
    )
    figure.update_layout(height=360, margin={"t": 30, "b": 10}, legend_title_text="split")
    return figure


def intensity_box_chart(frame: pd.DataFrame) -> go.Figure:
    """Box plot of each image's mean intensity, per class and split."""
    figure = px.box(
        frame,
        x="label",
        y="mean_intensity",
        color="split",
        color_discrete_map=SPLIT_COLOURS,
        labels={"label": "class", "mean_intensity": "mean intensity (0-255)"},
    )
    figure.update_layout(height=380, margin={"t": 30, "b": 10})
    return figure


def intensity_histogram_chart(histograms: dict[str, np.ndarray]) -> go.Figure:
    """Pixel intensity distribution per class (fraction of pixels per grey level)."""
    figure = go.Figure()
    levels = np.arange(256)
    colours, dashes = class_colours(list(histograms)), class_dashes(list(histograms))
    for label, histogram in histograms.items():
        line = {"color": colours[label], "dash": dashes[label]}
        figure.add_trace(go.Scatter(x=levels, y=histogram, mode="lines", name=label, line=line))
    figure.update_layout(
        height=360,
        margin={"t": 30, "b": 10},
        xaxis_title="grey level",
        yaxis_title="share of pixels (log scale)",
        yaxis_type="log",
    )
    # One tick per decade, as percentages: plotly's default SI prefixes read "100n", "1μ".
    figure.update_yaxes(dtick=1, tickformat="~%", exponentformat="none")
    return figure


def distance_histogram_chart(nearest: np.ndarray, threshold: float) -> go.Figure:
    """Histogram of each image's distance to its most similar other image, with the threshold."""
    figure = go.Figure(
        go.Histogram(x=np.clip(nearest, 0, 0.4), xbins={"start": 0, "end": 0.4, "size": 0.005})
    )
    figure.add_vline(
        x=threshold,
        line_dash="dash",
        line_color=HIGHLIGHT,
        annotation_text=f"threshold {threshold:.3f}",
    )
    figure.update_layout(
        height=320,
        margin={"t": 30, "b": 10},
        xaxis_title="distance to the nearest other image (0 = identical, clipped at 0.4)",
        yaxis_title="images (log)",
        yaxis_type="log",
        bargap=0.05,
    )
    # One tick per decade: plotly's default adds "2" and "5" between them, read as counts.
    figure.update_yaxes(dtick=1, tickformat=",d")
    return figure
