"""Train: configure a run, estimate its time, launch it in the background and watch it live."""

import streamlit as st

from core.config import AUGMENT_PARTS, augmentation
from core.jobs import STUDY_JOB
from core.models.choices import model_choices
from core.runs.layout import RunError
from core.runs.registry import load_run
from core.training.estimate import estimate_epoch
from core.training.recipes import (
    AUTO,
    NO_RECIPE,
    RECIPE_SUMMARIES,
    RECOMMENDED_MODEL,
    ROBUST,
    recipe_choices,
    recipe_name,
    recipe_options,
)
from core.training.request import make_request
from core.ui.memo import shared_memo
from core.ui.sidebar import page_dataset
from core.ui.training import (
    RUN_QUERY_KEY,
    format_seconds,
    history_chart,
    job_manager,
    progress_text,
    show_job_progress,
)

RECIPE_LABELS = {AUTO: "fast recipe", ROBUST: "robust recipe", NO_RECIPE: "plain defaults"}

IMAGE_SIZES = [64, 96, 112, 128, 160, 192, 224, 256]
BATCH_SIZES = [8, 16, 32, 64, 128]
BACKBONE_LR_SCALES = [0.05, 0.1, 0.25, 0.5, 1.0]
OPTIMIZERS = ["adamw", "adam"]
SCHEDULES = ["cosine", "onecycle", "constant"]

st.title("Train")
manager = job_manager()
dataset = page_dataset()


def show_stored_run(run_id: str) -> None:
    """A run this server process is not training: what its folder says, with the stored
    reason why it stopped."""
    try:
        run = load_run(run_id)
    except RunError as error:
        st.error(str(error))
        return
    status = "damaged" if run.damaged else run.status
    st.markdown(f"**{run.display_name}** · status **{status}**")
    stored = run.stored_status
    reason = stored and (stored.error or stored.message)
    if status != "completed" and reason:
        st.info(f"Why it stopped: {reason}", icon=":material/info:")
    for problem in run.problems:
        st.warning(problem)
    st.plotly_chart(history_chart(run.history), width="stretch")
    metrics = run.metrics
    validation = metrics.val if metrics else None
    if metrics and validation and validation.accuracy is not None and validation.loss is not None:
        st.caption(
            f"Best epoch {metrics.best_epoch}: validation accuracy "
            f"{validation.accuracy:.4f}, loss {validation.loss:.4f}, trained "
            f"{format_seconds(metrics.train_seconds)}."
        )


def show_live_job(run_id: str) -> bool:
    """Progress, live charts and Cancel for a job of this server (re-attached by run id);
    whether the job is still queued or training (False for a stored or unknown run)."""
    job = manager.get(run_id)
    if job is None:
        show_stored_run(run_id)
        return False
    first = job.snapshot()

    @st.fragment(run_every=2.0 if first.active else None)
    def live() -> None:
        snapshot = job.snapshot()
        st.markdown(f"**{snapshot.model}** · run `{snapshot.job_id}`")
        show_job_progress(snapshot)
        if snapshot.active:
            st.button("Cancel", key=f"cancel_{run_id}", on_click=job.cancel, type="secondary")
        if snapshot.error:
            st.error(f"Training failed: {snapshot.error}")
        st.plotly_chart(
            history_chart(list(snapshot.history), snapshot.batch_losses), width="stretch"
        )
        if snapshot.result is not None and snapshot.result.val_accuracy is not None:
            result = snapshot.result
            columns = st.columns(4)
            columns[0].metric("Validation accuracy", f"{result.val_accuracy:.4f}")
            columns[1].metric("Validation loss", f"{result.val_loss:.4f}")
            columns[2].metric("Best epoch", f"{result.best_epoch} of {result.epochs}")
            columns[3].metric("Training time", format_seconds(result.train_seconds))
            st.caption(f"Weights: {result.weights_source}. Run folder: `{result.run_dir}`")
            st.page_link(
                "app_pages/classify.py", label="Classify scans with it",
                icon=":material/neurology:", query_params={RUN_QUERY_KEY: result.run_id},
            )  # fmt: skip
            st.page_link(
                "app_pages/compare.py",
                label="Compare it with other runs",
                icon=":material/compare_arrows:",
            )
        if first.active and not snapshot.active:
            st.rerun()  # a full rerun stops this fragment's timer

    live()
    return first.active


attached = st.query_params.get(RUN_QUERY_KEY)
if attached:
    st.subheader("Run")
    running = show_live_job(attached)
    # Detaching only means something for a job that goes on training without this page.
    label = "Detach (the run keeps going)" if running else "Close"
    if st.button(label, key="detach"):
        st.query_params.pop(RUN_QUERY_KEY, None)
        st.rerun()

other_jobs = [snapshot for snapshot in manager.snapshots() if snapshot.job_id != attached]
if other_jobs:
    with st.expander(f"Jobs of this server ({len(other_jobs)} more)", expanded=not attached):
        for snapshot in reversed(other_jobs):
            left, middle, right = st.columns([3, 4, 1])
            left.markdown(f"`{snapshot.job_id}`")
            middle.caption(progress_text(snapshot))
            if snapshot.model == STUDY_JOB:
                right.page_link(
                    "app_pages/studies.py", label="Open", query_params={"study": snapshot.job_id}
                )
            elif right.button("Open", key=f"attach_{snapshot.job_id}"):
                st.query_params[RUN_QUERY_KEY] = snapshot.job_id
                st.rerun()

st.subheader("New training run")
catalogue = shared_memo().get(("model-choices",), model_choices)
names = [entry.name for entry in catalogue]
name = st.selectbox(
    "Model", names, key="train_model", format_func=lambda n: catalogue[names.index(n)].label,
    index=names.index(RECOMMENDED_MODEL) if RECOMMENDED_MODEL in names else 0,
)  # fmt: skip
entry = catalogue[names.index(name)]
st.caption(entry.description)
if entry.supports_pretrained and not entry.weights_available:
    st.info(
        f"ImageNet weights for {entry.name} are not available on this machine (no network); "
        "it can still be trained from scratch.",
        icon=":material/cloud_off:",
    )

# The form starts from the same options as `python -m core train --model NAME [--recipe R]`:
# the model's fast recipe by default, its robust one, or the plain defaults.
# A model without a fast recipe starts from the plain defaults either way: no choice to offer.
choices = [
    choice
    for choice in recipe_choices(entry.name)
    if choice != AUTO or recipe_name(entry.name, AUTO) is not None
]
recipe = (
    st.radio(
        "Start from",
        choices,
        format_func=lambda choice: RECIPE_LABELS[choice],
        horizontal=True,
        key=f"train_recipe_{entry.name}",
        help="A recipe is a set of settings measured on the real dataset (docs/benchmarks.md); "
        "every setting below can still be changed.",
    )
    if len(choices) > 1
    else choices[0]
)
options = recipe_options(entry.name, recipe)
started_from = recipe_name(entry.name, recipe)
if started_from:
    st.caption(f"**{RECIPE_LABELS[recipe].capitalize()}**: {RECIPE_SUMMARIES[started_from]}.")
# Widgets keep their state across reruns: one key per model and recipe, so switching either
# shows that recipe's values instead of carrying the previous ones over.
scope = entry.name if recipe == choices[0] else f"{entry.name}_{recipe}"


def option_index(choices: list, value: object) -> int:
    """Position of the recipe's value among a widget's choices (the first when absent)."""
    return choices.index(value) if value in choices else 0


# Keys per model for every option a recipe can set: a widget keeps its state across reruns, so
# one shared key would carry one model's value (or "off" for missing weights) over to another.
with st.form("train_form"):
    left, middle, right = st.columns(3)
    pretrained = left.checkbox(
        "Start from ImageNet weights",
        value=options.use_pretrained and entry.weights_available,
        disabled=not entry.weights_available,
        key=f"train_pretrained_{scope}",
    )
    freeze = left.selectbox(
        "Layers to train",
        entry.freeze_choices,
        index=option_index(entry.freeze_choices, options.freeze),
        key=f"train_freeze_{scope}",
        help="'none' trains every layer; 'head' only the classifier; 'top-N' the top N blocks "
        "and the classifier (pretrained models only).",
    )
    image_size = left.select_slider(
        "Image size (px)",
        IMAGE_SIZES,
        value=options.image_size or entry.default_image_size,
        key=f"train_size_{scope}",
    )
    backbone_lr_scale = left.select_slider(
        "Pretrained layers' learning rate (x the head's)",
        BACKBONE_LR_SCALES,
        value=options.backbone_lr_scale,
        disabled=not entry.supports_pretrained,
        key=f"train_backbone_lr_{scope}",
        help="ImageNet layers that train move more slowly than the new classifier head.",
    )
    epochs = middle.number_input("Epochs", 1, 300, options.epochs, key=f"train_epochs_{scope}")
    batch_size = middle.select_slider(
        "Batch size", BATCH_SIZES, value=options.batch_size, key=f"train_batch_{scope}"
    )
    lr = middle.number_input(
        "Learning rate", 1e-6, 1.0, options.lr, format="%.5f", key=f"train_lr_{scope}"
    )
    optimizer = middle.selectbox(
        "Optimizer",
        OPTIMIZERS,
        index=option_index(OPTIMIZERS, options.optimizer),
        key=f"train_optimizer_{scope}",
    )
    schedule = right.selectbox(
        "Schedule",
        SCHEDULES,
        index=option_index(SCHEDULES, options.schedule),
        key=f"train_schedule_{scope}",
    )
    label_smoothing = right.slider(
        "Label smoothing",
        0.0,
        0.3,
        options.label_smoothing,
        0.05,
        key=f"train_smoothing_{scope}",
    )
    patience = right.number_input(
        "Early stopping patience (0 = off)",
        0,
        100,
        options.patience,
        key=f"train_patience_{scope}",
        help="Stop after this many epochs without a lower validation loss (the best epoch's "
        "weights are kept). A one-cycle schedule gives its best epochs last, so its recipes "
        "switch this off.",
    )
    seed = right.number_input("Seed", 0, 2**31 - 1, options.seed, key=f"train_seed_{scope}")
    augment_columns = st.columns(len(AUGMENT_PARTS) + 1)
    augment_labels = {
        "flip": "Flip",
        "geometry": "Rotate / zoom / shift",
        "intensity": "Brightness / contrast",
        "scanner": "Gamma / noise / blur",
    }
    chosen_parts = [
        part
        for column, part in zip(augment_columns, AUGMENT_PARTS, strict=False)
        if column.checkbox(
            augment_labels[part], part in options.augment.parts, key=f"train_{part}_{scope}"
        )
    ]
    class_weights = augment_columns[-1].checkbox(
        "Class-weighted loss", options.class_weights, key=f"train_class_weights_{scope}"
    )
    subset = st.number_input(
        "Images per class (0 = all; small numbers for a quick try)",
        0,
        100_000,
        options.subset_per_class or 0,
        key="train_subset",
    )
    estimate_clicked = st.form_submit_button("Estimate time per epoch")
    start_clicked = st.form_submit_button("Start training", type="primary")

if estimate_clicked or start_clicked:
    try:
        request = make_request(
            data_root=dataset.root,
            model=name,
            recipe=recipe,
            epochs=int(epochs),
            image_size=int(image_size),
            use_pretrained=pretrained,
            freeze=freeze if pretrained else "none",
            batch_size=int(batch_size),
            lr=float(lr),
            backbone_lr_scale=float(backbone_lr_scale),
            optimizer=optimizer,
            schedule=schedule,
            augment=augmentation(chosen_parts, like=options.augment),
            label_smoothing=float(label_smoothing),
            class_weights=class_weights,
            patience=int(patience),
            seed=int(seed),
            subset_per_class=int(subset) or None,
        )
    except ValueError as error:
        st.error(str(error))
        st.stop()
    if estimate_clicked:
        if manager.active() is not None:
            st.warning("A job is training now: an estimate measured beside it would be wrong.")
        else:
            with st.spinner("Measuring a few training batches on this machine..."):
                estimate = estimate_epoch(request)
            cached = (
                f" after computing the frozen layers once (about "
                f"{format_seconds(estimate.cache_seconds)})"
                if estimate.cache_seconds
                else ""
            )
            st.success(
                f"About **{format_seconds(estimate.epoch_seconds)} per epoch**{cached} "
                f"({estimate.train_images} training images at "
                f"{estimate.train_images_per_second:.0f} images/s, {estimate.precision}), "
                f"so {int(epochs)} epochs take about "
                f"{format_seconds(estimate.total_seconds(int(epochs)))}."
            )
    else:
        job = manager.submit(request)
        st.query_params[RUN_QUERY_KEY] = job.job_id
        st.rerun()
