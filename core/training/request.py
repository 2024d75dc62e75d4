"""Turn a user's choices (Train page form, CLI options) into a validated TrainingRequest.

The choices start from `core.training.recipes` (the plain defaults or a model's recipe); this
module states no defaults of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.config import DataConfig, ModelConfig, TrainConfig, augmentation, parse_freeze_policy
from core.models.registry import get_spec
from core.runs.layout import clean_run_name
from core.runs.records import StudyRecord
from core.training.recipes import (
    NO_RECIPE,
    OPTION_NAMES,
    TrainingOptions,
    changed_options,
    recipe_name,
    recipe_options,
)

NO_AUGMENTATION = augmentation(())


@dataclass(frozen=True)
class TrainingRequest:
    """Everything needed to start a run, and the recipe it started from."""

    data: DataConfig
    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)
    recipe: str | None = None  # None: the plain defaults
    recipe_changes: tuple[str, ...] = ()  # options the user changed from the recipe
    study: StudyRecord | None = None  # the study cell this run is, if it is one
    name: str | None = None  # the run's display name (None: its id until renamed)


def make_request(
    *,
    data_root: Path | str,
    model: str,
    recipe: str = NO_RECIPE,
    name: str | None = None,
    **changes: Any,
) -> TrainingRequest:
    """A checked TrainingRequest: `recipe`'s options with `changes` (TrainingOptions names).

    `recipe` is 'auto' (the model's measured recipe when it has one; what the Train page and the
    CLI start from) or 'none' (the plain defaults); `name` the run's display name (blank: none).
    ValueError says what is wrong, in one line.
    """
    unknown = sorted(set(changes) - set(OPTION_NAMES))
    if unknown:
        raise ValueError(f"unknown training options: {', '.join(unknown)}")
    start = recipe_options(get_spec(model).name, recipe)
    if changes.get("augment", start.augment) is None:
        changes.pop("augment")  # None: keep the recipe's augmentation
    chosen = replace(start, **changes)
    request = request_from_options(data_root, model, chosen)
    return replace(
        request,
        recipe=recipe_name(model, recipe),
        recipe_changes=changed_options(start, chosen),
        name=clean_run_name(name) if name and name.strip() else None,
    )


def request_from_options(
    data_root: Path | str, model: str, options: TrainingOptions
) -> TrainingRequest:
    """The request for `options` (no recipe recorded); ValueError when an option is invalid."""
    spec = get_spec(model)
    check_options(spec.name, spec.supports_pretrained, spec.default_image_size, options)
    data = DataConfig(
        root=str(Path(data_root).expanduser().resolve()),
        image_size=options.image_size or spec.default_image_size,
        split_seed=options.seed if options.split_seed is None else options.split_seed,
        subset_per_class=options.subset_per_class,
        train_per_class=options.train_per_class,
        train_fraction=options.train_fraction,
        sample_seed=options.seed,
    )
    model_config = ModelConfig(
        name=spec.name,
        num_classes=0,  # set from the dataset's classes when training starts
        in_channels=spec.default_channels,
        pretrained=options.use_pretrained,
        freeze=options.freeze,
    )
    train = TrainConfig(
        epochs=options.epochs,
        batch_size=options.batch_size,
        lr=options.lr,
        backbone_lr_scale=options.backbone_lr_scale,
        optimizer=options.optimizer,  # type: ignore[arg-type]
        schedule=options.schedule,  # type: ignore[arg-type]
        label_smoothing=options.label_smoothing,
        class_weights=options.class_weights,
        early_stopping_patience=options.patience,
        augment=options.augment,
        seed=options.seed,
        precision=options.precision,  # type: ignore[arg-type]
        cache_frozen=options.cache_frozen,
        frozen_views=options.frozen_views,
    )
    return TrainingRequest(data, model_config, train)


def check_options(
    name: str, supports_pretrained: bool, default_size: int, options: TrainingOptions
) -> None:
    """ValueError, in one line, for the first option that makes no sense."""
    parse_freeze_policy(options.freeze)
    if options.use_pretrained and not supports_pretrained:
        raise ValueError(f"{name} has no pretrained weights; train it from scratch")
    if options.freeze != "none" and not options.use_pretrained:
        raise ValueError(
            "freezing layers only makes sense with pretrained weights (use --freeze none)"
        )
    if options.epochs < 1 or options.batch_size < 1 or options.lr <= 0:
        raise ValueError("epochs, batch size and learning rate must be positive")
    if not 0.0 < options.backbone_lr_scale <= 1.0:
        raise ValueError("the backbone's learning-rate scale must be in (0, 1]")
    if not 16 <= (options.image_size or default_size) <= 512:
        raise ValueError("image size must be between 16 and 512 pixels")
    if not 0.0 <= options.label_smoothing < 1.0:
        raise ValueError("label smoothing must be in [0, 1)")
    if options.frozen_views < 1:
        raise ValueError("frozen views must be at least 1")
    if options.subset_per_class is not None and options.subset_per_class < 2:
        raise ValueError("a subset needs at least 2 images per class")
    if options.train_per_class is not None and options.train_fraction is not None:
        raise ValueError("give a training-set size as images per class or a fraction, not both")
    if options.train_per_class is not None and options.train_per_class < 1:
        raise ValueError("a training-set size needs at least 1 image per class")
    if options.train_fraction is not None and not 0.0 < options.train_fraction <= 1.0:
        raise ValueError("a training-set fraction must be in (0, 1]")
