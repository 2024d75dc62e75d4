"""Runs that can classify, and their predictors cached once per server process."""

from __future__ import annotations

from dataclasses import dataclass

from core import runs
from core.inference import Predictor
from core.ui.memo import shared_memo


@dataclass(frozen=True)
class RunChoice:
    """A completed run with weights, as the Classify page lists it."""

    run_id: str
    label: str
    val_accuracy: float | None


def usable_runs() -> list[RunChoice]:
    """Completed, undamaged runs with weights, newest first."""
    choices = []
    for info in runs.list_runs():
        if info.status != "completed" or info.damaged or not info.has_weights:
            continue
        accuracy = (info.metrics or {}).get("val", {}).get("accuracy")
        model = (info.config or {}).get("model", {}).get("name", "?")
        shown = f"{accuracy:.1%} val" if accuracy is not None else "no val metric"
        choices.append(RunChoice(info.run_id, f"{info.display_name} · {model} · {shown}", accuracy))
    return choices


def best_run_index(choices: list[RunChoice]) -> int:
    """Position of the run with the best validation accuracy (the default choice)."""
    scores = [
        choice.val_accuracy if choice.val_accuracy is not None else -1.0 for choice in choices
    ]
    return scores.index(max(scores))


def load_predictor(run_id: str) -> Predictor:
    """The run's predictor, built once per server process (thread-safe, shared by sessions)."""
    return shared_memo().get(("predictor", run_id), lambda: Predictor.from_run(run_id))
