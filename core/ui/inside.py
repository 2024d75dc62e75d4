"""The Inside page's sections: filters, feature maps, layer probes, the embedding projector and
the CAM sanity checks, for one run or two side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.data.discovery import DatasetError
from core.evaluation.evaluate import SPLIT_LABELS
from core.figures.palette import REFERENCE, class_colours, class_symbols
from core.figures.palette import colour as run_colour
from core.figures.palette import symbol as run_symbol
from core.imaging.pixels import ImageReadError
from core.imaging.reader import read_image, read_slices
from core.inference.explain import DEFAULT_CAM_METHOD, METHOD_CAPTIONS, overlay
from core.inspection.layers import filter_grid, first_convolution
from core.inspection.maps import CHANNELS_PER_STAGE, feature_maps, stage_fields
from core.inspection.probes import EMBEDDING_SPLITS, embedding, embedding_path, layer_probes
from core.inspection.render import filter_image, thumbnail_url, wrap_tiles
from core.inspection.sanity import sanity_checks
from core.inspection.store import preferred_method, read_section, stored_sanity
from core.runs.registry import RunInfo
from core.ui.classify import explain_slice, load_predictor
from core.ui.datasets import test_images_by_class
from core.ui.progress import progress_bar
from core.ui.serving import withheld

PROJECTIONS = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
# Plotly's marker names (the palette's) as Vega-Lite spells them.
VEGA_SHAPES = {
    "circle": "circle", "square": "square", "diamond": "diamond", "triangle-up": "triangle-up",
    "cross": "cross", "x": "cross", "star": "triangle-down", "hexagon": "triangle-right",
}  # fmt: skip
PICKED = "picked"  # the projector's click selection


@st.cache_data(show_spinner="Making thumbnails...", max_entries=8)
def thumbnails(root: str, paths: tuple[str, ...]) -> list[str]:
    """Each image's hover thumbnail as a data URL ('' for a file that no longer reads)."""
    urls = []
    for relative in paths:
        try:
            urls.append(thumbnail_url(read_image(Path(root) / relative).pixels))
        except ImageReadError:
            urls.append("")
    return urls


def show_filters(runs: Sequence[RunInfo], labels: dict[str, str]) -> None:
    """Each run's first-convolution kernels, one grid per input channel, side by side."""
    columns = st.columns(len(runs))
    for column, info in zip(columns, runs, strict=True):
        model = load_predictor(info.run_id).model
        convolution = first_convolution(model)
        grid = filter_grid(model)
        column.markdown(f"**{labels[info.run_id]}**")
        names = ["grey"] if grid.shape[0] == 1 else ["red", "green", "blue"][: grid.shape[0]]
        for channel, name in zip(grid, names, strict=False):
            column.image(
                filter_image(channel), caption=f"input channel: {name}", clamp=True,
                alt=f"First-layer filters of {labels[info.run_id]} on the {name} input channel",
            )  # fmt: skip
        height, width = convolution.kernel_size
        column.caption(
            f"{convolution.out_channels} kernels of {height} x {width}, stride "
            f"{convolution.stride[0]}; grey is 0, white positive, black negative, each kernel "
            "scaled on its own."
            + (
                " The grey slice is repeated into the three channels of an ImageNet model, so "
                "only the sum of a kernel's three planes acts on it."
                if grid.shape[0] == 3
                else ""
            )
        )


IMAGE_SOURCES = {"dataset": "a test image of the run's dataset", "upload": "an upload"}


def choose_image(info: RunInfo) -> tuple[str, np.ndarray] | None:
    """An image for the feature maps: one of the run's dataset's test images (by class and
    number) or an upload; None (with a word why) when there is none."""
    source = st.radio("Image", list(IMAGE_SOURCES), format_func=IMAGE_SOURCES.get,
                      horizontal=True, key="inside_image_source")  # fmt: skip
    if source == "upload":
        upload = st.file_uploader("An MRI slice", key="inside_image")
        if upload is None:
            st.caption("Upload a slice to see the most active channels of every stage.")
            return None
        try:
            return upload.name, read_slices(upload.getvalue(), name=upload.name)[0][1]
        except ImageReadError as error:
            st.error(f"{upload.name} cannot be read: {error.reason}")
            return None
    assert info.config is not None
    try:
        by_class = test_images_by_class(str(info.config.data.root))
    except DatasetError as error:
        st.warning(f"The run's dataset cannot be read ({error}); upload a slice instead.")
        return None
    if not by_class:
        st.warning("The run's dataset has no images; upload a slice instead.")
        return None
    left, right = st.columns(2)
    label = left.selectbox("Class", list(by_class), key="inside_image_class")
    paths = by_class[label]
    number = right.number_input(f"Image (1-{len(paths)})", 1, len(paths), 1,
                                key=f"inside_image_number_{label}")  # fmt: skip
    relative = paths[int(number) - 1]
    try:
        return relative, read_image(Path(info.config.data.root) / relative).pixels
    except ImageReadError as error:
        st.error(f"{relative} cannot be read: {error.reason}")
        return None


CLOSER_CHANNELS = 32  # channels shown for the one stage looked at more closely


def show_feature_maps(info: RunInfo, image: np.ndarray) -> None:
    """The image's most active channels at every stage, with size and receptive field; and
    more channels of one chosen stage (from the same forward pass)."""
    predictor = load_predictor(info.run_id)
    strips = st.container()  # drawn above the stage choice, filled once it is known
    fields = stage_fields(predictor)
    names = {stage.index: f"stage {stage.index} ({stage.name})" for stage in fields}
    chosen = st.selectbox(
        f"Look closer: the {CLOSER_CHANNELS} most active channels of", [None, *names],
        format_func=lambda index: "(choose a stage)" if index is None else names[index],
        key=f"inside_closer_{info.run_id}",
    )  # fmt: skip
    wider = {chosen: CLOSER_CHANNELS} if chosen is not None else None
    stages = feature_maps(predictor, image, wider=wider)
    for stage in stages:
        strips.image(
            stage.leading(CHANNELS_PER_STAGE).tiles, caption=stage.caption,
            alt=f"The most active feature maps of {stage.caption}",
        )  # fmt: skip
    if chosen is not None:
        stage = next(item for item in stages if item.info.index == chosen)
        st.image(
            wrap_tiles(stage.tiles, per_row=8), caption=stage.caption,
            alt=f"The {CLOSER_CHANNELS} most active feature maps of {stage.caption}",
        )  # fmt: skip


def probes_chart(results: dict[str, dict[str, Any]]) -> go.Figure:
    """Probe accuracy against relative depth (0 = input, 1 = last block), runs overlaid."""
    figure = go.Figure()
    chance = None
    for index, (label, result) in enumerate(results.items()):
        stages = pd.DataFrame(result["stages"])
        depth = stages["index"] / len(stages)
        colour = run_colour(index)
        hover = [f"stage {i} ({n})" for i, n in zip(stages["index"], stages["name"], strict=True)]
        for column, dash, kind in (
            ("knn_accuracy", "solid", "kNN"),
            ("linear_accuracy", "dot", "linear"),
        ):
            figure.add_trace(go.Scatter(
                x=depth, y=stages[column], mode="lines+markers", name=f"{label}: {kind}",
                line={"color": colour, "dash": dash}, hovertext=hover,
                marker={"symbol": run_symbol(index), "size": 8},
            ))  # fmt: skip
        chance = result["chance"]
    if chance is not None:
        figure.add_hline(y=chance, line_dash="dash", line_color=REFERENCE, annotation_text="chance")
    figure.update_layout(
        height=380, margin={"t": 30, "b": 10}, legend={"orientation": "h", "y": -0.25},
        xaxis_title="depth (stage / number of stages)", yaxis_title="validation accuracy",
        yaxis_tickformat=".0%",
    )  # fmt: skip
    return figure


def show_probes(runs: Sequence[RunInfo], labels: dict[str, str]) -> None:
    """The probe chart of the runs that have probes, and a button for the others."""
    results = {
        labels[i.run_id]: r for i in runs if (r := read_section(i.path, "probes", "val", None))
    }
    missing = [info for info in runs if labels[info.run_id] not in results]
    if results:
        st.plotly_chart(probes_chart(results), width="stretch", key="inside_probes_chart")
        st.caption(
            "How much class information each stage already carries: the accuracy on the "
            "validation images of a 10-nearest-neighbour vote (solid) and of a logistic "
            "regression (dotted) on that stage's averaged features, learned from a sample of "
            "the run's training images."
        )
    if (
        missing
        and not withheld("computing layer probes")
        and st.button(f"Compute layer probes for {len(missing)} run(s)", key="inside_probes")
    ):
        for info in missing:
            with progress_bar(f"Probing {labels[info.run_id]}:") as events:
                layer_probes(info.run_id, events=events)
        st.rerun()


def show_embedding(info: RunInfo, labels: dict[str, str]) -> None:
    """A split's penultimate features in 2-D, by true class, mistakes marked; a clicked point
    opens its image with the prediction and CAM."""
    left, right = st.columns(2)
    split = left.selectbox(
        "Images", EMBEDDING_SPLITS, format_func=SPLIT_LABELS.get, key="inside_split"
    )
    record = read_section(info.path, "embeddings", split, None)
    if record is None or not embedding_path(info.path, split).exists():
        if not withheld("computing the embedding") and st.button(
            "Compute the embedding", key="inside_embedding"
        ):
            with progress_bar("Embedding:") as events:
                embedding(info.run_id, split, events=events)
            st.rerun()
        return
    frame = pd.read_csv(embedding_path(info.path, split))
    methods = [m for m in record.get("methods", ["pca", "tsne"]) if f"{m}_x" in frame]
    method = right.radio("Projection", methods, format_func=PROJECTIONS.get, horizontal=True,
                         key="inside_projection")  # fmt: skip
    assert info.config is not None
    frame["shown"] = np.where(frame["correct"], "right", "wrong")
    frame["image"] = thumbnails(str(info.config.data.root), tuple(frame["path"]))
    picked = alt.selection_point(name=PICKED, fields=["path"], on="click")
    # The class by colour and shape (never colour alone); a misclassified image ringed.
    classes = sorted(frame["label"].astype(str).unique())
    colours, shapes = class_colours(classes), class_symbols(classes)
    colour_scale = alt.Scale(domain=classes, range=[colours[name] for name in classes])
    shape_scale = alt.Scale(domain=classes, range=[VEGA_SHAPES[shapes[name]] for name in classes])
    position = {"x": alt.X(f"{method}_x:Q", title=None), "y": alt.Y(f"{method}_y:Q", title=None)}
    points = (
        alt.Chart(frame)
        .mark_point(filled=True, size=45)
        .encode(
            **position,
            color=alt.Color("label:N", title="true class", scale=colour_scale),
            shape=alt.Shape("label:N", title="true class", scale=shape_scale),
            tooltip=["image", "path", "label", "predicted"],  # vega-tooltip draws "image"
        )
        .add_params(picked)
    )
    rings = (
        alt.Chart(frame[~frame["correct"]])
        .mark_point(filled=False, size=180, strokeWidth=1.2, color=REFERENCE)
        .encode(**position)
    )
    chart = alt.layer(rings, points).properties(height=480)
    event = st.altair_chart(chart, width="stretch", key="inside_embedding_chart",
                            on_select="rerun", selection_mode=PICKED)  # fmt: skip
    st.caption(
        f"{record['n']} {SPLIT_LABELS[split]} images, {labels[info.run_id]}'s last-stage features; "
        f"ringed: misclassified ({(~frame['correct']).sum()}). Hover over a point for its "
        "image; click it to open the image with its prediction and map."
    )
    points = event.selection.get(PICKED, []) if event else []
    if points:
        show_point(info, points[0]["path"])


def show_point(info: RunInfo, relative_path: str) -> None:
    """One image of the dataset with the run's prediction and CAM."""
    assert info.config is not None
    path = Path(info.config.data.root) / relative_path
    pixels = read_image(path).pixels
    predictor = load_predictor(info.run_id)
    prediction = predictor.predict(pixels, source=relative_path)
    top = max(prediction.probabilities, key=prediction.probabilities.get)
    method = preferred_method(info.path, DEFAULT_CAM_METHOD)
    cam = explain_slice(predictor, pixels, method=method, target_class=predictor.classes.index(top))
    left, right = st.columns(2)
    left.image(pixels, caption=relative_path, clamp=True, alt=f"The image {relative_path}")
    method_name = METHOD_CAPTIONS[method].split(":")[0]
    right.image(
        overlay(pixels, cam.cam),
        caption=f"predicted {top} ({prediction.probabilities[top]:.1%}); {method_name}",
        alt=f"{relative_path} with a heat map of the regions that drove the score for {top}",
    )


def sanity_table(result: dict[str, Any]) -> pd.DataFrame:
    """One row per CAM method: the three measurements, in words and numbers."""
    rows = []
    for method, scores in result["results"].items():
        steps = scores["randomisation"]
        passes = scores["passes_randomisation"]
        rows.append({
            "method": method,
            "randomisation test": "passes" if passes else "fails: survives random weights",
            "rank correlation, all random": steps[-1]["spearman"],
            "ROAD": scores["road"],
            "ROAD of a random map": result["random_road"],
            "map inside the head": scores["inside_head"],
        })  # fmt: skip
    return pd.DataFrame(rows)


def show_sanity(info: RunInfo) -> None:
    """The stored sanity table, or a button to measure it (minutes on a CPU)."""
    result = stored_sanity(info.path)
    if result is not None:
        st.dataframe(sanity_table(result), hide_index=True, width="stretch")
        st.caption(
            f"On {result['images']} duplicate-free test images. Randomisation test: the "
            "model's stages are made random from the top down; a method passes when its maps "
            f"then correlate at most {result['randomisation_limit']} with the trained ones "
            "(half the blocks random). ROAD: how much more the predicted class's probability "
            "falls when the map's most relevant pixels are removed than its least relevant "
            "(higher is better; compare the random map's)."
        )
    elif not withheld("running the sanity checks") and st.button(
        "Run the sanity checks (a few minutes)", key="inside_sanity"
    ):
        with progress_bar("Sanity checks:") as events:
            sanity_checks(info.run_id, images=8, events=events)
        st.rerun()
