"""Predictor: a run folder alone (config.json + model.safetensors) -> class probabilities.

The model is rebuilt from the run's config and its exact preprocessing (size, channels,
normalisation) is applied through `core.imaging.model_input.prepare_images`, the function
training used, so there is no train/serve skew. The model runs where `core.device.compute_policy`
says (CUDA when present, fp32); probabilities come back on the CPU.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from core.config import Preprocessing
from core.device import ComputePolicy, Purpose, compute_policy
from core.imaging.familiarity import unfamiliar_reasons
from core.imaging.model_input import prepare_images
from core.imaging.reader import read_image
from core.inference.explain import DEFAULT_CAM_METHOD, Explanation, activation_map, resize_map
from core.inference.training_copies import CopyMatch, TrainingCopies
from core.inference.tta import with_flip_tta
from core.models.build import build_model, cam_layer
from core.models.registry import get_spec
from core.models.spec import ModelSpec
from core.runs.layout import RunError
from core.runs.metrics_records import WarningRule
from core.runs.registry import RunInfo, load_weights, resolve_run

UNSURE_BELOW = 0.6  # top-class probability flagged as unsure by runs evaluated before rules
# The share of validation images a run's warning rule flags (the threshold is set there, never
# on a test split). Measured as an error detector with `python -m core warnings`: on the stress
# shifts, the temperature-scaled top-class probability beat energy, Mahalanobis distance and the
# intensity statistics (docs/benchmarks.md, "Warnings as error detectors").
WARNING_FLAG_SHARE = 0.05


def _warning_rule(info: RunInfo) -> WarningRule | None:
    evaluation = info.metrics.evaluation if info.metrics else None
    return evaluation.warning if evaluation else None


def load_model(info: RunInfo) -> torch.nn.Module:
    """The run's model rebuilt from its config.json and model.safetensors, in eval mode.

    RunError when they do not fit together (a hand-edited config, weights of another model).
    """
    if info.config is None:
        raise RunError(f"run {info.run_id} cannot be used: its config.json is unreadable")
    weights = load_weights(info)
    with _unusable_run(info):
        model, _ = build_model(info.config.model, state_dict=weights)
    return model.eval()


@contextlib.contextmanager
def _unusable_run(info: RunInfo) -> Iterator[None]:
    """Turn a config or weights mismatch into one RunError naming the run."""
    try:
        yield
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        if isinstance(error, RunError):
            raise
        # load_state_dict lists every mismatched tensor on its own line: keep the first.
        detail = (str(error).strip().splitlines() or [type(error).__name__])[0]
        if isinstance(error, KeyError):
            detail = f"config.json has no {detail}"
        raise RunError(f"run {info.run_id} cannot be used: {detail}") from None


@dataclass(frozen=True)
class Prediction:
    """One image's class probabilities (summing to 1) and what to be careful about."""

    source: str
    probabilities: dict[str, float]
    warnings: tuple[str, ...] = ()
    # Top-class probability after the run's temperature scaling (None: no warning rule).
    calibrated_confidence: float | None = None
    unreliable: bool = False  # the run's warning rule flags it
    training_copy: CopyMatch | None = None  # the image the run learned from that this copies

    @property
    def predicted(self) -> str:
        """The most probable class."""
        return max(self.probabilities, key=self.probabilities.__getitem__)

    @property
    def confidence(self) -> float:
        """Probability of the predicted class."""
        return self.probabilities[self.predicted]


@dataclass
class Predictor:
    """A trained model ready for inference; safe to share between threads."""

    run_id: str
    classes: tuple[str, ...]
    preprocessing: Preprocessing
    model: torch.nn.Module
    spec: ModelSpec
    input_ranges: dict[str, tuple[float, float]] | None = None
    warning_rule: WarningRule | None = None
    run_dir: Path | None = None  # where the run's files are: its training images are found there
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # None: compute_policy's choice for prediction (CUDA when present, fp32, plain layout).
    policy: ComputePolicy | None = None
    tta: bool = False  # probabilities averaged over the image and its mirror (core.inference.tta)

    def __post_init__(self) -> None:
        if self.policy is None:
            self.policy = compute_policy(self.spec.name, purpose="predict")
        memory_format = torch.channels_last if self.policy.channels_last else torch.preserve_format
        self.model.to(self.policy.device, memory_format=memory_format)

    @property
    def compute(self) -> ComputePolicy:
        """The policy in force (`policy`, filled in on construction)."""
        assert self.policy is not None  # set in __post_init__
        return self.policy

    @property
    def device(self) -> torch.device:
        """Where the model and its inputs live."""
        return self.compute.device

    def _inputs(self, images: list[np.ndarray]) -> torch.Tensor:
        """Decoded images -> the model's input batch, on the model's device."""
        batch = prepare_images(images, self.preprocessing).to(self.device)
        if self.compute.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return batch

    @classmethod
    def from_run(
        cls, run: str | Path, *, purpose: Purpose = "predict", tta: bool = False
    ) -> Predictor:
        """Load a run by id (in the checkpoints folder) or by folder path.

        `purpose` "evaluate" is for many images in batches (a stress test): channels_last made
        MobileNetV2 1.8x faster there (115 vs 63 images/s, batches of 64, 160 px, this CPU).
        """
        info = resolve_run(run)
        if info.config is None or info.damaged:
            problems = "; ".join(info.problems) or "its files are damaged"
            raise RunError(f"run {info.run_id} cannot be used: {problems}")
        model = load_model(info)
        # Grad-CAM needs gradients at the target layer, also for layers frozen in training.
        model.requires_grad_(True)
        with _unusable_run(info):
            return cls(
                run_id=info.run_id,
                classes=info.config.classes,
                preprocessing=info.config.preprocessing,
                model=model,
                spec=get_spec(info.config.model.name),
                input_ranges=info.config.input_ranges,
                warning_rule=_warning_rule(info),
                run_dir=info.path,
                policy=compute_policy(info.config.model.name, purpose=purpose),
                tta=tta,
            )

    @torch.no_grad()
    def logits(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, classes) float32 logits for decoded images of any size."""
        batch = self._inputs(images)
        bf16 = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.compute.bf16)
        # Explanations keep the plain model: a CAM is of one view, not of an average.
        network = with_flip_tta(self.model) if self.tta else self.model
        with self.lock, bf16:  # explanation hooks (Grad-CAM) must never see another caller's batch
            logits = network(batch)
        return logits.float().cpu().numpy()

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, classes) probabilities for decoded images of any size."""
        return torch.softmax(torch.from_numpy(self.logits(images)), dim=1).numpy()

    def predict(self, image: np.ndarray, source: str = "image") -> Prediction:
        """The prediction for one decoded image, with warnings: unfamiliar pixels, and the run's
        warning rule (or, for a run evaluated before rules, a top class under 60%)."""
        logits = self.logits([image])[0].astype(np.float64)
        row = torch.softmax(torch.from_numpy(logits), dim=0).numpy()
        probabilities = {
            label: float(value) for label, value in zip(self.classes, row, strict=True)
        }
        warnings = [
            f"looks unlike the training images: {reason}"
            for reason in unfamiliar_reasons(image, self.input_ranges)
        ]
        rule, calibrated, unreliable = self.warning_rule, None, False
        if rule is not None:
            scaled = torch.softmax(torch.from_numpy(logits / rule.temperature), dim=0)
            calibrated = float(scaled.max())
            unreliable = calibrated < rule.threshold
            if unreliable:
                share = rule.flag_share or WARNING_FLAG_SHARE
                warnings.append(
                    f"less sure than on {1 - share:.0%} of the validation images (calibrated "
                    f"confidence {calibrated:.0%}, below {rule.threshold:.0%}): predictions "
                    "this unsure are the ones most often wrong; do not rely on it"
                )
        elif max(probabilities.values()) < UNSURE_BELOW:
            unreliable = True
            warnings.append(
                f"the model is unsure: top class below {UNSURE_BELOW:.0%}; do not rely on it"
            )
        copies = self.training_copies
        match = copies.find(image) if copies is not None else None
        if match is not None:
            warnings.append(match.describe())
        return Prediction(source, probabilities, tuple(warnings), calibrated, unreliable, match)

    @functools.cached_property
    def training_copies(self) -> TrainingCopies | None:
        """The images the run learned from, to tell when an input copies one (built on first
        use; None when the run's dataset is not on this machine)."""
        return TrainingCopies.for_run(resolve_run(self.run_dir)) if self.run_dir else None

    def explain(
        self,
        image: np.ndarray,
        *,
        method: str = DEFAULT_CAM_METHOD,
        target_class: int | None = None,
    ) -> Explanation:
        """A CAM of `image` (at its own size) for the predicted class or a chosen one."""
        if target_class is None:
            target_class = int(self.probabilities([image])[0].argmax())
        if not 0 <= target_class < len(self.classes):
            raise ValueError(
                f"target class {target_class} is not one of 0..{len(self.classes) - 1}"
            )
        x = self._inputs([image])  # grad-cam runs on the model's device and returns numpy
        with self.lock:
            cam = activation_map(
                self.model, cam_layer(self.model, self.spec), x,
                method=method, target_class=target_class,
            )  # fmt: skip
        return Explanation(method, target_class, resize_map(cam, *image.shape[:2]))

    def predict_file(self, path: Path) -> Prediction:
        """Read a file through the safe reader and predict it (ImageReadError when unreadable)."""
        return self.predict(read_image(path).pixels, source=str(path))
