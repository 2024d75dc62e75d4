"""The process-wide job manager and the Train page's live view and charts."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.figures.palette import REFERENCE, SPLIT_COLOURS, translucent
from core.jobs import JobManager, JobSnapshot
from core.runs.registry import RunInfo, mark_interrupted_runs
from core.ui.memo import shared_memo

RUN_QUERY_KEY = "run"  # ?run=RUN_ID: the run a page opens on (Train, Classify, Inside)


@st.cache_resource(show_spinner=False)
def job_manager() -> JobManager:
    """The one job manager of this server: every session and tab sees the same jobs."""
    return JobManager()


def mark_interrupted_runs_once() -> None:
    """At server start, runs left 'running' by a dead process become 'interrupted'."""
    shared_memo().get(("interrupted-runs-marked",), mark_interrupted_runs)


def format_seconds(seconds: float | None) -> str:
    """'1 h 02 min', '3 min 05 s', '42 s' or '?'."""
    if seconds is None:
        return "?"
    seconds = round(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
    if seconds >= 60:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds} s"


def progress_text(snapshot: JobSnapshot) -> str:
    """One line: state, epoch, batch, throughput and time left."""
    if snapshot.state == "queued":
        return f"Queued (position {snapshot.queue_position or '?'}): waits for the running job"
    if snapshot.state == "preparing":
        stage = snapshot.stage_in_progress or snapshot.stage
        return f"Preparing: {stage.message}" if stage else "Preparing: loading images"
    if snapshot.state != "running":
        return f"{snapshot.state.capitalize()}" + (
            f": {snapshot.message}" if snapshot.message else ""
        )
    return (
        f"Epoch {snapshot.epoch}/{snapshot.total_epochs} · batch {snapshot.batch}/"
        f"{snapshot.total_batches} · {snapshot.images_per_second:.0f} images/s · "
        f"about {format_seconds(snapshot.eta_seconds)} left"
    )


def past_run_line(info: RunInfo) -> str:
    """One line about a stored run: status, best validation accuracy, time, when."""
    status = "damaged" if info.damaged else info.status
    accuracies = [epoch.val_accuracy for epoch in info.history if epoch.val_accuracy is not None]
    parts = [status]
    if accuracies:
        parts.append(f"best validation {max(accuracies):.1%}")
    if info.metrics and info.metrics.train_seconds is not None:
        parts.append(f"trained {format_seconds(info.metrics.train_seconds)}")
    if info.created_at:
        parts.append(info.created_at.strftime("%Y-%m-%d %H:%M"))
    return " · ".join(parts)


def job_fraction(snapshot: JobSnapshot) -> float:
    """How full the job's main bar is: the current step's share while preparing, else the run's."""
    if snapshot.state == "preparing" and snapshot.stage is not None:
        return snapshot.stage.fraction
    return min(1.0, snapshot.fraction)


def show_job_progress(snapshot: JobSnapshot) -> None:
    """The job's bar with its line; while training, a second bar for a long step under way
    (caching the frozen layers' output in the first epochs, evaluating at the end)."""
    st.progress(job_fraction(snapshot), text=progress_text(snapshot))
    stage = snapshot.stage_in_progress
    if snapshot.state == "running" and stage is not None:
        st.progress(stage.fraction, text=stage.message)


def history_chart(
    history: list[dict], batch_losses: tuple[tuple[float, float], ...] = ()
) -> go.Figure:
    """Loss (left) and accuracy (right) per epoch, train and validation, plus batch losses."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"))
    if batch_losses:
        steps, losses = zip(*batch_losses, strict=True)
        figure.add_trace(
            go.Scatter(x=steps, y=losses, mode="lines", name="train loss (batches)",
                       line={"width": 1, "color": translucent(SPLIT_COLOURS["train"], 0.35)}),
            row=1, col=1,
        )  # fmt: skip
    columns = ["epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy"]
    # A damaged history line may lack a column or hold text: plot what is numeric, skip the rest.
    frame = pd.DataFrame(list(history)).reindex(columns=columns)
    frame = frame.apply(pd.to_numeric, errors="coerce").dropna(subset=["epoch"])
    if not frame.empty:
        for column, name, colour, panel in (
            ("train_loss", "train loss", SPLIT_COLOURS["train"], 1),
            ("val_loss", "validation loss", SPLIT_COLOURS["val"], 1),
            ("train_accuracy", "train accuracy", SPLIT_COLOURS["train"], 2),
            ("val_accuracy", "validation accuracy", SPLIT_COLOURS["val"], 2),
        ):
            dash = "dot" if column.startswith("train") else "solid"
            trace = go.Scatter(
                x=frame["epoch"], y=frame[column], mode="lines+markers", name=name,
                line={"color": colour, "dash": dash},
            )  # fmt: skip
            figure.add_trace(trace, row=1, col=panel)
    if frame.empty:  # the first epoch is still training: say why the panels are empty
        for panel, what in ((1, "Epoch losses"), (2, "Accuracy")):
            figure.add_annotation(
                text=f"{what} appear after the first epoch",
                xref=f"x{panel if panel > 1 else ''} domain",
                yref=f"y{panel if panel > 1 else ''} domain", x=0.5, y=0.5,
                showarrow=False, font={"color": REFERENCE},
            )  # fmt: skip
    figure.update_xaxes(title_text="epoch")
    figure.update_layout(
        height=360, margin={"t": 40, "b": 10}, legend={"orientation": "h", "y": -0.25}
    )
    return figure
