"""Runs that can classify, and their predictors cached once per server process."""

from __future__ import annotations

import hashlib
from collections.abc import Container, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import streamlit as st

from core.data.discovery import DatasetError
from core.imaging.pixels import ImageReadError
from core.imaging.reader import read_image, read_slices
from core.inference.explain import Explanation
from core.inference.predictor import Prediction, Predictor
from core.inspection.store import stored_sanity
from core.runs.registry import list_runs
from core.ui.classify_volume import VolumeUpload, is_volume_upload, open_volume_upload
from core.ui.datasets import test_images_by_class
from core.ui.images import displayable
from core.ui.memo import shared_memo


class Upload(Protocol):
    """What the page needs of Streamlit's UploadedFile."""

    name: str

    def getvalue(self) -> bytes: ...


@dataclass(frozen=True)
class RunChoice:
    """A completed run with weights, as the Classify page lists it."""

    run_id: str
    label: str
    val_accuracy: float | None


def usable_runs() -> list[RunChoice]:
    """Completed, undamaged runs with weights, newest first."""
    choices = []
    for info in list_runs():
        if not info.usable:
            continue
        accuracy, model = info.val_accuracy, info.model_name or "?"
        shown = f"{accuracy:.1%} val" if accuracy is not None else "no val metric"
        choices.append(RunChoice(info.run_id, f"{info.display_name} · {model} · {shown}", accuracy))
    return choices


def best_run_index(choices: list[RunChoice], wanted: str | None = None) -> int:
    """Position of the run `wanted` (a link's run id) when it is listed, else of the run with
    the best validation accuracy (the default choice)."""
    for index, choice in enumerate(choices):
        if choice.run_id == wanted:
            return index
    scores = [
        choice.val_accuracy if choice.val_accuracy is not None else -1.0 for choice in choices
    ]
    return scores.index(max(scores))


def method_sanity_note(run_dir: Path | None, method: str) -> tuple[str, bool] | None:
    """What the run's stored sanity checks say of `method`, in one line, and whether the method
    passed them (the randomisation test, and most of its map inside the head); None: not
    measured (`python -m core sanity RUN` or the Inside page measures it). Reads one small
    file: the page calls it on every rerun (the opacity slider)."""
    result = stored_sanity(run_dir)
    scores = (result or {}).get("results", {}).get(method)
    if result is None or scores is None:
        return None
    test = (
        "passes the randomisation test"
        if scores["passes_randomisation"]
        else "FAILS the randomisation test: its map barely changes when the weights are random, "
        "so it shows the image more than the model"
    )
    inside = f"{scores['inside_head']:.0%} of the map inside the head"
    text = (
        f"Checked on {result['images']} test images: {test}; ROAD {scores['road']:+.3f} "
        f"against {result['random_road']:+.3f} for a random map; {inside}."
    )
    return text, bool(scores["passes_randomisation"] and scores["mostly_inside_head"])


def load_predictor(run_id: str) -> Predictor:
    """The run's predictor, built once per server process (thread-safe, shared by sessions)."""
    return shared_memo().get(("predictor", run_id), lambda: Predictor.from_run(run_id))


def decode_uploads(
    uploads: Sequence[Upload],
) -> tuple[dict[str, np.ndarray], list[dict[str, str]], list[tuple[str, str]], list[VolumeUpload]]:
    """Slices to classify (name -> pixels; every frame of a multi-frame file), unreadable
    files, uploads that repeat an earlier one byte for byte (name, the earlier name): those
    are classified once, and volumes (a NIfTI, a zip of DICOM files: by content).

    Decoded once per upload and session: widget changes (opacity, method) rerun the page, and
    re-decoding a stack of DICOMs on each of them made the sliders lag.
    """
    cache: dict[tuple[str, str], Any] = st.session_state.setdefault("_classify_decoded", {})
    slices: dict[str, np.ndarray] = {}
    problems: list[dict[str, str]] = []
    copies: list[tuple[str, str]] = []
    volumes: list[VolumeUpload] = []
    first_of: dict[str, str] = {}  # content digest -> the first upload's name
    taken: set[str] = set()  # names listed so far, images and volumes alike
    live = set()
    for upload in uploads:
        data = upload.getvalue()
        digest = hashlib.sha1(data).hexdigest()
        if digest in first_of:
            copies.append((upload.name, first_of[digest]))
            continue
        first_of[digest] = upload.name
        key = (upload.name, digest)
        live.add(key)
        if key not in cache:
            try:
                if is_volume_upload(data):
                    cache[key] = open_volume_upload(upload.name, data, digest)
                else:
                    cache[key] = read_slices(data, name=upload.name)
            except ImageReadError as error:
                cache[key] = error.reason
        decoded = cache[key]
        if isinstance(decoded, str):
            problems.append({"file": upload.name, "problem": decoded})
        elif isinstance(decoded, VolumeUpload):
            volumes.append(replace(decoded, name=_unique(decoded.name, taken)))
            taken.add(volumes[-1].name)
        else:
            for name, pixels in decoded:
                listed = _unique(name, taken)
                slices[listed] = pixels
                taken.add(listed)
    for stale in set(cache) - live:  # removed uploads: free their pixels
        del cache[stale]
    return slices, problems, copies, volumes


SAMPLES_PER_CLASS = 2


def sample_choices(root: Path) -> dict[str, str]:
    """A few test images of the dataset to try with one click: label ('glioma 1') -> relative
    path, spread evenly over each class's test images; empty when the folder is no dataset."""
    try:
        by_class = test_images_by_class(str(root))
    except (DatasetError, OSError):
        return {}
    samples = {}
    for label, paths in by_class.items():
        count = min(SAMPLES_PER_CLASS, len(paths))
        for number in range(count):
            samples[f"{label} {number + 1}"] = paths[(2 * number + 1) * len(paths) // (2 * count)]
    return samples


def sample_name(label: str, relative: str) -> str:
    """How a sample is listed: its true class first ('sample glioma 1 · Te-gl_0010.jpg')."""
    return f"sample {label} · {Path(relative).name}"


def decode_samples(
    root: Path, chosen: Sequence[str], samples: dict[str, str]
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The chosen samples' pixels by listed name, and each one's true class (its folder)."""
    slices, truth = {}, {}
    for label in chosen:
        relative = samples[label]
        try:
            pixels = read_image(root / relative).pixels
        except ImageReadError:
            continue  # the sample changed on disk since it was listed: leave it out
        name = sample_name(label, relative)
        slices[name], truth[name] = pixels, label.rsplit(" ", 1)[0]
    return slices, truth


def format_probability(probability: float) -> str:
    """'97.3%', '0.4%', '<0.1%': never 1e-11."""
    return f"{probability:.1%}" if probability >= 0.001 else "<0.1%"


def predict_slices(predictor: Predictor, slices: dict[str, np.ndarray]) -> dict[str, Prediction]:
    """The prediction of every slice, computed once per run and slice in this session."""
    cache: dict[tuple[str, str, str], Prediction] = st.session_state.setdefault(
        "_classify_predictions", {}
    )
    if len(cache) > 4096:  # a long session of many uploads: start afresh rather than grow
        cache.clear()
    predictions = {}
    for name, pixels in slices.items():
        key = (predictor.run_id, name, hashlib.sha1(pixels.tobytes()).hexdigest())
        if key not in cache:
            cache[key] = predictor.predict(pixels, source=name)
        predictions[name] = cache[key]
    return predictions


EXPLANATIONS_KEPT = 32  # CAMs kept per session: float32 maps the image's size, so a few MB each


def explain_slice(
    predictor: Predictor, pixels: np.ndarray, *, method: str, target_class: int
) -> Explanation:
    """The slice's CAM, computed once per run, pixels, method and class in this session.

    Moving the opacity slider reruns the page; without this it reran the forward and backward
    pass each time. The oldest maps go first once more than EXPLANATIONS_KEPT are held.
    """
    cache: dict[tuple[str, str, str, int], Explanation] = st.session_state.setdefault(
        "_classify_explanations", {}
    )
    key = (predictor.run_id, hashlib.sha1(pixels.tobytes()).hexdigest(), method, target_class)
    if key not in cache:
        while len(cache) >= EXPLANATIONS_KEPT:
            del cache[next(iter(cache))]
        cache[key] = predictor.explain(pixels, method=method, target_class=target_class)
    return cache[key]


def _unique(name: str, taken: Container[str]) -> str:
    """Two uploads with the same file name both stay listed."""
    candidate, copy = name, 2
    while candidate in taken:
        candidate, copy = f"{name} ({copy})", copy + 1
    return candidate


def show_upload_gallery(
    images: dict[str, np.ndarray],
    predictions: dict[str, Prediction],
    columns: int = 6,
    labels: dict[str, str] | None = None,
) -> None:
    """Thumbnails with their predicted class; 'Open' shows that image in full below. `labels`:
    how an image is named when not by its key (a volume's slice: 'scan.nii.gz [axial 3/9]')."""
    names = list(images)
    labels = labels or {}
    for start in range(0, len(names), columns):
        row = st.columns(columns)
        for column, name in zip(row, names[start : start + columns], strict=False):
            prediction = predictions[name]
            shown = labels.get(name, name)
            column.image(
                displayable(images[name]), caption=shown, width="stretch",
                alt=f"Thumbnail of {shown}, classified as {prediction.predicted}",
            )  # fmt: skip
            column.caption(f"{prediction.predicted} ({prediction.confidence:.0%})")
            column.button("Open", key=f"classify_open_{name}", on_click=_open_image, args=(name,))


def _open_image(name: str) -> None:
    st.session_state["classify_image"] = name  # the page's image selector
