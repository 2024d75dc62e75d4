"""`python -m core export RUN --format onnx`: the run as an ONNX model, verified before it
is written.

The graph takes what a deployment can make without the workbench: grey images stretched to the
run's square size and scaled to [0, 1] (float32, N x 1 x H x W, any N). It normalises them as
training did, runs the network and returns class probabilities. The class names and that
preprocessing are in the model's metadata (`metadata_props`, JSON values).

Verification compares the eager model (the workbench's own pipeline from decoded images,
`Predictor.probabilities`) with onnxruntime on the same decoded images of the run's official
test split: the largest difference in any class probability must stay under the tolerance, or
nothing is written. The model is written to a hidden file beside the target and renamed into
place only once it passed, so a failed or interrupted export leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core.config import Preprocessing
from core.evaluation.evaluate import load_predictions
from core.evaluation.run_selection import dataset_root
from core.export import DEFAULT_CHECK_IMAGES, DEFAULT_TOLERANCE
from core.imaging.pixels import resize_square
from core.imaging.reader import read_image
from core.inference.predictor import Predictor, load_model
from core.runs.layout import RunError
from core.runs.registry import RunInfo, resolve_run

ONNX_OPSET = 18
INPUT_NAME, OUTPUT_NAME = "pixels", "probabilities"


class ExportError(ValueError):
    """An export that cannot be made or did not match the model (one line, for the CLI)."""


class ProbabilityModel(torch.nn.Module):
    """The run's network behind its own normalisation, ending in a softmax."""

    def __init__(self, network: torch.nn.Module, preprocessing: Preprocessing) -> None:
        super().__init__()
        self.network = network
        shape = (1, len(preprocessing.mean), 1, 1)
        self.register_buffer("mean", torch.tensor(preprocessing.mean).view(shape))
        self.register_buffer("std", torch.tensor(preprocessing.std).view(shape))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        # A grey (N, 1, H, W) batch broadcasts to a 3-channel (ImageNet) model's statistics.
        return torch.softmax(self.network((pixels - self.mean) / self.std), dim=1)


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote and how well it matched the eager model."""

    run_id: str
    path: str
    format: str
    bytes: int
    images_checked: int
    max_difference: float
    tolerance: float
    same_predictions: bool  # every checked image gets the same top class from both
    seconds: float
    runtime: str  # the runtime that verified it, with its version

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def export_inputs(images: list[np.ndarray], preprocessing: Preprocessing) -> np.ndarray:
    """Decoded images -> the exported graph's input, as a deployment would make it."""
    squares = np.stack([resize_square(image, preprocessing.image_size) for image in images])
    return (squares.astype(np.float32) / 255.0)[:, None]


def check_images(info: RunInfo, count: int) -> tuple[list[str], list[np.ndarray]]:
    """Up to `count` official test images of the run, taken in turn from each class."""
    root = dataset_root(info)
    predictions = load_predictions(info)
    if root is None:
        raise ExportError(
            f"the run's dataset ({info.config.data.root if info.config else '?'}) is not on this "
            "machine: an export is only written after checking it on the run's test images"
        )
    if predictions is None or "in_test" not in predictions:
        raise ExportError(f"run {info.run_id} is not evaluated: run `python -m core evaluate`")
    test = predictions[predictions["in_test"].astype(bool)]
    by_class = [rows["path"].tolist() for _, rows in test.groupby("label", sort=True)]
    paths = [group[index] for index in range(count) for group in by_class if index < len(group)][
        :count
    ]
    if not paths:
        raise ExportError(f"run {info.run_id} has no test images to check an export on")
    return paths, [read_image(root / path).pixels for path in paths]


def _write_onnx(model: ProbabilityModel, size: int, path: Path, metadata: dict[str, str]) -> None:
    """Trace `model` to ONNX at `path`, batch size free, with `metadata` in the model."""
    import onnx

    example = torch.zeros(2, 1, size, size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    # The exporter narrates every step on stdout: keep the CLI's output to its own lines.
    with contextlib.redirect_stdout(io.StringIO()):
        program = torch.onnx.export(
            model, (example,), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_shapes={"pixels": {0: batch}}, opset_version=ONNX_OPSET, dynamo=True,
        )  # fmt: skip
    proto = program.model_proto
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.producer_name = "brain-tumor-workbench"
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def onnx_metadata(info: RunInfo, preprocessing: Preprocessing) -> dict[str, str]:
    """What a deployment needs to feed the model and read its output."""
    config = info.config
    assert config is not None
    return {
        "classes": json.dumps(list(config.classes)),
        "input": json.dumps(
            {
                "name": INPUT_NAME,
                "shape": ["batch", 1, preprocessing.image_size, preprocessing.image_size],
                "dtype": "float32",
                "range": [0.0, 1.0],
                "steps": [
                    "decode the image and convert it to one grey channel (luminance)",
                    f"stretch it to {preprocessing.image_size} x {preprocessing.image_size} px "
                    "(area interpolation when shrinking, linear when enlarging)",
                    "divide by 255",
                ],
            }
        ),
        "preprocessing": json.dumps(asdict(preprocessing)),
        "output": json.dumps({"name": OUTPUT_NAME, "meaning": "class probabilities, sum 1"}),
        "run_id": info.run_id,
        "model": config.model.name,
        "recipe": config.recipe.name or "none",
        "dataset_fingerprint": config.dataset.fingerprint or "",
    }


def export_onnx(
    run: str | Path,
    out: Path | None = None,
    *,
    images: int = DEFAULT_CHECK_IMAGES,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ExportResult:
    """Export the run to ONNX at `out` (default: model.onnx in the run folder) once it matches
    the eager model on `images` test images; ExportError when it cannot or does not."""
    import onnxruntime

    started = time.perf_counter()
    info = resolve_run(run)
    if info.config is None or not info.has_weights or info.damaged:
        raise ExportError(f"run {info.run_id} has no usable weights to export")
    target = Path(out) if out is not None else info.path / "model.onnx"
    if target.is_dir():
        raise ExportError(f"{target} is a folder: give a file name such as model.onnx")
    if not target.parent.is_dir():
        raise ExportError(f"the folder {target.parent} does not exist")
    names, pixels = check_images(info, images)
    try:
        predictor = Predictor.from_run(info.path)
        network = load_model(info)
    except RunError as error:
        raise ExportError(str(error)) from None
    preprocessing = predictor.preprocessing
    expected = np.concatenate(
        [predictor.probabilities(pixels[start : start + 16]) for start in range(0, len(pixels), 16)]
    )
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        _write_onnx(
            ProbabilityModel(network, preprocessing).eval(),
            preprocessing.image_size,
            partial,
            onnx_metadata(info, preprocessing),
        )
        session = onnxruntime.InferenceSession(str(partial), providers=["CPUExecutionProvider"])
        exported = session.run([OUTPUT_NAME], {INPUT_NAME: export_inputs(pixels, preprocessing)})[0]
        difference = float(np.abs(exported - expected).max())
        same = bool((exported.argmax(1) == expected.argmax(1)).all())
        if not difference <= tolerance:
            raise ExportError(
                f"the ONNX model differs from the run by up to {difference:.2e} in a class "
                f"probability on {len(names)} test images (tolerance {tolerance:.0e}): not written"
            )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return ExportResult(
        run_id=info.run_id,
        path=str(target),
        format="onnx",
        bytes=target.stat().st_size,
        images_checked=len(names),
        max_difference=difference,
        tolerance=tolerance,
        same_predictions=same,
        seconds=time.perf_counter() - started,
        runtime=f"onnxruntime {onnxruntime.__version__} (CPU)",
    )
