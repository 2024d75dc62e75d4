"""The Train page's form: a recipe choice (fast, robust, custom) with each recipe's measured
record, and every hyperparameter in an Advanced section.

A recipe fills the Advanced widgets with its own settings, shown disabled; "custom" makes them
editable, starting from a recipe or the plain defaults, and keeps what the user typed when they
look at a recipe and come back. Streamlit forgets the state of a widget that a run does not
draw, so the custom values also live in a plain session-state dict (CUSTOM_STORE) and reseed
the widgets when they reappear. "Train again with these settings" fills that dict from a
stored run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import streamlit as st

from core.config import AUGMENT_PARTS, augmentation
from core.models.choices import ModelChoice
from core.runs.records import RunConfig
from core.training.recipe_records import MeasuredValue, RecipeMeasurement, load_recipe_records
from core.training.recipes import (
    AUTO,
    NO_RECIPE,
    RECIPE_DESCRIPTIONS,
    ROBUST,
    ROBUST_SUFFIX,
    TrainingOptions,
    changed_options,
    options_from_config,
    recipe_choices,
    recipe_name,
    recipe_options,
)
from core.ui.memo import shared_memo
from core.ui.training import format_seconds

CUSTOM = "custom"
RECIPE_LABELS = {AUTO: "fast recipe", ROBUST: "robust recipe", NO_RECIPE: "plain defaults"}
MODE_LABELS = {AUTO: "Fast", ROBUST: "Robust", CUSTOM: "Custom"}
CUSTOM_STORE = "_train_custom_settings"  # model -> {"base": recipe choice, "values": {...}}

IMAGE_SIZES = [64, 96, 112, 128, 160, 192, 224, 256]
BATCH_SIZES = [8, 16, 32, 64, 128]
BACKBONE_LR_SCALES = [0.05, 0.1, 0.25, 0.5, 1.0]
OPTIMIZERS = ["adamw", "adam"]
SCHEDULES = ["cosine", "onecycle", "constant"]
AUGMENT_LABELS = {
    "flip": "Flip",
    "geometry": "Rotate / zoom / shift",
    "intensity": "Brightness / contrast",
    "scanner": "Gamma / noise / blur",
}
SETTINGS = (
    "use_pretrained", "freeze", "image_size", "backbone_lr_scale", "epochs", "batch_size", "lr",
    "optimizer", "schedule", "label_smoothing", "patience", "seed", "class_weights",
    *(f"augment_{part}" for part in AUGMENT_PARTS),
)  # fmt: skip


def widget_key(setting: str, model: str, mode: str) -> str:
    """One key per setting, model and mode: a recipe's widgets never carry another's values."""
    return f"train_{setting}_{model}_{mode}"


def mode_choices(model: str) -> list[str]:
    """Fast and robust where the model has them, and always custom."""
    recipes = [choice for choice in recipe_choices(model) if choice != NO_RECIPE]
    return [choice for choice in recipes if recipe_name(model, choice)] + [CUSTOM]


def setting_values(options: TrainingOptions, entry: ModelChoice) -> dict[str, Any]:
    """The Advanced widgets' values for `options`."""
    values = {
        setting: getattr(options, setting)
        for setting in SETTINGS
        if not setting.startswith("augment_")
    }
    values["use_pretrained"] = options.use_pretrained and entry.weights_available
    values["freeze"] = options.freeze if options.freeze in entry.freeze_choices else "none"
    values["image_size"] = options.image_size or entry.default_image_size
    values.update({f"augment_{part}": part in options.augment.parts for part in AUGMENT_PARTS})
    return values


def option_changes(values: dict[str, Any], base: TrainingOptions) -> dict[str, Any]:
    """The TrainingOptions the widgets' values make (for `make_request`)."""
    changes = {
        setting: value for setting, value in values.items() if not setting.startswith("augment_")
    }
    parts = [part for part in AUGMENT_PARTS if values[f"augment_{part}"]]
    changes["augment"] = augmentation(parts, like=base.augment)
    if not changes["use_pretrained"]:
        changes["freeze"] = "none"
    for setting in ("epochs", "image_size", "batch_size", "patience", "seed"):
        changes[setting] = int(changes[setting])
    for setting in ("lr", "backbone_lr_scale", "label_smoothing"):
        changes[setting] = float(changes[setting])
    return changes


def changed_settings(values: dict[str, Any], base: TrainingOptions) -> tuple[str, ...]:
    """The options the widgets' values change from `base`."""
    return changed_options(base, replace(base, **option_changes(values, base)))


def _with(choices: list, value: object) -> list:
    """A widget's choices with `value` among them (a stored run may hold an unlisted one)."""
    return choices if value in choices else sorted([*choices, value])  # type: ignore[type-var]


def show_settings(entry: ModelChoice, mode: str, start: dict[str, Any]) -> dict[str, Any]:
    """Every hyperparameter's widget, filled from `start`; disabled unless `mode` is custom.
    Returns the widgets' values."""
    model, editable = entry.name, mode == CUSTOM
    for setting in SETTINGS:
        key = widget_key(setting, model, mode)
        if not editable or key not in st.session_state:  # a recipe always shows its own values
            st.session_state[key] = start[setting]

    def key(setting: str) -> str:
        return widget_key(setting, model, mode)

    left, middle, right = st.columns(3)
    values: dict[str, Any] = {
        "use_pretrained": left.checkbox(
            "Start from ImageNet weights",
            disabled=not editable or not entry.weights_available,
            key=key("use_pretrained"),
        ),
        "freeze": left.selectbox(
            "Layers to train", entry.freeze_choices, disabled=not editable, key=key("freeze"),
            help="'none' trains every layer; 'head' only the classifier; 'top-N' the top N "
            "blocks and the classifier (pretrained models only).",
        ),
        "image_size": left.select_slider(
            "Image size (px)", _with(IMAGE_SIZES, start["image_size"]), disabled=not editable,
            key=key("image_size"),
        ),
        "backbone_lr_scale": left.select_slider(
            "Pretrained layers' learning rate (x the head's)",
            _with(BACKBONE_LR_SCALES, start["backbone_lr_scale"]),
            disabled=not editable or not entry.supports_pretrained, key=key("backbone_lr_scale"),
            help="ImageNet layers that train move more slowly than the new classifier head.",
        ),
        "epochs": middle.number_input("Epochs", 1, 300, disabled=not editable, key=key("epochs")),
        "batch_size": middle.select_slider(
            "Batch size", _with(BATCH_SIZES, start["batch_size"]), disabled=not editable,
            key=key("batch_size"),
        ),
        "lr": middle.number_input(
            "Learning rate", 1e-6, 1.0, format="%.5f", disabled=not editable, key=key("lr")
        ),
        "optimizer": middle.selectbox(
            "Optimizer", OPTIMIZERS, disabled=not editable, key=key("optimizer")
        ),
        "schedule": right.selectbox(
            "Schedule", SCHEDULES, disabled=not editable, key=key("schedule")
        ),
        "label_smoothing": right.slider(
            "Label smoothing", 0.0, 0.3, step=0.05, disabled=not editable,
            key=key("label_smoothing"),
        ),
        "patience": right.number_input(
            "Early stopping patience (0 = off)", 0, 100, disabled=not editable,
            key=key("patience"),
            help="Stop after this many epochs without a lower validation loss (the best "
            "epoch's weights are kept). A one-cycle schedule gives its best epochs last, so its "
            "recipes switch this off.",
        ),
        "seed": right.number_input("Seed", 0, 2**31 - 1, disabled=not editable, key=key("seed")),
    }  # fmt: skip
    columns = st.columns(len(AUGMENT_PARTS) + 1)
    for column, part in zip(columns, AUGMENT_PARTS, strict=False):
        values[f"augment_{part}"] = column.checkbox(
            AUGMENT_LABELS[part], disabled=not editable, key=key(f"augment_{part}")
        )
    values["class_weights"] = columns[-1].checkbox(
        "Class-weighted loss", disabled=not editable, key=key("class_weights")
    )
    return values


def _custom_store() -> dict[str, dict[str, Any]]:
    return st.session_state.setdefault(CUSTOM_STORE, {})


def forget_custom(model: str) -> None:
    """Drop the model's custom values, so its custom settings start again from their base."""
    _custom_store().pop(model, None)
    for setting in SETTINGS:
        st.session_state.pop(widget_key(setting, model, CUSTOM), None)


def custom_start(entry: ModelChoice) -> tuple[str, dict[str, Any]]:
    """The recipe custom settings start from and the values to show (the user's, once typed)."""
    model = entry.name
    base_key = f"train_custom_base_{model}"
    stored = _custom_store().get(model)
    if stored is None or stored["base"] != st.session_state.get(base_key, stored["base"]):
        base = st.session_state.get(base_key) or (AUTO if recipe_name(model) else NO_RECIPE)
        stored = {"base": base, "values": setting_values(recipe_options(model, base), entry)}
        _custom_store()[model] = stored
    return stored["base"], stored["values"]


def remember_custom(model: str, values: dict[str, Any]) -> None:
    """Keep the custom widgets' values for when they are drawn again."""
    _custom_store()[model]["values"] = dict(values)


def custom_base_choice(model: str, current: str) -> str:
    """Which recipe custom settings start from (changing it starts them again from it)."""
    choices = list(recipe_choices(model))
    if not recipe_name(model):
        choices.remove(AUTO)  # 'fast' is the plain defaults for a model without a recipe
    key = f"train_custom_base_{model}"
    if st.session_state.get(key) not in choices:
        st.session_state[key] = current if current in choices else choices[0]
    if len(choices) == 1:
        return choices[0]
    return st.radio(
        "Custom settings start from",
        choices,
        format_func=lambda choice: RECIPE_LABELS[choice],
        horizontal=True,
        key=key,
        on_change=lambda: forget_custom(model),
    )


def _measured(value: MeasuredValue, seeds: int) -> str:
    if value.low is None or value.high is None:
        return ""
    spread = f"lowest and highest of {seeds} seeds" if seeds > 1 else "bootstrap 95% interval"
    images = f" on {value.images:,} test images" if value.images else ""
    return f"{spread}: {value.low:.1%} to {value.high:.1%}{images}"


RECORD_LABELS = {
    "test": ("Official test", "The dataset's own test split"),
    "duplicate_free_test": (
        "Duplicate-free test",
        "Test images with no exact or near copy in training",
    ),
    "unseen_scan_test": (
        "Unseen-scan test",
        "Duplicate-free test images whose scan gave no training image either",
    ),
}


def show_recipe_record(record: RecipeMeasurement | None, dataset_fingerprint: str | None) -> None:
    """What the recipe measured, before a launch: accuracy on the official test and its
    stricter twins, under its worst scanner-like shift, on external sets, and its time."""
    if record is None:
        st.info("This recipe has no measured record yet.", icon=":material/help:")
        return
    # Two rows of three: six numbers side by side leave each too narrow to read.
    columns = [*st.columns(3), *st.columns(3)]
    for column, split in zip(columns, RECORD_LABELS, strict=False):
        label, meaning = RECORD_LABELS[split]
        value = record.scores.get(split)
        column.metric(
            label,
            f"{value.value:.1%}" if value else "not measured",
            help=f"{meaning}. " + (_measured(value, record.seeds) if value else ""),
        )
    worst = record.worst_shift
    shifts = ", ".join(sorted(set(record.worst_shift_names)))
    columns[3].metric(
        "Worst moderate shift",
        f"{worst.value:.1%}" if worst else "not measured",
        help="Duplicate-free test accuracy under the stress test's worst shift at moderate "
        f"severity ({shifts or 'none stored'}). "
        + (_measured(worst, record.seeds) if worst else ""),
    )
    external = " · ".join(f"{name} {value.value:.1%}" for name, value in record.external.items())
    columns[4].metric(
        "Off-source (external)",
        external or "not measured",
        help="Accuracy on labelled sets from elsewhere. None was available when this recipe "
        "was recorded, so the stricter subsets and the stress test stand in for it."
        if not external
        else "Accuracy on labelled external sets",
    )
    time = record.train_seconds
    spread = (
        f" Lowest and highest of {record.seeds} seeds: {format_seconds(time.low)} to "
        f"{format_seconds(time.high)}."
        if record.seeds > 1
        else ""
    )
    columns[5].metric(
        "Training time",
        format_seconds(time.value),
        help=f"On {record.device or 'an unrecorded device'}; another machine differs.{spread}",
    )
    elsewhere = (
        " (not the dataset open now: expect other numbers on it)"
        if dataset_fingerprint and record.dataset_fingerprint != dataset_fingerprint
        else ""
    )
    seeds = f"mean of {record.seeds} seeds" if record.seeds > 1 else "one run"
    st.caption(
        f"Measured on {record.dataset}{elsewhere}, {record.measured_on}, {seeds} "
        f"(`python -m bench.recipe_records`; runs {', '.join(record.runs)})."
    )


def recipe_record(model: str, mode: str) -> RecipeMeasurement | None:
    """The stored record of the model's recipe under `mode` (fast or robust)."""
    records = shared_memo().get(("recipe-records",), load_recipe_records)
    name = recipe_name(model, mode)
    return records.get(name) if name else None


def describe_recipe(model: str, mode: str) -> str:
    """What the recipe changes, in words."""
    name = recipe_name(model, mode)
    return RECIPE_DESCRIPTIONS.get(name, "") if name else ""


def train_again(config: RunConfig, entry: ModelChoice) -> Callable[[], None]:
    """A button callback: open the form on the run's model with its settings (its recipe when
    it changed nothing, else custom settings from its recipe)."""

    def fill_form() -> None:
        model = config.model.name
        options = options_from_config(config)
        recipe = config.recipe.name
        base = NO_RECIPE
        if recipe == model:
            base = AUTO
        elif recipe == model + ROBUST_SUFFIX:
            base = ROBUST
        st.session_state["train_model"] = model
        st.session_state["train_subset"] = options.subset_per_class or 0
        if recipe and set(config.recipe.changed) <= {"subset_per_class"}:
            st.session_state[f"train_recipe_{model}"] = base
            return
        forget_custom(model)
        st.session_state[f"train_recipe_{model}"] = CUSTOM
        st.session_state[f"train_custom_base_{model}"] = base
        _custom_store()[model] = {"base": base, "values": setting_values(options, entry)}

    return fill_form
