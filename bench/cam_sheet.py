"""Contact sheets for checking by eye whether CAM overlays sit on the tumour.

    python -m bench.cam_sheet RUN [RUN...] [--views layercam gradcam@features] [--per-class 4]
        [--seed 1] [--out DIR]

Rows: `--per-class` random real Testing images of each tumour class (seeded). Columns: the
image, then per run one overlay per view. A view is METHOD or METHOD@LAYER (a dotted module
path; without it, the registry's CAM layer). The predicted class is written on each overlay.
The sheets are for a person to look at; docs/explanations.md records what was seen.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import cv2
import numpy as np

from core import paths
from core.imaging.model_input import prepare_images
from core.imaging.reader import read_image
from core.inference.explain import DEFAULT_CAM_METHOD, activation_map, overlay, resize_map
from core.inference.predictor import Predictor
from core.models.build import cam_layer

TUMOUR_CLASSES = ("glioma", "meningioma", "pituitary")
TILE = 256
ROWS_PER_SHEET = 6


def sample_files(per_class: int, seed: int) -> list[Path]:
    """`per_class` seeded random Testing images of every tumour class."""
    testing = paths.real_dataset_dir() / "Testing"
    if not testing.is_dir():
        raise SystemExit(f"error: no real dataset at {testing.parent} (set BTW_REAL_DATA_DIR)")
    chooser = random.Random(seed)
    files: list[Path] = []
    for label in TUMOUR_CLASSES:
        files += chooser.sample(sorted((testing / label).glob("*.jpg")), per_class)
    return files


def view_tile(predictor: Predictor, pixels: np.ndarray, view: str) -> np.ndarray:
    """One overlay of the predicted class, labelled with that class."""
    method, _, layer_path = view.partition("@")
    layer = (
        predictor.model.get_submodule(layer_path)
        if layer_path
        else cam_layer(predictor.model, predictor.spec)
    )
    predicted = int(predictor.probabilities([pixels])[0].argmax())
    x = prepare_images([pixels], predictor.preprocessing)
    cam = activation_map(predictor.model, layer, x, method=method, target_class=predicted)
    tile = cv2.resize(overlay(pixels, resize_map(cam, *pixels.shape[:2])), (TILE, TILE))
    label = predictor.classes[predicted][:4]
    cv2.putText(tile, label, (4, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
    return tile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", metavar="RUN")
    parser.add_argument("--views", nargs="+", default=[DEFAULT_CAM_METHOD])
    parser.add_argument("--per-class", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("cam-sheets"))
    arguments = parser.parse_args()
    predictors = [Predictor.from_run(run) for run in arguments.runs]
    rows = []
    for file in sample_files(arguments.per_class, arguments.seed):
        pixels = read_image(file).pixels
        gray = pixels if pixels.ndim == 2 else cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
        tiles = [cv2.resize(cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB), (TILE, TILE))]
        tiles += [view_tile(p, pixels, view) for p in predictors for view in arguments.views]
        rows.append(np.hstack(tiles))
        print(f"row {len(rows)}: {file.parent.name}/{file.name}")
    arguments.out.mkdir(parents=True, exist_ok=True)
    for start in range(0, len(rows), ROWS_PER_SHEET):
        sheet = np.vstack(rows[start : start + ROWS_PER_SHEET])
        out = arguments.out / f"sheet_{start // ROWS_PER_SHEET + 1}.png"
        cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
        print(f"wrote {out}")
    columns = ", ".join(f"{p.run_id}:{view}" for p in predictors for view in arguments.views)
    print(f"summary: columns = image, {columns}")


if __name__ == "__main__":
    main()
