"""What a run records about itself (config.json), and how its steps run (device, precision).

config.json alone rebuilds the model and its preprocessing: model config, classes,
preprocessing, recipe, seed, versions, data fingerprint, split manifest and weight source.
"""

from __future__ import annotations

import platform
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import torch
import torchvision

import core
from core import config as config_module
from core.config import ModelConfig, Preprocessing
from core.data.training_data import TrainingData
from core.device import compute_policy, detect_device
from core.imaging.familiarity import training_ranges
from core.imaging.model_input import make_preprocessing
from core.models.build import parameter_count
from core.models.pretrained import WeightsSource
from core.models.spec import ModelSpec
from core.training.loops import StepSettings

if TYPE_CHECKING:
    from core.training.request import TrainingRequest

CONFIG_VERSION = 1


def choose_step_settings(
    spec: ModelSpec, request: TrainingRequest, data: TrainingData
) -> StepSettings:
    """The training steps' settings: the run's preprocessing and `core.device.compute_policy`."""
    policy = compute_policy(
        spec.name,
        precision=request.train.precision,
        channels_last=request.train.channels_last,
        purpose="train",
    )
    preprocessing = preprocessing_for(request.model, spec, data)
    return StepSettings(
        preprocessing, policy.device, bf16=policy.bf16, channels_last=policy.channels_last
    )


def preprocessing_for(model: ModelConfig, spec: ModelSpec, data: TrainingData) -> Preprocessing:
    """ImageNet statistics for pretrained weights, else the training images' own."""
    train_images, _ = data.subset("train")
    return make_preprocessing(
        image_size=int(data.images.shape[-1]),
        channels=model.in_channels,
        pretrained=model.pretrained,
        images=train_images.numpy(),
    )


def versions() -> dict[str, str]:
    """Library versions that shape a run's numbers."""
    return {
        "workbench": core.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
    }


def build_run_config(
    request: TrainingRequest,
    data: TrainingData,
    spec: ModelSpec,
    weights_source: WeightsSource | None,
    settings: StepSettings,
) -> dict[str, Any]:
    """The complete, JSON-ready description of a run."""
    total, trainable = parameter_count(request.model)
    # A study cell says so (core.studies); other runs have no "study" section at all.
    study = {"study": config_module.to_dict(request.study)} if request.study else {}
    return {
        "config_version": CONFIG_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "classes": list(data.classes),
        "data": config_module.to_dict(request.data),
        "model": config_module.to_dict(request.model),
        "model_family": spec.family,
        "train": config_module.to_dict(request.train),
        # Where the options came from: a measured recipe (None: the plain defaults), and which
        # of its options the user changed.
        "recipe": {"name": request.recipe, "changed": list(request.recipe_changes)},
        "preprocessing": config_module.to_dict(settings.preprocessing),
        "dataset": data.describe(),
        "weights_source": (
            config_module.to_dict(weights_source) if weights_source else {"kind": "random-init"}
        ),
        "parameters": {"total": total, "trainable": trainable},
        # What the training inputs look like, so inference can warn about unfamiliar ones.
        "input_ranges": training_ranges(
            data.subset("train")[0][:: max(1, len(data.train_positions) // 2000)].numpy()
        ),
        "device": {
            "kind": settings.device.type,
            "name": detect_device().describe(),
            "precision": "bf16" if settings.bf16 else "fp32",
            "channels_last": settings.channels_last,
        },
        "versions": versions(),
        **study,
    }
