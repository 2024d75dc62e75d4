"""A few class activation maps per run for a report: one official-test image of each class,
explained with the run's preferred CAM method, as PNG data URLs (a report needs no files)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import cv2
import numpy as np
import pandas as pd

from core.evaluation.evaluate import load_predictions
from core.evaluation.run_selection import class_names, dataset_root
from core.imaging.reader import read_image
from core.inference.explain import DEFAULT_CAM_METHOD, overlay
from core.inference.predictor import Predictor
from core.inspection.store import preferred_method
from core.runs.registry import RunInfo

CAM_SIZE = 224  # pixels of the longer side: enough to see where, a few tens of KB each


@dataclass(frozen=True)
class CamSample:
    """One explained image: what it is and what the run said, and the overlay as a data URL."""

    caption: str
    data_url: str


@dataclass(frozen=True)
class RunCams:
    """A run's CAMs, or why there are none or fewer (`note`)."""

    method: str | None
    samples: tuple[CamSample, ...] = ()
    note: str | None = None


def png_data_url(rgb: np.ndarray, size: int = CAM_SIZE) -> str:
    """An RGB uint8 image, shrunk to `size` on its longer side, as a PNG data URL."""
    height, width = rgb.shape[:2]
    scale = min(1.0, size / max(height, width))
    if scale < 1:
        shape = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, shape, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(rgb[..., ::-1]))  # OpenCV: BGR
    if not ok:
        raise ValueError("cannot encode a CAM overlay as PNG")
    return "data:image/png;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def sample_images(predictions: pd.DataFrame, classes: list[str]) -> pd.DataFrame:
    """The first official-test image of each class (by path: the same images every time, not
    the model's best or worst), with the run's prediction."""
    test = predictions[predictions["in_test"].astype(bool)].sort_values("path")
    firsts = test.groupby("label", sort=True).head(1)
    known = firsts["label"].between(0, len(classes) - 1)
    return firsts[known & firsts["predicted"].between(0, len(classes) - 1)]


def run_cams(info: RunInfo) -> RunCams:
    """One CAM per class of the run's official test, or a note saying why there is none."""
    if not info.has_weights:
        return RunCams(None, note="no weights (model.safetensors is missing): no maps")
    predictions = load_predictions(info)
    if predictions is None:
        return RunCams(None, note="not evaluated: no test images to explain yet")
    root = dataset_root(info)
    if root is None:
        return RunCams(None, note="the run's dataset is not on this machine: no images")
    method = preferred_method(info.path, DEFAULT_CAM_METHOD)
    try:
        predictor = Predictor.from_run(info.path)
    except (ValueError, OSError, RuntimeError) as error:  # RunError is a ValueError
        return RunCams(method, note=f"the model could not be loaded: {error}")
    classes = class_names(info)
    samples, failed = [], 0
    for row in sample_images(predictions, classes).to_dict("records"):
        target = int(row["predicted"])
        predicted = classes[target]
        try:
            pixels = read_image(root / row["path"]).pixels
            explanation = predictor.explain(pixels, method=method, target_class=target)
            data_url = png_data_url(overlay(pixels, explanation.cam))
        # ImageReadError is a ValueError; an image that changed on disk is an OSError.
        except (ValueError, OSError, RuntimeError):
            failed += 1
            continue
        confidence = row.get(f"p_{predicted}")
        said = f"{predicted} ({confidence:.0%})" if confidence is not None else predicted
        caption = f"true {classes[int(row['label'])]}, predicted {said}"
        samples.append(CamSample(caption, data_url))
    note = f"{failed} image(s) could not be read or explained" if failed else None
    return RunCams(method, tuple(samples), note)
