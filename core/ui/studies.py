"""The Studies page's parts: define and launch a study, follow its cells, read its results, and
the overfitting view of any run (also used by Compare)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import streamlit as st

from core.evaluation.external import default_name
from core.jobs import JobManager
from core.runs.registry import RunInfo, resolve_run
from core.serving import dataset_folder_refusal
from core.studies.plan import ExternalSet, Study, parse_setting, plan_study
from core.studies.runner import estimate_study
from core.studies.summary import (
    METRIC_LABELS,
    comparisons,
    metric_columns,
    size_table,
    verdict,
)
from core.training.recipes import ROBUST_RECIPES
from core.ui.downloads import csv_download
from core.ui.serving import withheld
from core.ui.study_charts import BANDS, data_efficiency_chart, is_percent, overfitting_chart
from core.ui.training import format_seconds

PLAN_STATE_KEY = "studies_plan"
STUDY_QUERY_KEY = "study"
CHOICE_KEY = "study_choice"
SIZE_CHOICES = ["10", "25", "50", "100", "200", "400", "800", "10%", "25%", "50%", "all"]
BUILT_IN = {"settings": ["cnn_fast", "mobilenet_v2"], "sizes": ["50", "100", "200", "400", "all"]}
SPLIT_SCORES = {
    "validation": "val_accuracy",
    "official test": "accuracy",
    "duplicate-free test": "duplicate_free_accuracy",
    "unseen-scan test": "unseen_scan_accuracy",
}


def setting_choices(models: Sequence[str]) -> list[str]:
    """Each model from its recipe, and 'model:robust' where it has a robust recipe."""
    choices = []
    for model in models:
        choices.append(model)
        if model in ROBUST_RECIPES:
            choices.append(f"{model}:robust")
    return choices


def show_new_study_form(data_root: str, models: Sequence[str], manager: JobManager) -> None:
    """Models, sizes, seeds and options; 'Estimate' plans the study and measures its time on
    this machine; 'Launch' saves it and queues it. A read-only server offers none of it."""
    if withheld("planning or launching a study"):
        return
    with st.form("new_study"):
        settings = st.multiselect(
            "Model settings (each from its recipe)", setting_choices(models),
            default=[name for name in BUILT_IN["settings"] if name in models], key="study_settings",
        )  # fmt: skip
        sizes = st.multiselect(
            "Training-set sizes (images per class, a share of each class, or all)", SIZE_CHOICES,
            default=BUILT_IN["sizes"], key="study_sizes",
        )  # fmt: skip
        left, middle, right = st.columns(3)
        seeds = left.number_input("Seeds", 1, 10, 3, key="study_seeds")
        epochs = middle.number_input(
            "Epochs (0 = each recipe's)", 0, 500, 0, key="study_epochs",
            help="Small training sets train more epochs, to at least the minimum steps.",
        )  # fmt: skip
        min_steps = right.number_input(
            "Minimum optimizer steps per cell", 1, 10_000, 300, key="study_min_steps",
            help="A small training set has few steps per epoch: its cells train more epochs "
            "(at most 4 x) so a network from scratch is not judged after a few dozen steps.",
        )  # fmt: skip
        stress = st.checkbox("Stress-test every cell (moderate shifts)", True, key="study_stress")
        external = st.text_input(
            "External set (optional): a labelled folder every cell is also scored on",
            key="study_external",
        )  # fmt: skip
        name = st.text_input("Name (optional)", key="study_name")
        estimate_clicked = st.form_submit_button("Plan and estimate the time")
    if estimate_clicked:
        if external.strip() and (refusal := dataset_folder_refusal(external.strip())):
            st.session_state.pop(PLAN_STATE_KEY, None)
            st.error(f"Cannot plan this study: {refusal}")
            return
        try:
            changes = {"epochs": int(epochs)} if epochs else {}
            externals = (
                [ExternalSet(default_name(Path(external.strip())), external.strip())]
                if external.strip()
                else []
            )
            with st.spinner("Planning the cells and timing a few batches of each model..."):
                study = plan_study(
                    data_root=data_root, settings=[parse_setting(s, changes) for s in settings],
                    sizes=list(sizes), seeds=int(seeds), name=name.strip(),
                    min_steps=int(min_steps), stress=stress, externals=externals,
                )  # fmt: skip
                estimate = estimate_study(study)
        except (ValueError, OSError) as error:
            st.session_state.pop(PLAN_STATE_KEY, None)
            st.error(f"Cannot plan this study: {error}")
            return
        st.session_state[PLAN_STATE_KEY] = (study, estimate.total_seconds)
    planned = st.session_state.get(PLAN_STATE_KEY)
    if planned is None:
        return
    study, seconds = planned
    busy = manager.active()
    st.info(
        f"**{len(study.cells)} cells** ({len(study.settings)} settings x {len(study.sizes)} "
        f"sizes x {len(study.seeds)} seeds): about **{format_seconds(seconds)}** on this "
        "machine, training and evaluation, one cell after another."
        + (" A job is training now: the study waits for it." if busy else "")
    )
    if st.button("Launch the study", type="primary", key="study_launch"):
        study.save()
        manager.submit_study(study.study_id)
        st.session_state.pop(PLAN_STATE_KEY, None)
        st.query_params[STUDY_QUERY_KEY] = study.study_id
        st.rerun()


def cells_table(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The cells as the page lists them: where each is, and its score so far."""
    columns = ["setting", "size", "seed", "n_train", "epochs", "state", "run_id"]
    table = frame[columns].copy()
    if metric in frame:
        table[METRIC_LABELS.get(metric, metric)] = frame[metric]
    if "train_seconds" in frame:
        table["train s"] = frame["train_seconds"].round(0)
    return table


def show_results(study: Study, frame: pd.DataFrame) -> None:
    """The data-efficiency charts, the per-size table with verdicts, and CSV downloads."""
    done = frame[frame["state"] == "completed"]
    if done.empty:
        st.info("No cell has completed yet: the charts appear with the first one.")
        return
    available = [column for column in metric_columns(frame) if done[column].notna().any()]
    scores = [c for c in available if c.endswith(("accuracy", "macro_f1")) and c != "epochs_run"]
    default = "unseen_scan_accuracy" if "unseen_scan_accuracy" in scores else scores[0]
    left, right = st.columns(2)
    metric = left.selectbox(
        "Score", scores, index=scores.index(default), key="study_metric",
        format_func=lambda column: METRIC_LABELS.get(column, column.replace("_", " ")),
    )  # fmt: skip
    band = right.radio("Band", list(BANDS), horizontal=True, key="study_band")
    table = size_table(study, frame)
    names = [setting.name for setting in study.settings]
    title = METRIC_LABELS.get(metric, metric)
    st.plotly_chart(
        data_efficiency_chart(table, frame, metric, title=title, band=band, settings=names),
        width="stretch", key="study_chart_score",
    )  # fmt: skip
    compared = [c for c in comparisons(study, frame, metric) if c["difference_mean"] is not None]
    for comparison in compared:
        st.markdown(f"- {verdict(comparison, percent=is_percent(metric))}")
    if compared:
        st.caption(
            "Paired by seed: for one seed both settings train on the same images and are "
            "scored on the same test images. The interval is a t-interval over the seeds' "
            "differences (paired t-test), which counts how much the seed moves a score; a test "
            "over one seed's images would ignore that and be too sure."
        )
    time_column, epoch_column = st.columns(2)
    for column, metric_name, key in (
        (time_column, "train_seconds", "study_chart_time"),
        (epoch_column, "best_epoch", "study_chart_epoch"),
    ):
        if metric_name in available:
            column.plotly_chart(
                data_efficiency_chart(
                    table, frame, metric_name, title=METRIC_LABELS[metric_name], band=band,
                    settings=names,
                ),
                width="stretch", key=key,
            )  # fmt: skip
    shown = table[["setting", "size", "n_train", "seeds"]].copy()
    for column in (metric, "train_seconds", "generalization_gap"):
        if f"{column}_mean" in table:
            shown[f"{column} mean"] = table[f"{column}_mean"]
            shown[f"{column} sd"] = table[f"{column}_sd"]
    st.dataframe(shown, hide_index=True, width="stretch")
    left, right = st.columns(2)
    csv_download(
        "Download the cells (CSV)", frame, file_name=f"{study.study_id}-cells.csv",
        key="study_cells_csv", container=left,
    )  # fmt: skip
    csv_download(
        "Download the per-size table (CSV)", table, file_name=f"{study.study_id}-sizes.csv",
        key="study_sizes_csv", container=right,
    )  # fmt: skip
    show_study_overfitting(study, frame, table, band, names)


def show_study_overfitting(
    study: Study, frame: pd.DataFrame, table: pd.DataFrame, band: str, names: list[str]
) -> None:
    """The generalization gap against size per setting, then any one cell's curves."""
    st.subheader("Overfitting")
    if "generalization_gap_mean" in table and table["generalization_gap_mean"].notna().any():
        st.plotly_chart(
            data_efficiency_chart(
                table, frame, "generalization_gap", band=band, settings=names,
                title="train - validation accuracy at the best epoch",
            ),
            width="stretch", key="study_chart_gap",
        )  # fmt: skip
    done = frame[frame["state"] == "completed"]
    keys = {
        f"{row.setting} / {row.size} / seed {row.seed}": row.run_id for row in done.itertuples()
    }
    chosen = st.selectbox("A cell's training curves", list(keys), key="study_overfitting_cell")
    if chosen:
        show_overfitting(resolve_run(keys[chosen]), key="study_overfitting")


def show_overfitting(info: RunInfo, *, key: str) -> None:
    """Train vs validation loss and accuracy per epoch with the gap shaded, the best epoch
    marked, and the gaps between validation, the test subsets and external sets as numbers."""
    metrics = info.metrics
    st.plotly_chart(
        overfitting_chart(info.history, metrics.best_epoch if metrics else None),
        width="stretch", key=f"{key}_chart",
    )  # fmt: skip
    evaluation = metrics.evaluation if metrics else None
    scores: dict[str, float | None] = {}
    for label, column in SPLIT_SCORES.items():
        split = {"val_accuracy": "val", "accuracy": "test"}.get(
            column, column.removesuffix("_accuracy") + "_test"
        )
        report = evaluation.split(split) if evaluation else None
        scores[label] = report.accuracy if report else None
    for name, record in (metrics.external if metrics else {}).items():
        scores[f"external {name}"] = record.report.accuracy if record.report else None
    best = next((e for e in info.history if metrics and e.epoch == metrics.best_epoch), None)
    train = best.train_accuracy if best else None
    columns = st.columns(len(scores) + 1)
    columns[0].metric("train (best epoch)", "n/a" if train is None else f"{train:.1%}")
    validation = scores.get("validation")
    for column, (label, value) in zip(columns[1:], scores.items(), strict=True):
        gap = (
            None
            if value is None or validation is None or label == "validation"
            else value - validation
        )
        delta = None if gap is None else f"{gap * 100:+.1f} points vs validation"
        column.metric(label, "not evaluated" if value is None else f"{value:.1%}", delta)


def show_run_overfitting(selected: Sequence[RunInfo], labels: dict[str, str]) -> None:
    """Compare's overfitting view: one of the selected runs' curves and gaps."""
    if not selected:
        st.info("Select runs above to see how far their training and validation curves part.")
        return
    by_label = {labels[info.run_id]: info for info in selected}
    chosen = st.selectbox("Run", list(by_label), key="compare_overfitting_run")
    show_overfitting(by_label[chosen], key="compare_overfitting")


def choose_study(studies: list[Study]) -> Study | None:
    """A select box of the studies (newest first), following ?study= when it names one."""
    if not studies:
        return None
    ids = [study.study_id for study in studies]
    wanted = st.query_params.get(STUDY_QUERY_KEY)
    # The link (?study=, set on launch) wins over the box's remembered choice, which would
    # otherwise stay on the study shown before a new one was launched.
    if wanted in ids:
        st.session_state[CHOICE_KEY] = wanted
    elif st.session_state.get(CHOICE_KEY) not in ids:
        st.session_state[CHOICE_KEY] = ids[0]
    by_id = {study.study_id: study for study in studies}

    def label(study_id: str) -> str:  # no state here: it changes while the select box stays
        study = by_id[study_id]
        name = f"{study.name} · " if study.name else ""
        settings = " vs ".join(setting.name for setting in study.settings)
        return f"{name}{settings} · {len(study.cells)} cells · {study_id}"

    chosen = st.selectbox("Study", ids, format_func=label, key=CHOICE_KEY)
    if chosen != wanted:
        st.query_params[STUDY_QUERY_KEY] = chosen
    return by_id[chosen]
