"""torchvision transfer backbones (ImageNet-pretrained where weights exist) with a new head."""

from __future__ import annotations

import functools

import torchvision
from torch import nn

from core.config import ModelConfig
from core.models.spec import ModelSpec


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


def _torchvision_model(config: ModelConfig, *, head: str) -> nn.Module:
    """A torchvision architecture, randomly initialised, with a new head for num_classes."""
    if config.in_channels != 3:
        raise ValueError(
            f"{config.name} takes 3-channel input (the gray channel is repeated); set in_channels=3"
        )
    model = torchvision.models.get_model(config.name, weights=None)
    _replace_head(model, head, config.num_classes, config.dropout)
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

TRANSFER_MODELS: tuple[ModelSpec, ...] = tuple(
    ModelSpec(
        name=name, description=description, family="transfer", default_image_size=size,
        default_channels=3, supports_pretrained=True, cam_layer=cam, stages=stages, head=head,
        builder=functools.partial(_torchvision_model, head=head),
    )
    for name, size, cam, stages, head, description in _TRANSFER
)  # fmt: skip
