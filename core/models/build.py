"""The model registry: custom CNNs and torchvision transfer backbones, built from a ModelConfig.

Each model is a chain of *stages*, `[block_0, ..., block_n-1, tail]`, whose composition is the
forward pass; freeze policies choose the top-N blocks, and `split_frozen` cuts the chain so a
trainer can cache what a frozen prefix computes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from core.config import ModelConfig, parse_freeze_policy
from core.models.pretrained import WeightsSource, load_imagenet_backbone
from core.models.registry import get_spec, trainable_blocks
from core.models.spec import PRETRAINED_ATTRIBUTE, ModelSpec


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
