"""Classify's volumes: a NIfTI file or a zip of a DICOM series, browsed slice by slice along the
chosen plane, every slice classified into a probability strip and a table of the most
tumour-like slices. The slice on the slider joins the page's images, so it gets the page's
prediction, warnings and CAM like any uploaded image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.figures.palette import REFERENCE, class_colours, class_dashes
from core.imaging.pixels import ImageReadError
from core.imaging.volumes.dicom_series import SeriesSummary, SeveralSeriesError
from core.imaging.volumes.sources import read_volume, volume_kind
from core.imaging.volumes.volume import STORED, WINDOW_PERCENTILES, Volume, volume_slice_label
from core.inference.predictor import Predictor

NO_TUMOUR_CLASS = "notumor"
TUMOUR_SCORE = "tumour score (1 - p(notumor))"
TUMOUR_LIKE_SHOWN = 10  # rows of the most tumour-like slices table
OPEN_BUTTONS = 5  # of those, the first few get a button that shows the slice
BATCH_SIZE = 32  # slices per forward pass when classifying every slice
STRIPS_KEPT = 8  # per session: (slices x classes) floats each, small
SERIES_KEPT = 2  # per session: a series read from a zip is up to 40 MB of voxels
IMAGE_SELECTOR = "classify_image"  # the page's image selectbox


@dataclass(frozen=True)
class VolumeUpload:
    """An uploaded volume: read already (a NIfTI, a zip of one series), or a zip of several
    series whose bytes are kept until one is chosen."""

    name: str
    digest: str
    volume: Volume | None
    series: tuple[SeriesSummary, ...] = ()
    data: bytes = b""


def is_volume_upload(data: bytes) -> bool:
    """A NIfTI (or any gzip) or a zip, by content: read as a volume, not as an image."""
    return volume_kind(data) is not None


def open_volume_upload(name: str, data: bytes, digest: str) -> VolumeUpload:
    """Read an uploaded volume, or list its series when there are several (ImageReadError)."""
    try:
        return VolumeUpload(name, digest, read_volume(data, name=name))
    except SeveralSeriesError as several:
        return VolumeUpload(name, digest, None, several.series, data)


def show_volume(predictor: Predictor, upload: VolumeUpload) -> tuple[str, np.ndarray] | None:
    """Draw one volume's browser; return the slider's slice (its label and pixels), or None
    when no series could be read."""
    key = f"classify_volume_{upload.name}"
    st.subheader(upload.name)
    volume = upload.volume
    if volume is None:
        uid = st.selectbox(
            f"This zip holds {len(upload.series)} DICOM series: which one?",
            [summary.uid for summary in upload.series],
            format_func={summary.uid: summary.describe() for summary in upload.series}.get,
            key=f"{key}_series",
        )
        volume = _chosen_series(upload, uid)
        if isinstance(volume, str):
            st.error(f"This series cannot be read: {volume}")
            return None
    st.caption(_facts(volume))
    for note in volume.notes:
        st.info(note[:1].upper() + note[1:] + ".", icon=":material/info:")
    plane = st.radio(
        "Axis", volume.planes, horizontal=True, key=f"{key}_plane",
        format_func=lambda name: "as stored" if name == STORED else name,
    )  # fmt: skip
    if plane != STORED:
        st.caption(
            f"{plane.capitalize()} slices cut across array axis {volume.array_axis(plane)} of "
            "the file (from its orientation), shown with the patient's right on the left."
        )
    count = volume.slice_count(plane)
    slider_key = f"{key}_{plane}_slice"
    number = 1
    if count > 1:
        number = st.slider(
            f"Slice (1 to {count}{', feet to head' if plane == 'axial' else ''})",
            1, count, (count + 1) // 2, key=slider_key,
            on_change=_show_in_detail, args=(upload.name,),
        )  # fmt: skip
    everything = f"{key}_{upload.digest[:12]}_every"  # a new file of that name starts afresh
    if not st.session_state.get(everything):
        st.button(
            f"Classify every slice ({count})", key=f"{key}_classify_all",
            on_click=_remember, args=(everything,),
        )  # fmt: skip
    else:
        probabilities = classify_every_slice(predictor, volume, plane, upload.digest)
        figure = slice_probability_chart(probabilities, predictor.classes, number, plane)
        st.plotly_chart(figure, width="stretch", key=f"{key}_strip")
        _show_tumour_like(probabilities, predictor.classes, upload.name, slider_key)
    index = number - 1
    return volume_slice_label(upload.name, plane, index, count), volume.slice_pixels(plane, index)


def classify_every_slice(
    predictor: Predictor, volume: Volume, plane: str, digest: str
) -> np.ndarray:
    """(slices, classes) probabilities of every slice along `plane`, once per run, volume and
    plane in this session (batched: one forward pass per BATCH_SIZE slices)."""
    cache: dict[tuple, np.ndarray] = st.session_state.setdefault("_classify_volume_strips", {})
    key = (predictor.run_id, digest, volume.series_uid, plane)
    if key not in cache:
        count = volume.slice_count(plane)
        progress = st.progress(0.0, text=f"Classifying {count} {plane} slices...")
        rows = []
        for start in range(0, count, BATCH_SIZE):
            batch = [
                volume.slice_pixels(plane, i) for i in range(start, min(start + BATCH_SIZE, count))
            ]
            rows.append(predictor.probabilities(batch))
            progress.progress(min(1.0, (start + len(batch)) / count))
        progress.empty()
        while len(cache) >= STRIPS_KEPT:
            del cache[next(iter(cache))]
        cache[key] = np.concatenate(rows)
    return cache[key]


def slice_probability_chart(
    probabilities: np.ndarray, classes: Sequence[str], current: int, plane: str
) -> go.Figure:
    """Each class's probability along the slices (1-based on x), a colour and a dash per class,
    the slice on the slider marked."""
    colours, dashes = class_colours(classes), class_dashes(classes)
    numbers = np.arange(1, len(probabilities) + 1)
    figure = go.Figure()
    for column, name in enumerate(classes):
        figure.add_trace(
            go.Scatter(
                x=numbers, y=probabilities[:, column], name=name,
                mode="lines" if len(numbers) > 1 else "markers",
                line={"color": colours[name], "dash": dashes[name], "width": 2},
                hovertemplate=f"{name}: %{{y:.1%}} at slice %{{x}}<extra></extra>",
            )
        )  # fmt: skip
    figure.add_vline(x=current, line={"color": REFERENCE, "dash": "dot", "width": 1})
    figure.update_layout(
        height=300,
        margin={"t": 30, "b": 10},
        title={"text": f"Probability of each class along the {plane} slices", "font_size": 14},
        xaxis={"title": f"{plane} slice"},
        yaxis={"title": "probability", "tickformat": ".0%", "range": [0, 1]},
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def most_tumour_like(
    probabilities: np.ndarray, classes: Sequence[str], count: int = TUMOUR_LIKE_SHOWN
) -> pd.DataFrame | None:
    """The `count` slices with the highest 1 - p(notumor), highest first; None when the run
    has no 'notumor' class to score against."""
    if NO_TUMOUR_CLASS not in classes:
        return None
    classes = list(classes)
    score = 1.0 - probabilities[:, classes.index(NO_TUMOUR_CLASS)]
    order = np.argsort(-score, kind="stable")[:count]
    return pd.DataFrame(
        [
            {
                "slice": int(index) + 1,
                TUMOUR_SCORE: float(score[index]),
                "predicted": classes[int(probabilities[index].argmax())],
                **{name: float(probabilities[index, j]) for j, name in enumerate(classes)},
            }
            for index in order
        ]
    )


def _show_tumour_like(
    probabilities: np.ndarray, classes: Sequence[str], name: str, slider_key: str
) -> None:
    table = most_tumour_like(probabilities, classes)
    if table is None:
        st.caption(f"This run has no '{NO_TUMOUR_CLASS}' class, so no slice is ranked.")
        return
    st.markdown("**The most tumour-like slices** (highest 1 - p(notumor))")
    percent = st.column_config.NumberColumn(format="percent")
    st.dataframe(
        table, hide_index=True, width="stretch",
        column_config={column: percent for column in [TUMOUR_SCORE, *classes]},
    )  # fmt: skip
    buttons = st.columns(OPEN_BUTTONS)
    for column, number in zip(buttons, table["slice"][:OPEN_BUTTONS], strict=False):
        column.button(
            f"Show slice {number}", key=f"{slider_key}_open_{number}",
            on_click=_open_slice, args=(slider_key, int(number), name),
        )  # fmt: skip


def _remember(flag: str) -> None:
    st.session_state[flag] = True  # every slice stays classified, on any plane, from now on


def _open_slice(slider_key: str, number: int, name: str) -> None:
    st.session_state[slider_key] = number
    _show_in_detail(name)


def _show_in_detail(name: str) -> None:
    st.session_state[IMAGE_SELECTOR] = name  # the page's prediction and CAM follow the slider


def _chosen_series(upload: VolumeUpload, uid: str) -> Volume | str:
    """The chosen series of a zip, read once per session (or why it cannot be read)."""
    cache: dict[tuple[str, str], Volume | str] = st.session_state.setdefault(
        "_classify_volume_series", {}
    )
    key = (upload.digest, uid)
    if key not in cache:
        while len(cache) >= SERIES_KEPT:  # the oldest goes first
            del cache[next(iter(cache))]
        try:
            cache[key] = read_volume(upload.data, name=upload.name, series=uid)
        except ImageReadError as error:
            cache[key] = error.reason
    return cache[key]


def _facts(volume: Volume) -> str:
    low, high = volume.window
    described = f" ({volume.description})" if volume.description else ""
    percentiles = " and ".join(f"{p:g}th" for p in WINDOW_PERCENTILES)
    return (
        f"{volume.describe()}{described}. Intensities windowed once for the whole volume "
        f"({low:.4g} to {high:.4g}, its {percentiles} percentiles), so slices compare."
    )
