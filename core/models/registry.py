"""The model registry: every custom CNN and transfer backbone by name.

Each model is a chain of *stages*, `[block_0, ..., block_n-1, tail]`, whose composition is the
forward pass (see `core.models.spec`); `core.models.build` builds and freezes them.
"""

from __future__ import annotations

import functools

import torch

from core.config import ModelConfig
from core.models.custom import CUSTOM_MODELS
from core.models.spec import ModelSpec
from core.models.transfer import TRANSFER_MODELS

_REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in (*CUSTOM_MODELS, *TRANSFER_MODELS)}


def list_models() -> list[ModelSpec]:
    """Every registered model, in registration order."""
    return list(_REGISTRY.values())


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model; ValueError listing the choices otherwise."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(_REGISTRY)}")
    return _REGISTRY[name]


@functools.cache
def trainable_blocks(model_name: str) -> int:
    """How many top blocks a 'top-N' policy can choose from (0 for models trained from scratch)."""
    spec = get_spec(model_name)
    if not spec.supports_pretrained:
        return 0
    with torch.device("meta"):  # structure only: no memory, no initialisation cost
        model = spec.builder(ModelConfig(model_name, num_classes=2, in_channels=3))
    return len(spec.stages(model)) - 1
