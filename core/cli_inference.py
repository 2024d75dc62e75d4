"""CLI command `predict` (registered by core.cli)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_SOME_FILES_FAILED = 2


def expand_folders(names: list[str]) -> list[str]:
    """Files as given; a folder becomes the image files below it (sorted, hidden ones skipped)."""
    from core.imaging import SUPPORTED_EXTENSIONS

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
    from core.explain import CAM_METHODS
    from core.imaging import ImageReadError, read_image
    from core.inference import Predictor

    if arguments.cam not in CAM_METHODS:
        raise ValueError(f"--cam must be one of: {', '.join(CAM_METHODS)}")
    predictor = Predictor.from_run(arguments.run)
    results: list[dict[str, Any]] = []
    for file in expand_folders(arguments.files):
        entry: dict[str, Any] = {"file": file, "predicted": None, "probabilities": None}
        entry.update(cam_path=None, error=None, warnings=[])
        try:
            pixels = read_image(Path(file)).pixels
            prediction = predictor.predict(pixels, source=file)
            if arguments.cam_out:
                target = predictor.classes.index(prediction.predicted)
                entry["cam_path"] = str(_save_overlay(predictor, pixels, target, file, arguments))
        except ImageReadError as error:
            entry["error"] = error.reason
            print(f"error: {error}", file=sys.stderr)
        else:
            entry.update(predicted=prediction.predicted, probabilities=prediction.probabilities)
            entry["warnings"] = list(prediction.warnings)
            if not arguments.json:
                listed = ", ".join(f"{k} {v:.3f}" for k, v in prediction.probabilities.items())
                print(f"{file}: {prediction.predicted} ({prediction.confidence:.1%}) | {listed}")
                for warning in prediction.warnings:
                    print(f"  warning: {warning}")
        results.append(entry)
    if arguments.json:
        print(json.dumps(results, indent=2))
    return EXIT_SOME_FILES_FAILED if any(entry["error"] for entry in results) else 0


def _save_overlay(
    predictor: Any, pixels: Any, target: int, file: str, arguments: argparse.Namespace
) -> Path:
    """Write the CAM overlay of one image as a PNG of the input's size; return its path."""
    import cv2

    from core.explain import overlay
    from core.storage import write_bytes_atomic

    explanation = predictor.explain(pixels, method=arguments.cam, target_class=target)
    rgb = overlay(pixels, explanation.cam)
    encoded, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not encoded:
        raise OSError("could not encode the overlay as PNG")
    out = Path(arguments.cam_out) / f"{Path(file).stem}_{arguments.cam}.png"
    write_bytes_atomic(out, data.tobytes())
    return out


def add_inference_commands(commands: argparse._SubParsersAction) -> None:
    """Register `predict` on the CLI's subcommand parser."""
    predict = commands.add_parser("predict", help="classify image files with a trained run")
    predict.add_argument("run", metavar="RUN_ID_OR_DIR")
    predict.add_argument("files", metavar="FILE", nargs="+", help="image files or folders")
    predict.add_argument("--cam", default="gradcam", help="gradcam (default), gradcam++, "
                         "hirescam, layercam or eigencam")  # fmt: skip
    predict.add_argument("--cam-out", metavar="DIR", help="write a CAM overlay PNG per file here")
    predict.add_argument("--json", action="store_true", help="print one JSON list")
    predict.set_defaults(handler=command_predict)
