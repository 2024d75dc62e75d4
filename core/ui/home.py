"""The Home page's workflow: the five steps from a dataset to an explained prediction, each
with its state read from disk and the one action that moves it on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.evaluation.evaluate import SPLIT_LABELS, stored_evaluation
from core.evaluation.external import stored_externals
from core.evaluation.run_selection import short_label
from core.evaluation.stress import stored_stress
from core.jobs import JobSnapshot
from core.runs.registry import RunInfo
from core.ui.training import RUN_QUERY_KEY


@dataclass(frozen=True)
class Step:
    """One step of the workflow as Home shows it."""

    title: str
    state: str  # one line: what has been done, read from disk
    done: bool
    action: str  # the button's label
    page: str  # the page the button opens
    query: dict[str, str] = field(default_factory=dict)


def runs_of(infos: Sequence[RunInfo], root: Path) -> list[RunInfo]:
    """The usable runs trained on the dataset at `root`."""
    wanted = Path(root).resolve()
    return [
        info
        for info in infos
        if info.usable and info.config is not None
        and Path(info.config.data.root).resolve() == wanted
    ]  # fmt: skip


def best_evaluated(runs: Sequence[RunInfo]) -> tuple[RunInfo, dict[str, float]] | None:
    """The run with the best official test accuracy, and its accuracy on each test split."""
    scored = []
    for info in runs:
        evaluation = stored_evaluation(info)
        if evaluation is None:
            continue
        accuracies = {
            split: report.accuracy
            for split in ("test", "duplicate_free_test", "unseen_scan_test")
            if (report := evaluation.split(split)) is not None and report.accuracy is not None
        }
        if "test" in accuracies:
            scored.append((info, accuracies))
    return max(scored, key=lambda item: item[1]["test"]) if scored else None


def job_line(snapshot: JobSnapshot) -> str:
    """'Training cnn_fast: epoch 3 of 12 (25%)', or the job's queue state."""
    if snapshot.state == "queued":
        return f"{snapshot.model} is queued"
    if snapshot.total_epochs:
        return (
            f"training {snapshot.model}: epoch {snapshot.epoch} of {snapshot.total_epochs} "
            f"({snapshot.fraction:.0%})"
        )
    return f"preparing {snapshot.model}"


def workflow_steps(
    *, images: int, classes: int, audited: bool, runs: Sequence[RunInfo],
    running: JobSnapshot | None,
) -> list[Step]:  # fmt: skip
    """The five steps for a dataset of `images` images in `classes` classes."""
    audit = Step(
        "Look at the data and audit it for leakage",
        f"{images:,} images in {classes} classes; "
        + ("audited: the stricter test subsets are ready." if audited else
           "not audited yet: the audit finds test images that copy training images."),
        audited, "Open the audit" if audited else "Audit the data", "app_pages/dataset.py",
    )  # fmt: skip
    if running is not None:
        trained = f"{len(runs)} trained run(s); now {job_line(running)}."
    elif runs:
        trained = f"{len(runs)} trained run(s) on this dataset."
    else:
        trained = "no run yet: start with the fast recipe of the recommended model."
    train = Step(
        "Train a model", trained, bool(runs),
        "Watch the training" if running is not None else "Train a recipe", "app_pages/train.py",
    )  # fmt: skip
    best = best_evaluated(runs)
    if best is None:
        compared = "no run evaluated yet: Compare evaluates runs on the test splits."
    else:
        info, accuracies = best
        scores = ", ".join(f"{acc:.1%} {SPLIT_LABELS[split]}" for split, acc in accuracies.items())
        compared = f"best: {short_label(info)}, accuracy {scores}."
    compare = Step("Compare runs", compared, best is not None, "Compare runs",
                   "app_pages/compare.py")  # fmt: skip
    stressed = [info for info in runs if stored_stress(info) is not None]
    external = [info for info in runs if stored_externals(info)]
    generalized = bool(stressed or external)
    generalization = Step(
        "Test generalization outside the source",
        f"{len(stressed)} run(s) stress-tested under scanner-like shifts, {len(external)} scored "
        "on external sets." if generalized else
        "nothing tested off-source yet: stress tests and external sets are on Compare.",
        generalized, "Stress-test on Compare", "app_pages/compare.py",
    )  # fmt: skip
    classify_query = {RUN_QUERY_KEY: best[0].run_id} if best is not None else {}
    classify = Step(
        "Classify a slice and see where the model looked",
        "samples from the test images are one click away; uploads (JPEG, PNG, DICOM) too."
        if runs else "needs a trained run first.",
        False, "Classify a sample", "app_pages/classify.py", classify_query,
    )  # fmt: skip
    return [audit, train, compare, generalization, classify]


def next_step(steps: Sequence[Step]) -> int:
    """The position of the first step not done (the last one when all are)."""
    return next((index for index, step in enumerate(steps) if not step.done), len(steps) - 1)
