"""The registry as the Train page and `python -m core models` present it: size, weights here."""

from __future__ import annotations

from dataclasses import dataclass

from core.config import (
    ModelConfig,
)
from core.models import pretrained
from core.models.build import parameter_count
from core.models.registry import list_models, trainable_blocks


@dataclass(frozen=True)
class ModelChoice:
    """A registry entry as the Train page and `python -m core models` present it."""

    name: str
    family: str
    description: str
    parameters: int
    default_image_size: int
    default_channels: int
    cam_layer: str
    supports_pretrained: bool
    weights_available: bool
    trainable_blocks: int

    @property
    def label(self) -> str:
        """'mobilenet_v2 · transfer · 2.2 M parameters'."""
        return f"{self.name} · {self.family} · {self.parameters / 1e6:.1f} M parameters"

    @property
    def freeze_choices(self) -> list[str]:
        """Freeze policies that make sense for this model."""
        if not self.supports_pretrained:
            return ["none"]
        return ["none", "head", *(f"top-{count}" for count in range(1, self.trainable_blocks + 1))]


def model_choices() -> list[ModelChoice]:
    """Every registered model with its size and whether ImageNet weights are here."""
    choices = []
    for spec in list_models():
        config = ModelConfig(spec.name, num_classes=4, in_channels=spec.default_channels)
        choices.append(
            ModelChoice(
                name=spec.name,
                family=spec.family,
                description=spec.description,
                parameters=parameter_count(config)[0],
                default_image_size=spec.default_image_size,
                default_channels=spec.default_channels,
                cam_layer=spec.cam_layer,
                supports_pretrained=spec.supports_pretrained,
                weights_available=spec.supports_pretrained
                and pretrained.weights_available(spec.name),
                trainable_blocks=trainable_blocks(spec.name),
            )
        )
    return choices
