"""CLI command `predict` (registered by core.cli)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

EXIT_SOME_FILES_FAILED = 2


def expand_folders(names: list[str]) -> list[str]:
    """Files as given; a folder becomes the image files below it (sorted, hidden ones skipped)."""
    from core.imaging.reader import SUPPORTED_EXTENSIONS

    expanded: list[str] = []
    for name in names:
        folder = Path(name)
        if not folder.is_dir():
            expanded.append(name)
            continue
        found = sorted(
            str(path)
            for path in folder.rglob("*")
            if path.is_file()
            and path.suffix.lower() in SUPPORTED_EXTENSIONS
            and not any(part.startswith(".") for part in path.relative_to(folder).parts)
        )
        if not found:
            raise ValueError(f"{name}: no image files in this folder")
        expanded.extend(found)
    return expanded


def command_predict(arguments: argparse.Namespace) -> int:
    """Class probabilities for each file; bad files get a one-line error and a non-zero exit."""
    # Imported here so that `python -m core dataset|audit` do not pay for the model zoo.
    from core.imaging.pixels import ImageReadError
    from core.imaging.reader import read_slices
    from core.inference.explain import DEFAULT_CAM_METHOD, EXPLANATION_METHODS
    from core.inference.predictor import Predictor
    from core.inspection.store import preferred_method

    if arguments.cam is not None and arguments.cam not in EXPLANATION_METHODS:
        raise ValueError(f"--cam must be one of: {', '.join(EXPLANATION_METHODS)}")
    predictor = Predictor.from_run(arguments.run)
    if arguments.cam is None:  # the run's sanity checks choose, where they were measured
        arguments.cam = preferred_method(predictor.run_dir, DEFAULT_CAM_METHOD)
    results: list[dict[str, Any]] = []
    for file in expand_folders(arguments.files):
        try:
            slices = read_slices(Path(file), name=file)
        except ImageReadError as error:
            print(f"error: {error}", file=sys.stderr)
            results.append(_entry(file, None, error=error.reason))
            continue
        for index, (label, pixels) in enumerate(slices):
            # Each frame of a multi-frame DICOM (or TIFF) is a slice of its own.
            frame = index + 1 if len(slices) > 1 else None
            entry = _predict_slice(predictor, file, frame, label, pixels, arguments)
            results.append(entry)
    if arguments.json:
        print(json.dumps(results, indent=2))
    return EXIT_SOME_FILES_FAILED if any(entry["error"] for entry in results) else 0


def _predict_slice(
    predictor: Any,
    file: str,
    frame: int | None,
    label: str,
    pixels: Any,
    arguments: argparse.Namespace,
) -> dict[str, Any]:
    """Predict one slice, write its overlay when asked, print it unless --json."""
    prediction = predictor.predict(pixels, source=label)
    entry = _entry(file, frame, predicted=prediction.predicted)
    warnings = prediction.warnings
    match = prediction.training_copy
    entry.update(
        probabilities=prediction.probabilities,
        warnings=list(warnings),
        training_copy=asdict(match) if match else None,
    )
    if arguments.cam_out:
        target = predictor.classes.index(prediction.predicted)
        out_name = Path(file).stem + (f"_frame{frame}" if frame else "")
        entry["cam_path"] = str(_save_overlay(predictor, pixels, target, out_name, arguments))
    if not arguments.json:
        listed = ", ".join(f"{k} {v:.3f}" for k, v in prediction.probabilities.items())
        print(f"{label}: {prediction.predicted} ({prediction.confidence:.1%}) | {listed}")
        for warning in warnings:
            print(f"  warning: {warning}")
    return entry


def _entry(file: str, frame: int | None, **values: Any) -> dict[str, Any]:
    """One object of `predict --json`: every key present, null where it does not apply."""
    empty = {"predicted": None, "probabilities": None, "cam_path": None, "error": None}
    return {"file": file, "frame": frame, **empty, "warnings": [], **values}


def _save_overlay(
    predictor: Any, pixels: Any, target: int, out_name: str, arguments: argparse.Namespace
) -> Path:
    """Write the CAM overlay of one image as a PNG of the input's size; return its path."""
    import cv2

    from core.atomic_files import write_bytes_atomic
    from core.inference.explain import overlay

    explanation = predictor.explain(pixels, method=arguments.cam, target_class=target)
    rgb = overlay(pixels, explanation.cam)
    encoded, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not encoded:
        raise OSError("could not encode the overlay as PNG")
    out = Path(arguments.cam_out) / f"{out_name}_{arguments.cam}.png"
    write_bytes_atomic(out, data.tobytes())
    return out


def add_inference_commands(commands: argparse._SubParsersAction) -> None:
    """Register `predict` on the CLI's subcommand parser."""
    predict = commands.add_parser("predict", help="classify image files with a trained run")
    predict.add_argument("run", metavar="RUN_ID_OR_DIR")
    predict.add_argument("files", metavar="FILE", nargs="+", help="image files or folders")
    predict.add_argument("--cam", help="explanation method: gradcam, gradcam++, hirescam, "
                         "layercam, eigencam or occlusion (default: the one the run's sanity "
                         "checks favour, else layercam)")  # fmt: skip
    predict.add_argument("--cam-out", metavar="DIR", help="write a CAM overlay PNG per file here")
    predict.add_argument("--json", action="store_true", help="print one JSON list")
    predict.set_defaults(handler=command_predict)
