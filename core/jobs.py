"""Background training jobs: one worker thread, a visible queue, cancel, progress snapshots.

A job trains a request, then evaluates the run, or runs a study's cells one after another:
this layer sits above training, evaluation and studies.

The training thread never touches Streamlit: it updates a small `Job` object under a lock,
and pages read copies of it (`Job.snapshot()`). On a 2-core machine one job trains at a time;
the others wait in the queue, in order, and can be cancelled before they start.
"""

from __future__ import annotations

import copy
import queue
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from core.evaluation.evaluate import evaluate_run
from core.events import PROGRESS, Events, StageProgress
from core.runs.layout import new_run_id
from core.studies.plan import Study
from core.studies.runner import run_study
from core.training.fit import FitResult, fit
from core.training.progress import BatchEvent
from core.training.request import TrainingRequest

ACTIVE_STATES = ("queued", "preparing", "running")
STUDY_JOB = "study"  # the `model` of a study's job
MAX_BATCH_POINTS = 600  # charts stay light: batch history is thinned beyond this


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's state for a page or a test to read."""

    job_id: str
    model: str
    state: str  # queued | preparing | running | completed | cancelled | failed
    submitted_at: float
    epoch: int = 0
    total_epochs: int = 0
    batch: int = 0
    total_batches: int = 0
    fraction: float = 0.0
    eta_seconds: float | None = None
    images_per_second: float = 0.0
    history: tuple[dict[str, Any], ...] = ()
    batch_losses: tuple[tuple[float, float], ...] = ()  # (epoch + batch fraction, loss)
    message: str | None = None
    error: str | None = None
    result: FitResult | None = None
    queue_position: int | None = None
    # The latest long step (indexing, decoding, the audit, caching frozen layers, evaluating).
    stage: StageProgress | None = None

    @property
    def active(self) -> bool:
        """Still queued or training."""
        return self.state in ACTIVE_STATES

    @property
    def stage_in_progress(self) -> StageProgress | None:
        """The long step under way now, if one is (not yet finished)."""
        return self.stage if self.stage is not None and not self.stage.finished else None


class Job:
    """One training request, or one study (a run per cell), and its live progress, shared by
    the worker and the readers."""

    def __init__(
        self, job_id: str, request: TrainingRequest | None = None, study_id: str | None = None
    ) -> None:
        self.job_id = job_id
        self.request = request
        self.study_id = study_id
        self.cancel_event = threading.Event()
        self._lock = threading.Lock()
        model = request.model.name if request is not None else STUDY_JOB
        self._snapshot = JobSnapshot(job_id, model, "queued", time.time())

    def snapshot(self) -> JobSnapshot:
        """The current state (an immutable copy)."""
        with self._lock:
            return self._snapshot

    def update(self, **changes: Any) -> None:
        """Change fields of the snapshot atomically."""
        with self._lock:
            self._snapshot = replace(self._snapshot, **changes)

    def cancel(self) -> None:
        """Ask the job to stop: within one batch if training, at once if queued."""
        self.cancel_event.set()
        with self._lock:
            if self._snapshot.state == "queued":
                self._snapshot = replace(
                    self._snapshot, state="cancelled", message="cancelled before it started"
                )

    def on_batch(self, event: BatchEvent) -> None:
        """Event-bus subscriber: live progress."""
        with self._lock:
            step = event.epoch - 1 + event.batch / event.total_batches
            points = (*self._snapshot.batch_losses, (step, event.loss))
            if len(points) > MAX_BATCH_POINTS:
                points = points[::2]
            self._snapshot = replace(
                self._snapshot, state="running", epoch=event.epoch, total_epochs=event.total_epochs,
                batch=event.batch, total_batches=event.total_batches, fraction=event.fraction,
                eta_seconds=event.eta_seconds, images_per_second=event.images_per_second,
                batch_losses=points,
            )  # fmt: skip

    def on_epoch(self, record: dict[str, Any]) -> None:
        """Event-bus subscriber: one more epoch of history."""
        with self._lock:
            self._snapshot = replace(
                self._snapshot, history=(*self._snapshot.history, copy.deepcopy(record))
            )

    def on_message(self, message: str) -> None:
        """Event-bus subscriber: a notice for the user (e.g. batch size halved)."""
        self.update(message=message)

    def on_progress(self, stage: StageProgress) -> None:
        """Event-bus subscriber: how far data preparation, caching or evaluation is."""
        self.update(stage=stage)


@dataclass
class JobManager:
    """Process-wide: owns the queue and the single worker thread."""

    jobs: dict[str, Job] = field(default_factory=dict)
    _queue: queue.Queue[Job] = field(default_factory=queue.Queue)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _worker: threading.Thread | None = None

    def submit(self, request: TrainingRequest) -> Job:
        """Queue a training run; its job id is the run id it will have on disk."""
        job = Job(new_run_id(request.model.name), request)
        with self._lock:
            self._enqueue(job)
        return job

    def submit_study(self, study_id: str) -> Job:
        """Queue a study (saved by `core.studies.plan`): its cells train one after another in
        this queue's worker; the job's id is the study id. ValueError when it is queued or
        running already."""
        with self._lock:
            existing = self.jobs.get(study_id)
            if existing is not None and existing.snapshot().active:
                raise ValueError(f"study {study_id} is already queued or running")
            job = Job(study_id, study_id=study_id)
            self._enqueue(job)
        return job

    def _enqueue(self, job: Job) -> None:
        """Add `job` to the queue and make sure the worker runs (the caller holds the lock)."""
        self.jobs[job.job_id] = job
        self._queue.put(job)
        if self._worker is None or not self._worker.is_alive():
            self._worker = threading.Thread(target=self._work, name="training-worker", daemon=True)
            self._worker.start()

    def get(self, job_id: str) -> Job | None:
        """The job with this id (= run id), if this process ran or queued it."""
        with self._lock:
            return self.jobs.get(job_id)

    def snapshots(self) -> list[JobSnapshot]:
        """Every job of this process, oldest first, with queue positions filled in."""
        with self._lock:
            jobs = list(self.jobs.values())
        snapshots = [job.snapshot() for job in jobs]
        waiting = [snapshot.job_id for snapshot in snapshots if snapshot.state == "queued"]
        return [
            replace(snapshot, queue_position=waiting.index(snapshot.job_id) + 1)
            if snapshot.job_id in waiting
            else snapshot
            for snapshot in snapshots
        ]

    def active(self) -> JobSnapshot | None:
        """The job training now, if any."""
        return next(
            (
                snapshot
                for snapshot in self.snapshots()
                if snapshot.state in ("preparing", "running")
            ),
            None,
        )

    def cancel_all(self) -> None:
        """Cancel every queued and running job (tests, shutdown)."""
        with self._lock:
            jobs = list(self.jobs.values())
        for job in jobs:
            job.cancel()

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Block until no job is active; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(snapshot.active for snapshot in self.snapshots()):
                return True
            time.sleep(0.05)
        return False

    def _work(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=5.0)
            except queue.Empty:
                with self._lock:
                    if self._queue.empty():
                        self._worker = None
                        return
                continue
            if job.cancel_event.is_set():
                continue
            if job.study_id is not None:
                _run_study_job(job)
            else:
                _run_job(job)


def _evaluate_quietly(run_id: str, events: Events) -> str | None:
    """Evaluate a finished run for the Compare page; a failure is reported, never raised."""
    try:
        evaluate_run(run_id, events=events)
    except Exception as error:  # the run itself is complete and fine: only report this
        return f"trained, but the evaluation failed: {error}"
    return None


def _job_events(job: Job) -> Events:
    """An event bus that feeds the job's snapshot."""
    events = Events()
    events.add_callback("batch", job.on_batch)
    events.add_callback("epoch", job.on_epoch)
    events.add_callback("message", job.on_message)
    events.add_callback(PROGRESS, job.on_progress)
    return events


def _run_study_job(job: Job) -> None:
    """Run a study's remaining cells on this thread; the snapshot follows the current cell."""
    assert job.study_id is not None
    job.update(state="preparing", message="starting the study")

    def on_change(study: Study) -> None:
        training = (study.message or "").startswith("training")
        # Each cell's epochs start again at 1: the live charts show the current cell only.
        job.update(
            message=study.message, **({"history": (), "batch_losses": ()} if training else {})
        )

    try:
        study = run_study(
            job.study_id, events=_job_events(job), cancel=job.cancel_event, on_change=on_change
        )
        state = {"finished": "completed", "cancelled": "cancelled"}.get(study.state, "failed")
        job.update(state=state, message=study.message, eta_seconds=0.0)
    except Exception as error:  # the thread must survive any failure and report it
        job.update(state="failed", error=f"{type(error).__name__}: {error}", eta_seconds=None)


def _run_job(job: Job) -> None:
    """Train one job on this thread; every outcome ends in a terminal snapshot."""
    assert job.request is not None
    events = _job_events(job)
    job.update(state="preparing", message="loading images")
    try:
        result = fit(job.request, run_id=job.job_id, events=events, cancel=job.cancel_event)
        message = result.message
        if result.status == "completed":
            job.update(message="evaluating on validation, the official test and stricter subsets")
            message = _evaluate_quietly(result.run_id, events) or message
        job.update(state=result.status, result=result, message=message, eta_seconds=0.0)
    except Exception as error:  # the thread must survive any failure and report it
        job.update(state="failed", error=f"{type(error).__name__}: {error}", eta_seconds=None)
