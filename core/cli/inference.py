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
    """Files as given; a folder becomes the image files below it (sorted, hidden ones skipped),
    unless its images are all DICOM: then it is one series, read as a volume."""
    from core.imaging.reader import SUPPORTED_EXTENSIONS
    from core.imaging.volumes.sources import is_dicom_folder

    expanded: list[str] = []
    for name in names:
        folder = Path(name)
        if not folder.is_dir() or is_dicom_folder(folder):
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
    from core.imaging.volumes.sources import is_volume_path
    from core.inference.explain import DEFAULT_CAM_METHOD, EXPLANATION_METHODS
    from core.inference.predictor import Predictor
    from core.inspection.store import preferred_method

    if arguments.cam is not None and arguments.cam not in EXPLANATION_METHODS:
        raise ValueError(f"--cam must be one of: {', '.join(EXPLANATION_METHODS)}")
    predictor = Predictor.from_run(arguments.run, tta=arguments.tta)
    if arguments.cam is None:  # the run's sanity checks choose, where they were measured
        arguments.cam = preferred_method(predictor.run_dir, DEFAULT_CAM_METHOD)
    results: list[dict[str, Any]] = []
    for file in expand_folders(arguments.files):
        if is_volume_path(file):
            results.extend(_predict_volume(predictor, file, arguments))
            continue
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


def _predict_volume(
    predictor: Any, file: str, arguments: argparse.Namespace
) -> list[dict[str, Any]]:
    """Every slice of a NIfTI volume or DICOM series along --axis, one entry each."""
    from core.imaging.pixels import ImageReadError
    from core.imaging.volumes.dicom_series import SeveralSeriesError
    from core.imaging.volumes.sources import read_volume
    from core.imaging.volumes.volume import STORED, volume_slice_label

    try:
        volume = read_volume(Path(file), name=file, series=arguments.series)
    except SeveralSeriesError as error:
        listed = "; ".join(summary.describe() for summary in error.series)
        reason = f"{len(error.series)} DICOM series; choose one with --series UID: {listed}"
        print(f"error: {file}: {reason}", file=sys.stderr)
        return [_entry(file, None, error=reason)]
    except ImageReadError as error:
        print(f"error: {error}", file=sys.stderr)
        return [_entry(file, None, error=error.reason)]
    # Without orientation only the stored stack exists; the default axis then means that.
    plane = arguments.axis or ("axial" if volume.orientation_known else STORED)
    if plane not in volume.planes:
        reason = f"the orientation is unknown, so no {plane} slices: leave out --axis"
        print(f"error: {file}: {reason}", file=sys.stderr)
        return [_entry(file, None, error=reason)]
    for note in volume.notes:
        print(f"note: {file}: {note}", file=sys.stderr)
    count = volume.slice_count(plane)
    entries = []
    for index in range(count):
        label = volume_slice_label(file, plane, index, count)
        pixels = volume.slice_pixels(plane, index)
        where = {"slice": index + 1, "axis": plane}
        entries.append(_predict_slice(predictor, file, None, label, pixels, arguments, **where))
    return entries


def _predict_slice(
    predictor: Any,
    file: str,
    frame: int | None,
    label: str,
    pixels: Any,
    arguments: argparse.Namespace,
    **where: Any,
) -> dict[str, Any]:
    """Predict one slice, write its overlay when asked, print it unless --json. `where`:
    the slice number and axis of a volume's slice."""
    prediction = predictor.predict(pixels, source=label)
    entry = _entry(file, frame, predicted=prediction.predicted, **where)
    warnings = prediction.warnings
    match = prediction.training_copy
    entry.update(
        probabilities=prediction.probabilities,
        warnings=list(warnings),
        training_copy=asdict(match) if match else None,
    )
    if arguments.cam_out:
        target = predictor.classes.index(prediction.predicted)
        out_name = _stem(file) + (f"_frame{frame}" if frame else "")
        if where:
            out_name += f"_{where['axis']}{where['slice']:03d}"
        entry["cam_path"] = str(_save_overlay(predictor, pixels, target, out_name, arguments))
    if not arguments.json:
        listed = ", ".join(f"{k} {v:.3f}" for k, v in prediction.probabilities.items())
        print(f"{label}: {prediction.predicted} ({prediction.confidence:.1%}) | {listed}")
        for warning in warnings:
            print(f"  warning: {warning}")
    return entry


def _entry(file: str, frame: int | None, **values: Any) -> dict[str, Any]:
    """One object of `predict --json`: every key present, null where it does not apply
    (`slice` and `axis` are a volume slice's 1-based number and plane)."""
    empty = {"predicted": None, "probabilities": None, "cam_path": None, "error": None}
    where = {"slice": None, "axis": None}
    return {"file": file, "frame": frame, **where, **empty, "warnings": [], **values}


def _stem(file: str) -> str:
    """'scan' for scan.png, scan.nii.gz and a folder named scan."""
    name = Path(file).name
    for suffix in (".nii.gz", ".nii", ".zip"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return Path(file).stem


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
    predict.add_argument("files", metavar="FILE", nargs="+", help="image files or folders; "
                         "a .nii/.nii.gz volume, or a zip or folder of DICOM files (a series), "
                         "gives a result per slice")  # fmt: skip
    predict.add_argument("--axis", choices=("axial", "coronal", "sagittal"),
                         help="the plane a volume is sliced in (default: axial, found from the "
                         "file's orientation)")  # fmt: skip
    predict.add_argument("--series", metavar="UID", help="the SeriesInstanceUID to read from a "
                         "zip or folder holding several DICOM series")  # fmt: skip
    predict.add_argument("--cam", help="explanation method: gradcam, gradcam++, hirescam, "
                         "layercam, eigencam or occlusion (default: the one the run's sanity "
                         "checks favour, else hirescam)")  # fmt: skip
    predict.add_argument("--tta", action="store_true", help="test-time augmentation: "
                         "probabilities from the mean over each image and its mirror (CAMs are "
                         "of the image itself)")  # fmt: skip
    predict.add_argument("--cam-out", metavar="DIR", help="write a CAM overlay PNG per file here")
    predict.add_argument("--json", action="store_true", help="print one JSON list")
    predict.set_defaults(handler=command_predict)
