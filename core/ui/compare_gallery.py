"""The Compare page's galleries: one run's mistakes, and the images run A gets and B misses,
each with where the model looked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core.evaluation import comparison
from core.evaluation.comparison import PAIRED_SPLITS, paired_tests, paired_verdict
from core.evaluation.evaluate import SPLIT_LABELS
from core.evaluation.run_selection import class_names, dataset_root, evaluated_ids, pair_defaults
from core.imaging.reader import read_image
from core.inference.explain import overlay
from core.runs.layout import WEIGHTS
from core.runs.registry import RunInfo
from core.ui.classify import load_predictor
from core.ui.images import displayable

GALLERY_LIMIT = 12

GALLERY_COLUMNS = 4


@dataclass(frozen=True)
class GalleryItem:
    """One image of a gallery: its caption and pixels (None when it cannot be read)."""

    caption: str
    pixels: np.ndarray | None


def _weights_stamp(info: RunInfo) -> int:
    try:
        return (info.path / WEIGHTS).stat().st_mtime_ns if info.has_weights else 0
    except (AttributeError, OSError):
        return 0


@st.cache_data(show_spinner=False, max_entries=512)
def _gallery_pixels(
    run_id: str, weights_stamp: int, image_path: str, target_class: int | None
) -> np.ndarray:
    """The image, or its CAM overlay for `target_class` (cached per run weights and image)."""
    pixels = read_image(image_path).pixels
    if target_class is None:
        return pixels
    explanation = load_predictor(run_id).explain(pixels, target_class=target_class)
    return overlay(pixels, explanation.cam)


def gallery_items(
    info: RunInfo, rows: pd.DataFrame, caption: Callable[[Any], str], *, with_cam: bool
) -> list[GalleryItem]:
    """Up to GALLERY_LIMIT images of `rows` (path, predicted...), with the run's CAM if asked."""
    root = dataset_root(info)
    stamp = _weights_stamp(info)
    items = []
    for row in rows.head(GALLERY_LIMIT).itertuples(index=False):
        text, path = caption(row), str(root / row.path)
        target = int(row.predicted) if with_cam and info.has_weights else None
        try:
            pixels = _gallery_pixels(info.run_id, stamp, path, target)
        # RunError (a ValueError) for weights that do not load, RuntimeError from the model,
        # ImageReadError (a ValueError) and OSError for an image that changed on disk.
        except (ValueError, OSError, RuntimeError, KeyError):
            try:  # still show the image itself
                pixels = _gallery_pixels(info.run_id, stamp, path, None)
                text += " (no map: the model could not explain it)" if target is not None else ""
            except (ValueError, OSError):
                pixels = None
        items.append(GalleryItem(text, pixels))
    return items


@st.dialog("Image", width="large")
def show_enlarged(item: GalleryItem) -> None:
    """One gallery image at full width, with its caption."""
    if item.pixels is not None:
        st.image(displayable(item.pixels), caption=item.caption, width="stretch", alt=item.caption)


def show_gallery(items: Sequence[GalleryItem], key: str) -> None:
    """The images in a grid, with their captions and a button to enlarge each (`key` makes
    the buttons of two galleries on one page distinct)."""
    for start in range(0, len(items), GALLERY_COLUMNS):
        columns = st.columns(GALLERY_COLUMNS)
        row = items[start : start + GALLERY_COLUMNS]
        for offset, (column, item) in enumerate(zip(columns, row, strict=False)):
            if item.pixels is None:
                column.caption(f"{item.caption} (image unreadable)")
                continue
            column.image(
                displayable(item.pixels), caption=item.caption, width="stretch", alt=item.caption
            )
            enlarge = column.button(
                "Enlarge", key=f"{key}_enlarge_{start + offset}", icon=":material/zoom_in:"
            )
            if enlarge:
                show_enlarged(item)


def _class_name(classes: Sequence[str], index: Any) -> str:
    try:
        return classes[int(index)]
    except (IndexError, TypeError, ValueError):
        return str(index)


def _show_images_of(
    info: RunInfo, rows: pd.DataFrame, caption: Any, *, with_cam: bool, key: str
) -> None:
    """A gallery of `rows` (path, label, predicted) from the run's dataset, else the table."""
    if dataset_root(info) is None:
        st.info("The run's dataset is not on this machine, so its images cannot be shown.")
        st.dataframe(rows.head(GALLERY_LIMIT), hide_index=True, width="stretch")
        return
    show_gallery(gallery_items(info, rows, caption, with_cam=with_cam), key)


def show_misclassified(info: RunInfo, split: str, *, with_cam: bool) -> None:
    """The run's most confident mistakes on `split`, each with where it looked."""
    try:
        wrong = comparison.misclassified(info, split)
    except (KeyError, ValueError):  # a predictions.csv with missing or odd columns
        st.warning("This run's per-image predictions are unreadable: evaluate it again.")
        return
    if wrong.empty:
        st.success(f"No misclassified image on the {SPLIT_LABELS[split]} split.")
        return
    st.caption(
        f"{len(wrong)} misclassified image(s) on the {SPLIT_LABELS[split]} split; the "
        f"{min(len(wrong), GALLERY_LIMIT)} most confident mistakes"
        + (", with the map of where the model looked for the class it chose." if with_cam else ".")
    )
    classes = class_names(info)

    def caption(row: Any) -> str:
        return (
            f"true {_class_name(classes, row.label)} → {_class_name(classes, row.predicted)} "
            f"({row.confidence:.0%})"
        )

    _show_images_of(info, wrong, caption, with_cam=with_cam, key="compare_mistakes")


def show_disagreements(
    a: RunInfo, b: RunInfo, split: str, labels: dict[str, str], *, with_cam: bool
) -> None:
    """Images of `split` that A gets right and B gets wrong, with B's CAM."""
    try:
        rows = comparison.disagreements(a, b, split)
    except (KeyError, ValueError):
        st.warning("Per-image predictions are unreadable: evaluate both runs again.")
        return
    label_a, label_b = labels[a.run_id], labels[b.run_id]
    if rows.empty:
        st.success(f"On the {SPLIT_LABELS[split]} split {label_b} gets every image {label_a} gets.")
        return
    st.caption(
        f"{len(rows)} image(s) of the {SPLIT_LABELS[split]} split that {label_a} gets right and "
        f"{label_b} gets wrong" + (f"; maps show where {label_b} looked." if with_cam else ".")
    )
    classes = class_names(b)

    def caption(row: Any) -> str:
        return (
            f"true {_class_name(classes, row.label)}; B said {_class_name(classes, row.predicted)}"
        )

    renamed = rows.rename(columns={"predicted_b": "predicted"})
    _show_images_of(b, renamed, caption, with_cam=with_cam, key="compare_disagreements")


def show_pair(
    a: RunInfo, b: RunInfo, labels: dict[str, str], split: str, *, with_cam: bool
) -> None:
    """McNemar's test of A against B on both test splits, and the images A gets and B misses."""
    if a.run_id == b.run_id:
        st.info("Pick two different runs.")
        return
    tests, problem = paired_tests(a, b)
    if problem:
        st.warning(problem)
    else:
        st.markdown("**McNemar's test** on the images both runs were evaluated on")
        st.dataframe(tests, hide_index=True, width="stretch")
        st.caption(paired_verdict(tests, labels[a.run_id], labels[b.run_id]))
    show_disagreements(a, b, split, labels, with_cam=with_cam)


def show_mistakes(
    infos: Sequence[RunInfo], selected: Sequence[RunInfo], labels: dict[str, str]
) -> None:
    """One run's most confident mistakes, and the images run A gets right and run B wrong."""
    by_id = {info.run_id: info for info in infos}
    evaluated_choices = evaluated_ids(infos)
    if not evaluated_choices:
        st.info("Evaluate a run to see the test images it gets wrong.")
        return
    with_cam = st.toggle(
        "Overlay where the model looked (CAM of the class it chose)", value=True, key="compare_cam"
    )
    gallery_split = st.segmented_control(
        "Test split",
        PAIRED_SPLITS,
        default="test",
        format_func=SPLIT_LABELS.get,
        key="compare_gallery_split",
    )
    one_tab, pair_tab = st.tabs(["One run's mistakes", "A right, B wrong"])
    with one_tab:
        gallery_run = st.selectbox(
            "Run",
            evaluated_choices,
            format_func=lambda run_id: labels[run_id],
            key="compare_gallery",
        )
        show_misclassified(by_id[gallery_run], gallery_split or "test", with_cam=with_cam)
    with pair_tab:
        if len(evaluated_choices) < 2:
            st.info("Evaluate a second run to compare two runs image by image.")
            return
        index_a, index_b = pair_defaults([info.run_id for info in selected], evaluated_choices)
        left, right = st.columns(2)
        run_a = left.selectbox(
            "Run A", evaluated_choices, index=index_a, format_func=labels.get, key="compare_a"
        )
        run_b = right.selectbox(
            "Run B", evaluated_choices, index=index_b, format_func=labels.get, key="compare_b"
        )
        show_pair(by_id[run_a], by_id[run_b], labels, gallery_split or "test", with_cam=with_cam)
