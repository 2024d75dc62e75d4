"""The model registry: custom CNNs and torchvision transfer backbones, built from a ModelConfig.

Each model is a chain of *stages*, `[block_0, ..., block_n-1, tail]`, whose composition is the
forward pass; freeze policies choose the top-N blocks, and `split_frozen` cuts the chain so a
trainer can cache what a frozen prefix computes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torchvision
from torch import nn

from core.config import ModelConfig, parse_freeze_policy
from core.pretrained import WeightsSource, load_imagenet_backbone

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


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, **metadata: Any) -> Callable[[Builder], Builder]:
    """Decorator that adds a builder and its ModelSpec metadata to the registry."""

    def decorator(builder: Builder) -> Builder:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelSpec(name=name, builder=builder, **metadata)
        return builder

    return decorator


def list_models() -> list[ModelSpec]:
    """Every registered model, in registration order."""
    return list(_REGISTRY.values())


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model; ValueError listing the choices otherwise."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


# ---------------------------------------------------------------- custom CNNs (from scratch)


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


@register_model(
    "cnn_classic",
    description="The classic tutorial CNN for this dataset: blocks of two 3x3 convolutions and "
    "max-pooling, then a 256-unit dense layer. Simple and readable, but slow on a CPU.",
    cam_layer="features",  # four max-pools: the last block is already at stride 16
    **_CUSTOM,
)
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


@register_model(
    "cnn_fast",
    description="A compact modern CNN (strided convolutions, batch norm, depthwise-separable "
    "layers, global pooling) designed to train quickly on a laptop CPU.",
    cam_layer="features.-2",  # strided stem + four stages: the one before last is stride 16
    **_CUSTOM,
)
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


# ---------------------------------------------------------------- torchvision transfer models


def _features_stages(model: nn.Module) -> list[nn.Module]:
    # MobileNet / EfficientNet: every child of `features` is a block.
    return [
        *model.features,
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), model.classifier),
    ]


def _resnet_stages(model: nn.Module) -> list[nn.Module]:
    stem = nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    layers = [model.layer1, model.layer2, model.layer3, model.layer4]
    return [stem, *layers, nn.Sequential(model.avgpool, nn.Flatten(1), model.fc)]


def _densenet_stages(model: nn.Module) -> list[nn.Module]:
    # Dense blocks with their transitions: a lone BatchNorm (norm5) would be a useless "block".
    f = model.features
    return [
        nn.Sequential(f.conv0, f.norm0, f.relu0, f.pool0),
        nn.Sequential(f.denseblock1, f.transition1),
        nn.Sequential(f.denseblock2, f.transition2),
        nn.Sequential(f.denseblock3, f.transition3),
        nn.Sequential(f.denseblock4, f.norm5),
        # Not in place (torchvision's forward is), so a cached frozen output is never modified.
        nn.Sequential(nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(1), model.classifier),
    ]


def _replace_head(model: nn.Module, head: str, num_classes: int, dropout: float) -> None:
    module = getattr(model, head)
    if isinstance(module, nn.Linear):  # ResNet's fc, DenseNet's classifier: add the dropout
        new_head = nn.Sequential(nn.Dropout(dropout), nn.Linear(module.in_features, num_classes))
        setattr(model, head, new_head)
        return
    # MobileNet / EfficientNet heads end with Dropout -> Linear; keep any hidden layer before.
    if not (isinstance(module[-1], nn.Linear) and isinstance(module[-2], nn.Dropout)):
        raise RuntimeError(f"unexpected torchvision head {module}")
    module[-1] = nn.Linear(module[-1].in_features, num_classes)
    module[-2].p = dropout


def _torchvision_model(config: ModelConfig) -> nn.Module:
    """A torchvision architecture, randomly initialised, with a new head for num_classes."""
    if config.in_channels != 3:
        raise ValueError(
            f"{config.name} takes 3-channel input (the gray channel is repeated); set in_channels=3"
        )
    model = torchvision.models.get_model(config.name, weights=None)
    _replace_head(model, get_spec(config.name).head, config.num_classes, config.dropout)
    return model


_TRANSFER = [  # name, default size, cam layer, stages, head, description
    ("mobilenet_v2", 160, "features.13", _features_stages, "classifier",
     "MobileNetV2 (2.2 M parameters), ImageNet-pretrained: the fastest transfer model on a "
     "CPU, and the one whose weights ship with the workbench."),
    ("mobilenet_v3_small", 160, "features.8", _features_stages, "classifier",
     "MobileNetV3-Small (1.5 M), ImageNet-pretrained: the lightest backbone, for quick tries."),
    ("mobilenet_v3_large", 160, "features.12", _features_stages, "classifier",
     "MobileNetV3-Large (4.2 M), ImageNet-pretrained: more accurate than V2 at a similar cost."),
    ("resnet18", 224, "layer3", _resnet_stages, "fc",
     "ResNet-18 (11.2 M), ImageNet-pretrained: a robust classic baseline; best with a GPU."),
    ("resnet50", 224, "layer3", _resnet_stages, "fc",
     "ResNet-50 (23.5 M), ImageNet-pretrained: strong but slow on a CPU; use a GPU."),
    ("efficientnet_b0", 224, "features.5", _features_stages, "classifier",
     "EfficientNet-B0 (4.0 M), ImageNet-pretrained: accurate per FLOP, slower than MobileNet "
     "to train on a CPU."),
    ("densenet121", 224, "features.denseblock3", _densenet_stages, "classifier",
     "DenseNet-121 (7.0 M), ImageNet-pretrained: popular in medical imaging; slow on a CPU."),
]  # fmt: skip
for _name, _size, _cam, _stages, _head, _description in _TRANSFER:
    register_model(
        _name, description=_description, default_image_size=_size, cam_layer=_cam,
        stages=_stages, head=_head, family="transfer", default_channels=3,
        supports_pretrained=True,
    )(_torchvision_model)  # fmt: skip


# ---------------------------------------------------------------- building and freezing


@functools.cache
def trainable_blocks(model_name: str) -> int:
    """How many top blocks a 'top-N' policy can choose from (0 for models trained from scratch)."""
    spec = get_spec(model_name)
    if not spec.supports_pretrained:
        return 0
    with torch.device("meta"):  # structure only: no memory, no initialisation cost
        model = spec.builder(ModelConfig(model_name, num_classes=2, in_channels=3))
    return len(spec.stages(model)) - 1


def _check_config(spec: ModelSpec, config: ModelConfig) -> None:
    if config.pretrained and not spec.supports_pretrained:
        raise ValueError(f"{spec.name} has no ImageNet weights; train it with pretrained off")
    top = parse_freeze_policy(config.freeze)
    if top is not None and not config.pretrained:
        raise ValueError(
            f"freeze policy {config.freeze!r} needs pretrained weights; "
            "randomly initialised layers must train (use 'none')"
        )
    if top is not None and top > trainable_blocks(spec.name):
        raise ValueError(f"{spec.name} has only {trainable_blocks(spec.name)} blocks to train")


def _frozen_count(model: nn.Module, spec: ModelSpec, policy: str) -> int:
    """How many leading blocks the policy freezes."""
    top = parse_freeze_policy(policy)
    blocks = len(spec.stages(model)) - 1
    if top is None:
        return 0
    if top > blocks:
        raise ValueError(f"freeze policy {policy!r}: {spec.name} has only {blocks} blocks")
    return blocks - top


def apply_freeze_policy(model: nn.Module, spec: ModelSpec, policy: str) -> None:
    """Set requires_grad: frozen leading blocks off, the top-N blocks and the head on."""
    frozen = _frozen_count(model, spec, policy)
    for index, stage in enumerate(spec.stages(model)):
        for parameter in stage.parameters():
            parameter.requires_grad_(index >= frozen)


def set_train_mode(model: nn.Module, spec: ModelSpec, policy: str) -> None:
    """model.train(), but frozen blocks stay in eval mode (BatchNorm statistics, dropout)."""
    model.train()
    for stage in spec.stages(model)[: _frozen_count(model, spec, policy)]:
        stage.eval()


def split_frozen(
    model: nn.Module, spec: ModelSpec, policy: str
) -> tuple[nn.Module | None, nn.Module]:
    """(frozen, rest) with rest(frozen(x)) == model(x); frozen is None when nothing is frozen."""
    frozen = _frozen_count(model, spec, policy)
    if frozen == 0:
        return None, model
    stages = spec.stages(model)
    return nn.Sequential(*stages[:frozen]), nn.Sequential(*stages[frozen:])


def frozen_prefix(model: nn.Module, spec: ModelSpec, policy: str) -> nn.Module | None:
    """The part of the network the policy keeps frozen, as one module (None if none)."""
    return split_frozen(model, spec, policy)[0]


def cam_layer(model: nn.Module, spec: ModelSpec) -> nn.Module:
    """The module the CAM hooks (the registry's stride-16 stage)."""
    module = model
    for part in spec.cam_layer.split("."):
        # A negative index follows the model's configured depth (features.-2 of any depth).
        module = module[int(part)] if part.lstrip("-").isdigit() else getattr(module, part)
    return module


def build_model(
    config: ModelConfig,
    *,
    state_dict: Mapping[str, torch.Tensor] | None = None,
    allow_download: bool = False,
) -> tuple[nn.Module, WeightsSource | None]:
    """Build a model; load ImageNet weights (or a saved run's state_dict); apply the freezing."""
    spec = get_spec(config.name)
    _check_config(spec, config)
    model = spec.builder(config)
    source = None
    if state_dict is not None:  # a saved run: its own weights, no ImageNet lookup
        model.load_state_dict(state_dict, strict=True)
    elif config.pretrained:
        source = load_imagenet_backbone(
            model, spec.name, head=spec.head, allow_download=allow_download
        )
    setattr(model, PRETRAINED_ATTRIBUTE, config.pretrained)
    apply_freeze_policy(model, spec, config.freeze)
    set_train_mode(model, spec, config.freeze)
    return model, source


def parameter_count(config: ModelConfig) -> tuple[int, int]:
    """(total, trainable) parameters under the config's freeze policy; loads no weights."""
    spec = get_spec(config.name)
    _check_config(spec, config)
    with torch.device("meta"):
        model = spec.builder(config)
    apply_freeze_policy(model, spec, config.freeze)
    parameters = list(model.parameters())
    return sum(p.numel() for p in parameters), sum(p.numel() for p in parameters if p.requires_grad)


def parameter_groups(
    model: nn.Module,
    spec: ModelSpec,
    *,
    lr: float,
    backbone_lr_scale: float,
    weight_decay: float,
    pretrained: bool | None = None,
) -> list[dict[str, Any]]:
    """Optimizer groups: head at lr, pretrained backbone at lr * scale; no decay on 1-D params."""
    if pretrained is None:
        pretrained = bool(getattr(model, PRETRAINED_ATTRIBUTE, False))
    groups: dict[str, dict[str, Any]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        part = "head" if name.startswith(spec.head + ".") else "backbone"
        # Biases and norm scales are 1-D; decaying them only hurts (standard practice).
        decay = parameter.ndim > 1
        key = part if decay else f"{part}/no_decay"
        scale = backbone_lr_scale if part == "backbone" and pretrained else 1.0
        group = {"name": key, "params": [], "lr": lr * scale, "weight_decay": weight_decay * decay}
        groups.setdefault(key, group)["params"].append(parameter)
    return list(groups.values())
