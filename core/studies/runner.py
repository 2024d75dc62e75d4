"""Run a study's cells one after another: train, evaluate, stress-test, score external sets.

A cell is an ordinary run (`core.training.fit`), tagged with its study cell in config.json.
The study's file is saved after every change of state. `run_study` continues a study from
where it stopped: completed cells are kept, and a cell that was running when its process died
(its run is 'interrupted'), was cancelled or failed is trained again as a new run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from core.evaluation.evaluate import evaluate_run
from core.evaluation.external import evaluate_external
from core.evaluation.stress import stress_run
from core.events import Events, report_progress
from core.models.build import build_model
from core.runs.layout import LIVE_STATUSES, iso, new_run_id, utcnow
from core.runs.records import StudyRecord
from core.runs.registry import RunError, resolve_run
from core.studies.plan import Cell, Study, StudyError, load_study, parse_size
from core.training.estimate import estimate_epoch
from core.training.fit import fit
from core.training.request import TrainingRequest, make_request

STUDY = "study"  # the progress stage name of a study's cells


def cell_request(study: Study, cell: Cell) -> TrainingRequest:
    """The training request of `cell`: its setting's recipe and changes, its planned epochs, its
    nested sample drawn with its seed, on the study's split."""
    setting = study.setting(cell.setting)
    size = parse_size(cell.size)
    request = make_request(
        data_root=study.data_root,
        model=setting.model,
        recipe=setting.recipe,
        **{
            **setting.changes,
            "epochs": cell.epochs,
            "seed": cell.seed,
            "split_seed": study.split_seed,
            "train_per_class": size.per_class,
            "train_fraction": size.fraction,
        },
    )
    return replace(request, study=StudyRecord(study.study_id, cell.setting, cell.size, cell.seed))


def _cell_run_is_live(cell: Cell) -> bool:
    if cell.state != "running" or cell.run_id is None:
        return False
    try:
        return resolve_run(cell.run_id).status in LIVE_STATUSES
    except RunError:
        return False


def reopen(study: Study) -> list[Cell]:
    """Put every cell that did not complete back to pending; returns them. StudyError when a
    cell's run is still training in a live process (the study is running elsewhere)."""
    live = [cell for cell in study.cells if _cell_run_is_live(cell)]
    if live:
        raise StudyError(
            f"study {study.study_id} is running ({live[0].key} is training as "
            f"{live[0].run_id}); cancel it there first"
        )
    reopened = [cell for cell in study.cells if cell.state != "completed"]
    for cell in reopened:
        cell.state, cell.error = "pending", None
    return reopened


def _evaluate_cell(study: Study, run_id: str, events: Events) -> None:
    """Validation, the official test and its stricter subsets; then the stress shifts at
    moderate severity and the study's external sets."""
    evaluate_run(run_id, events=events)
    if study.stress:
        stress_run(run_id, bootstrap_samples=0, moderate_only=True, events=events)
    for external in study.externals:
        evaluate_external(run_id, external.folder, name=external.name, events=events)


def run_study(
    study_id: str,
    *,
    events: Events | None = None,
    cancel: threading.Event | None = None,
    on_change: Callable[[Study], None] | None = None,
) -> Study:
    """Train and evaluate every cell of the study that has not completed, in order; returns the
    study as it ends ('finished', 'cancelled' or 'incomplete' when a cell failed)."""
    events = events or Events()
    cancel = cancel or threading.Event()
    study = load_study(study_id)
    reopen(study)

    def changed(message: str | None = None) -> None:
        study.message = message
        study.save()
        if on_change is not None:
            on_change(study)

    study.state = "running"
    changed("starting")
    todo = [cell for cell in study.cells if cell.state != "completed"]
    for number, cell in enumerate(todo, start=1):
        if cancel.is_set():
            break
        report_progress(events, STUDY, number - 1, len(todo), f"Cell {number}/{len(todo)}")
        cell.state, cell.attempts = "running", cell.attempts + 1
        cell.run_id, cell.started_at, cell.finished_at = (
            new_run_id(study.setting(cell.setting).model),
            iso(utcnow()),
            None,
        )
        changed(f"training {cell.key}")
        try:
            result = fit(
                cell_request(study, cell), run_id=cell.run_id, events=events, cancel=cancel
            )
            if result.status == "completed":
                changed(f"evaluating {cell.key}")
                _evaluate_cell(study, result.run_id, events)
            cell.state = result.status if result.status in ("completed", "cancelled") else "failed"
            cell.error = result.message if cell.state == "failed" else None
        except Exception as error:  # one cell's failure must not lose the study's other cells
            cell.state, cell.error = "failed", f"{type(error).__name__}: {error}"
        cell.finished_at = iso(utcnow())
        changed(f"{cell.key}: {cell.state}")
    counts = study.counts()
    if counts["completed"] == len(study.cells):
        study.state = "finished"
    elif cancel.is_set():
        study.state = "cancelled"
    else:
        study.state = "incomplete"
    report_progress(events, STUDY, len(todo), len(todo), f"Study {study.state}")
    changed(f"{counts['completed']} of {len(study.cells)} cells completed")
    return study


@dataclass(frozen=True)
class StudyEstimate:
    """Seconds the study's remaining cells will take on this machine, measured per setting."""

    cell_seconds: dict[str, float]  # cell key -> seconds (training and evaluation)

    @property
    def total_seconds(self) -> float:
        """All remaining cells together."""
        return sum(self.cell_seconds.values())


def _inference_images_per_second(request: TrainingRequest, classes: int) -> float:
    """Forward passes per second of the setting's whole model in evaluation mode (one batch;
    random weights time the same as trained ones)."""
    model, _ = build_model(
        replace(request.model, num_classes=classes, pretrained=False, freeze="none")
    )
    model.eval()
    size = request.data.image_size
    batch = torch.zeros(32, request.model.in_channels, size, size)
    with torch.inference_mode():
        model(batch[:4])
        started = time.perf_counter()
        model(batch)
    return len(batch) / max(time.perf_counter() - started, 1e-6)


def estimate_study(study: Study, events: Events | None = None) -> StudyEstimate:
    """Measure a few training steps and an inference batch per setting (at its full training
    part), and scale by each remaining cell's images, epochs and evaluated images."""
    measured = {}
    for setting in study.settings:
        report_progress(events, "estimate", len(measured), len(study.settings), setting.name)
        request = make_request(
            data_root=study.data_root, model=setting.model, recipe=setting.recipe, **setting.changes
        )
        measured[setting.name] = (
            estimate_epoch(request),
            _inference_images_per_second(request, len(study.class_counts)),
        )
    report_progress(events, "estimate", len(measured), len(study.settings), "estimated")
    cells = {}
    for cell in study.cells:
        if cell.state == "completed":
            continue
        epoch, infer_rate = measured[cell.setting]
        share = cell.train_images / max(epoch.train_images, 1)
        train = epoch.cache_seconds * share + cell.epochs * (
            cell.train_images / epoch.train_images_per_second
            + epoch.val_images / epoch.eval_images_per_second
        )
        cells[cell.key] = train + study.evaluated_images / infer_rate
    return StudyEstimate(cells)
