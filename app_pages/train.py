"""Train: configure a run, estimate its time, launch it in the background and watch it live."""

import contextlib

import streamlit as st

from core.jobs import STUDY_JOB
from core.models.choices import model_choices
from core.runs.layout import MAX_RUN_NAME, RunError
from core.runs.records import RunConfig
from core.runs.registry import list_runs, load_run, run_ids
from core.training.estimate import estimate_epoch
from core.training.recipes import RECOMMENDED_MODEL, recipe_options
from core.training.request import make_request
from core.ui.memo import shared_memo
from core.ui.serving import withheld
from core.ui.sidebar import page_dataset
from core.ui.train_form import (
    CUSTOM,
    MODE_LABELS,
    RECIPE_LABELS,
    changed_settings,
    custom_base_choice,
    custom_start,
    describe_recipe,
    mode_choices,
    option_changes,
    recipe_record,
    remember_custom,
    setting_values,
    show_recipe_record,
    show_settings,
    train_again,
)
from core.ui.training import (
    RUN_QUERY_KEY,
    format_seconds,
    history_chart,
    job_manager,
    past_run_line,
    progress_text,
    show_job_progress,
)

PAST_RUNS_SHOWN = 10

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
    offer_train_again(run.config)
    metrics = run.metrics
    validation = metrics.val if metrics else None
    if metrics and validation and validation.accuracy is not None and validation.loss is not None:
        st.caption(
            f"Best epoch {metrics.best_epoch}: validation accuracy "
            f"{validation.accuracy:.4f}, loss {validation.loss:.4f}, trained "
            f"{format_seconds(metrics.train_seconds)}."
        )


def offer_train_again(config: RunConfig | None) -> None:
    """A button that fills the form below with the run's model and settings."""
    catalogue = shared_memo().get(("model-choices",), model_choices)
    entry = next((item for item in catalogue if config and item.name == config.model.name), None)
    if config is None or entry is None:
        return
    st.button(
        "Train again with these settings",
        key="train_again",
        on_click=train_again(config, entry),
        help="Fills the form below with this run's model, recipe and settings.",
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
        if not snapshot.active:
            # No run folder when the job failed before training started: nothing to offer.
            with contextlib.suppress(RunError):
                offer_train_again(load_run(run_id).config)
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

# The page reruns on every change of a setting: read only the runs it lists (reading all of
# 50 real runs took 0.3-0.5 s here), and count the others by their folders.
past_count = sum(run_id != attached for run_id in run_ids())
past_runs = [info for info in list_runs(newest=PAST_RUNS_SHOWN + 1) if info.run_id != attached]
past_runs = past_runs[:PAST_RUNS_SHOWN]
if past_runs:
    with st.expander(f"Past runs ({past_count})", expanded=False):
        st.caption("The most recent first. Open one to see its curves, why it stopped, and to "
                   "train again with its settings.")  # fmt: skip
        for info in past_runs:
            left, middle, right = st.columns([4, 4, 1])
            left.markdown(f"**{info.display_name}** · {info.model_name or '?'}")
            middle.caption(past_run_line(info))
            if right.button("Open", key=f"open_past_{info.run_id}"):
                st.query_params[RUN_QUERY_KEY] = info.run_id
                st.rerun()
        if past_count > PAST_RUNS_SHOWN:
            st.page_link(
                "app_pages/compare.py",
                label=f"All {past_count} runs on Compare",
                icon=":material/compare_arrows:",
            )

st.subheader("New training run")
training_withheld = withheld("training")  # said before the form, not after it is filled
catalogue = shared_memo().get(("model-choices",), model_choices)
entries = {entry.name: entry for entry in catalogue}
names = list(entries)
if st.session_state.get("train_model") not in names:
    st.session_state["train_model"] = RECOMMENDED_MODEL if RECOMMENDED_MODEL in names else names[0]
name = st.selectbox(
    "Model", names, key="train_model", format_func=lambda n: entries[n].label
)  # fmt: skip
entry = entries[name]
st.caption(entry.description)
if entry.supports_pretrained and not entry.weights_available:
    st.info(
        f"ImageNet weights for {entry.name} are not available on this machine (no network); "
        "it can still be trained from scratch.",
        icon=":material/cloud_off:",
    )

# The same starting points as `python -m core train --model NAME [--recipe R]`: a recipe as it
# was measured, or custom settings that start from one of them.
modes = mode_choices(entry.name)
mode_key = f"train_recipe_{entry.name}"
if st.session_state.get(mode_key) not in modes:
    st.session_state[mode_key] = modes[0]
mode = (
    st.radio(
        "Recipe",
        modes,
        format_func=lambda choice: MODE_LABELS[choice],
        horizontal=True,
        key=mode_key,
        help="A recipe is a set of settings measured on the real dataset (docs/benchmarks.md); "
        "custom opens every setting.",
    )
    if len(modes) > 1
    else CUSTOM
)
if mode == CUSTOM:
    # The stored base sets the radio's default; the radio may change it, so read it again.
    custom_base_choice(entry.name, custom_start(entry)[0])
    base, start = custom_start(entry)
    base_options = recipe_options(entry.name, base)
    if len(modes) == 1:
        st.caption(f"{entry.name} has no measured recipe: its settings start from the plain "
                   "defaults.")  # fmt: skip
else:
    base, base_options = mode, recipe_options(entry.name, mode)
    start = setting_values(base_options, entry)
    st.caption(f"**{MODE_LABELS[mode]} recipe**: {describe_recipe(entry.name, mode)}.")
    show_recipe_record(recipe_record(entry.name, mode), dataset.fingerprint)

left, right = st.columns(2)
run_name = left.text_input(
    "Run name (optional)", key="train_run_name", max_chars=MAX_RUN_NAME,
    placeholder="e.g. cnn_fast flips, seed 1", help="Shown in every legend and table instead "
    "of the run's id; it can be changed later on Compare.",
)  # fmt: skip
subset = right.number_input(
    "Images per class (0 = all; small numbers for a quick try)", 0, 100_000, key="train_subset"
)
with st.expander(
    "Advanced: every setting" if mode == CUSTOM else "Advanced: the recipe's settings",
    expanded=mode == CUSTOM,
):
    if mode != CUSTOM:
        st.caption("The recipe's own settings, as measured. Choose **Custom** to change them.")
    values = show_settings(entry, mode, start)
if mode == CUSTOM:
    remember_custom(entry.name, values)
    changed = changed_settings(values, base_options)
    st.caption(
        f"Custom settings are not measured; changed from the {RECIPE_LABELS[base]}: "
        f"{', '.join(changed)}."
        if changed
        else f"Custom settings are not measured; so far they are the {RECIPE_LABELS[base]}."
    )

if training_withheld:
    st.stop()  # no Estimate or Start button on a read-only server
estimate_column, start_column = st.columns([1, 1])
estimate_clicked = estimate_column.button("Estimate time per epoch", key="train_estimate")
start_clicked = start_column.button("Start training", type="primary", key="train_start")

if estimate_clicked or start_clicked:
    try:
        request = make_request(
            data_root=dataset.root,
            model=name,
            recipe=base,
            name=run_name,
            subset_per_class=int(subset) or None,
            **option_changes(values, base_options),
        )
    except ValueError as error:
        st.error(str(error))
        st.stop()
    epochs = request.train.epochs
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
                f"so {epochs} epochs take about "
                f"{format_seconds(estimate.total_seconds(epochs))}."
            )
    else:
        job = manager.submit(request)
        st.query_params[RUN_QUERY_KEY] = job.job_id
        st.rerun()
