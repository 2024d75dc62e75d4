"""Custom CNNs trained from scratch: the tutorial design and a CPU-efficient modern one."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from core.config import ModelConfig
from core.models.spec import ModelSpec


class BlocksAndHead(nn.Module):
    """features (a Sequential of blocks) -> pool -> flatten -> classifier."""

    def __init__(self, features: nn.Sequential, pool: nn.Module, classifier: nn.Module) -> None:
        super().__init__()
        self.features, self.pool, self.classifier = features, pool, classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits for a batch of images."""
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def _custom_stages(model: nn.Module) -> list[nn.Module]:
    return [*model.features, nn.Sequential(model.pool, nn.Flatten(1), model.classifier)]


def _conv_bn_relu(
    channels_in: int, channels_out: int, *, size: int = 3, stride: int = 1, groups: int = 1
) -> list[nn.Module]:
    return [
        nn.Conv2d(channels_in, channels_out, size, stride, size // 2, groups=groups, bias=False),
        nn.BatchNorm2d(channels_out),
        nn.ReLU(inplace=True),
    ]


def _separable(channels: int) -> list[nn.Module]:
    # Depthwise 3x3 + pointwise 1x1: depth and receptive field for a fraction of a conv's cost.
    depthwise = _conv_bn_relu(channels, channels, groups=channels)
    return depthwise + _conv_bn_relu(channels, channels, size=1)


_CUSTOM: dict[str, Any] = {
    "family": "custom",
    "default_image_size": 128,
    "default_channels": 1,
    "supports_pretrained": False,
    "stages": _custom_stages,
}


def cnn_classic(config: ModelConfig) -> nn.Module:
    """Blocks of (conv3x3, ReLU, conv3x3, ReLU, max-pool), then a two-layer dense head."""
    blocks, channels_in = [], config.in_channels
    for index in range(config.depth):
        channels = min(config.width * 2**index, 256)
        layers = [nn.Conv2d(channels_in, channels, 3, padding=1), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
        blocks.append(nn.Sequential(*layers, nn.MaxPool2d(2)))
        channels_in = channels
    classifier = nn.Sequential(
        nn.Dropout(config.dropout),
        nn.Linear(channels_in * 16, 256),
        nn.ReLU(inplace=True),
        nn.Dropout(config.dropout),
        nn.Linear(256, config.num_classes),
    )
    # A fixed 4x4 grid before flattening makes any input size work with the same head.
    return BlocksAndHead(nn.Sequential(*blocks), nn.AdaptiveAvgPool2d((4, 4)), classifier)


def cnn_fast(config: ModelConfig) -> nn.Module:
    """Strided stem, then per stage a stride-2 conv (+ a separable conv from the 2nd stage on)."""
    # Half-width stem: the full-resolution layers dominate CPU time (measured, see the report).
    stem_channels = max(config.width // 2, 8)
    blocks = [nn.Sequential(*_conv_bn_relu(config.in_channels, stem_channels, stride=2))]
    channels_in = stem_channels
    for index in range(config.depth):
        channels = min(config.width * 2**index, 256)
        layers = _conv_bn_relu(channels_in, channels, stride=2)
        if index >= 1:
            layers += _separable(channels)
        blocks.append(nn.Sequential(*layers))
        channels_in = channels
    classifier = nn.Sequential(
        nn.Dropout(config.dropout), nn.Linear(channels_in, config.num_classes)
    )
    return BlocksAndHead(nn.Sequential(*blocks), nn.AdaptiveAvgPool2d(1), classifier)


CUSTOM_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="cnn_classic",
        description="The classic tutorial CNN for this dataset: blocks of two 3x3 convolutions and "
        "max-pooling, then a 256-unit dense layer. Simple and readable, but slow on a CPU.",
        cam_layer="features",  # four max-pools: the last block is already at stride 16
        **_CUSTOM,
        builder=cnn_classic,
    ),
    ModelSpec(
        name="cnn_fast",
        description="A compact modern CNN (strided convolutions, batch norm, depthwise-separable "
        "layers, global pooling) designed to train quickly on a laptop CPU.",
        cam_layer="features.-2",  # strided stem + four stages: the one before last is stride 16
        **_CUSTOM,
        builder=cnn_fast,
    ),
)
