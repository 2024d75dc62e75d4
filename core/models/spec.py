"""What the registry knows of a model: `ModelSpec`, and the types of its builder and stages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from core.config import ModelConfig

Builder = Callable[[ModelConfig], nn.Module]

Stages = Callable[[nn.Module], list[nn.Module]]

PRETRAINED_ATTRIBUTE = "imagenet_pretrained"  # set by build_model; read by parameter_groups


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: what the Train page shows and what the engine needs to know."""

    name: str
    description: str
    family: str  # "custom" | "transfer"
    default_image_size: int
    default_channels: int
    supports_pretrained: bool
    # Dotted module path the CAM hooks; a negative part counts from the end of a Sequential.
    # Always the stride-16 stage: on real MRI the stride-32 maps (4x4 at 128 px) were blobs in
    # the middle or the corners, while LayerCAM at stride 16 followed the lesion far more often.
    cam_layer: str
    builder: Builder
    stages: Stages  # model -> [blocks..., tail]; running them in order is model(x)
    head: str = "classifier"  # top-level module replaced for num_classes; always trainable
