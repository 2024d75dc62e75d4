"""Typed, frozen configuration of a training run, to and from JSON.

A run folder's config.json holds one `RunConfig`; it alone is enough to rebuild the model and
its preprocessing (no pickled code anywhere).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

FreezePolicy = str
"""'none' (train every layer), 'head' (only the classifier) or 'top-N' (top N blocks + head)."""

Optimizer = Literal["adam", "adamw"]
Schedule = Literal["cosine", "onecycle", "constant"]
Precision = Literal["auto", "fp32", "bf16"]


def parse_freeze_policy(policy: str) -> int | None:
    """Number of trainable top blocks: None = all ('none'), 0 = head only, N for 'top-N'."""
    if policy == "none":
        return None
    if policy == "head":
        return 0
    if policy.startswith("top-") and policy[4:].isdigit() and int(policy[4:]) > 0:
        return int(policy[4:])
    raise ValueError(f"freeze policy {policy!r} is not one of: none, head, top-N (N >= 1)")


@dataclass(frozen=True)
class DataConfig:
    """Which images, at which size, split how."""

    root: str
    image_size: int = 128
    val_fraction: float = 0.15
    split_seed: int = 0
    grouped_split: bool = True  # near-duplicate groups never straddle train/validation
    subset_per_class: int | None = None  # smoke runs: at most N training images per class
    # Studies: train on a nested, stratified sample of the training part (validation and test
    # untouched): N images per class, or a fraction of each class, drawn with `sample_seed`.
    train_per_class: int | None = None
    train_fraction: float | None = None
    sample_seed: int = 0


@dataclass(frozen=True)
class ModelConfig:
    """Everything `core.models.build_model` needs."""

    name: str
    num_classes: int
    in_channels: int = 1
    pretrained: bool = False
    freeze: FreezePolicy = "none"
    dropout: float = 0.2
    width: int = 32  # custom CNNs: channels of the first block, doubled per block
    depth: int = 4  # custom CNNs: number of convolution blocks


@dataclass(frozen=True)
class AugmentConfig:
    """Per-sample random augmentation, applied to whole batches as tensors.

    Each strength is the largest change drawn: a zoom factor from [1 - scale, 1 + scale], a
    gamma from [1 / (1 + gamma), 1 + gamma], a noise sigma from [0, noise], and so on.
    """

    flip: bool = True
    rotate_degrees: float = 10.0
    scale: float = 0.1  # zoom factor drawn from [1 - scale, 1 + scale]
    shift: float = 0.05  # fraction of the image size
    brightness: float = 0.1
    contrast: float = 0.1
    # Scanner-like changes ("scanner"): off in the plain defaults, which predate them.
    gamma: float = 0.0
    noise: float = 0.0  # Gaussian noise sigma, fraction of full scale
    salt_pepper: float = 0.0  # fraction of pixels set to black or white
    blur: float = 0.0  # Gaussian blur sigma in pixels at the model's input size
    # Share of images that get the geometry and intensity changes (the rest: flips and scanner
    # changes only), so that strong augmentation does not leave the clean images underfitted.
    share: float = 1.0

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is switched on."""
        return bool(self.parts)

    @property
    def parts(self) -> tuple[str, ...]:
        """Which of AUGMENT_PARTS are on (at any strength)."""
        on = {
            "flip": self.flip,
            "geometry": max(self.rotate_degrees, self.scale, self.shift) > 0,
            "intensity": max(self.brightness, self.contrast) > 0,
            "scanner": max(self.gamma, self.noise, self.salt_pepper, self.blur) > 0,
        }
        return tuple(part for part in AUGMENT_PARTS if on[part])

    @property
    def label(self) -> str:
        """'flip+geometry+intensity', 'flip', ..., or 'none'."""
        return "+".join(self.parts) or "none"


AUGMENT_PARTS = ("flip", "geometry", "intensity", "scanner")
"""Switchable groups of augmentation: horizontal flip; rotation, zoom and shift; brightness
and contrast; scanner-like gamma, noise, salt and pepper and blur. The Train page's
checkboxes, the CLI's --augment and the recipes name them."""

PART_FIELDS: dict[str, tuple[str, ...]] = {
    "flip": ("flip",),
    "geometry": ("rotate_degrees", "scale", "shift"),
    "intensity": ("brightness", "contrast"),
    "scanner": ("gamma", "noise", "salt_pepper", "blur"),
}
DEFAULT_STRENGTHS = AugmentConfig(gamma=0.3, noise=0.03, salt_pepper=0.01, blur=0.5)
"""The strengths a part gets when switched on without a recipe's own."""


def augmentation(
    parts: tuple[str, ...] | list[str], like: AugmentConfig | None = None
) -> AugmentConfig:
    """An AugmentConfig with the named parts on and the others off.

    A part keeps `like`'s strengths where `like` has it on (so unticking one part of a recipe
    keeps the recipe's strengths for the rest), else takes DEFAULT_STRENGTHS.
    """
    unknown = sorted(set(parts) - set(AUGMENT_PARTS))
    if unknown:
        raise ValueError(
            f"unknown augmentation {', '.join(unknown)}; choose from {', '.join(AUGMENT_PARTS)}"
        )
    values: dict[str, float | bool] = {"share": like.share if like is not None else 1.0}
    for part, names in PART_FIELDS.items():
        source = like if like is not None and part in like.parts else DEFAULT_STRENGTHS
        for name in names:
            off = False if name == "flip" else 0.0
            values[name] = getattr(source, name) if part in parts else off
    return AugmentConfig(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TrainConfig:
    """The optimisation recipe."""

    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    backbone_lr_scale: float = 0.1  # pretrained layers that train use lr * this
    optimizer: Optimizer = "adamw"
    weight_decay: float = 1e-4
    schedule: Schedule = "cosine"
    warmup_epochs: float = 0.5
    label_smoothing: float = 0.0
    class_weights: bool = False
    early_stopping_patience: int = 5  # epochs without a lower validation loss; 0 = off
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0
    precision: Precision = "auto"  # "auto": core.device.compute_policy decides per model, device
    channels_last: bool | None = None  # None = on (core.device.compute_policy; measured 1.4x)
    # With a freeze policy: compute the frozen blocks once per image and view (core.frozen_cache)
    cache_frozen: bool = True
    frozen_views: int = 3  # view 0 as is, the others augmented; each epoch mixes them per image


@dataclass(frozen=True)
class Preprocessing:
    """How an image becomes the model's input; stored with the run, used by inference."""

    image_size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: str = "stretch"  # to a square, see core.transforms.resize_square


ConfigType = TypeVar("ConfigType")


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (nested ones included)."""
    return dataclasses.asdict(config)


def from_dict(kind: type[ConfigType], values: dict[str, Any]) -> ConfigType:
    """Rebuild a config dataclass from `to_dict` output; unknown keys are an error."""
    if not isinstance(values, dict):
        raise ValueError(f"{kind.__name__}: expected an object, got {type(values).__name__}")
    known = {item.name: item for item in dataclasses.fields(kind)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{kind.__name__}: unknown fields {unknown}")
    converted: dict[str, Any] = {}
    for name, value in values.items():
        if name == "augment":
            value = from_dict(AugmentConfig, value)
        elif name in ("mean", "std") and isinstance(value, list):
            value = tuple(value)
        converted[name] = value
    return kind(**converted)
