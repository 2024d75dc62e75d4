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
    """Per-sample random augmentation, applied to whole batches as tensors."""

    flip: bool = True
    rotate_degrees: float = 10.0
    scale: float = 0.1  # zoom factor drawn from [1 - scale, 1 + scale]
    shift: float = 0.05  # fraction of the image size
    brightness: float = 0.1
    contrast: float = 0.1

    @property
    def enabled(self) -> bool:
        """Whether any augmentation is switched on."""
        values = (self.rotate_degrees, self.scale, self.shift, self.brightness, self.contrast)
        return self.flip or any(value > 0 for value in values)

    @property
    def parts(self) -> tuple[str, ...]:
        """Which of AUGMENT_PARTS are on (at any strength)."""
        on = {
            "flip": self.flip,
            "geometry": max(self.rotate_degrees, self.scale, self.shift) > 0,
            "intensity": max(self.brightness, self.contrast) > 0,
        }
        return tuple(part for part in AUGMENT_PARTS if on[part])

    @property
    def label(self) -> str:
        """'flip+geometry+intensity', 'flip', ..., or 'none'."""
        return "+".join(self.parts) or "none"


AUGMENT_PARTS = ("flip", "geometry", "intensity")
"""Switchable groups of augmentation: horizontal flip; rotation, zoom and shift; brightness
and contrast. The Train page's checkboxes, the CLI's --augment and the recipes name them."""


def augmentation(parts: tuple[str, ...] | list[str]) -> AugmentConfig:
    """An AugmentConfig with the named parts on, at the workbench's default strengths."""
    unknown = sorted(set(parts) - set(AUGMENT_PARTS))
    if unknown:
        raise ValueError(
            f"unknown augmentation {', '.join(unknown)}; choose from {', '.join(AUGMENT_PARTS)}"
        )
    default = AugmentConfig()
    geometry, intensity = "geometry" in parts, "intensity" in parts
    return AugmentConfig(
        flip="flip" in parts,
        rotate_degrees=default.rotate_degrees if geometry else 0.0,
        scale=default.scale if geometry else 0.0,
        shift=default.shift if geometry else 0.0,
        brightness=default.brightness if intensity else 0.0,
        contrast=default.contrast if intensity else 0.0,
    )


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
