"""Training progress: batch events with throughput and ETA, and the per-epoch history records."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from core.events import Events, StageProgress
from core.runs.writer import RunWriter
from core.training.loops import BatchReport, EpochStats, Evaluation


@dataclass(frozen=True)
class BatchEvent:
    """Progress inside an epoch."""

    epoch: int
    total_epochs: int
    batch: int
    total_batches: int
    loss: float
    accuracy: float
    learning_rate: float
    images_per_second: float
    fraction: float
    eta_seconds: float | None


class BatchProgress:
    """Turns batch reports into 'batch' events with a throughput estimate and an ETA."""

    def __init__(self, events: Events, total_epochs: int) -> None:
        self.events, self.total_epochs = events, total_epochs
        self.started = time.monotonic()
        self.epoch = 1
        self.images_per_second = 0.0
        self.optimizer: torch.optim.Optimizer | None = None

    def __call__(self, report: BatchReport) -> None:
        rate = report.images / report.seconds if report.seconds > 0 else 0.0
        smoothing = 0.8 if self.images_per_second else 0.0
        self.images_per_second = smoothing * self.images_per_second + (1 - smoothing) * rate
        done = (self.epoch - 1) + report.batch / report.total_batches
        fraction = done / self.total_epochs
        elapsed = time.monotonic() - self.started
        eta = elapsed / fraction * (1 - fraction) if fraction > 0 else None
        learning_rate = self.optimizer.param_groups[0]["lr"] if self.optimizer else 0.0
        event = BatchEvent(
            self.epoch, self.total_epochs, report.batch, report.total_batches, report.loss,
            report.accuracy, learning_rate, self.images_per_second, fraction, eta,
        )  # fmt: skip
        self.events.trigger("batch", event)


class Heartbeat:
    """Keeps the run's status.json fresh while it trains: a subscriber of the run's events.

    Other processes read a live run whose heartbeat is older than a minute as interrupted, so
    it beats on batches and on the long steps between them (caching the frozen layers).
    """

    INTERVAL_SECONDS = 2.0

    def __init__(self, writer: RunWriter) -> None:
        self.writer = writer
        self.last = 0.0
        self.progress: dict[str, float | int] | None = None

    def on_batch(self, event: BatchEvent) -> None:
        """Record where training is, and beat if the last beat is old."""
        self.progress = {
            "epoch": event.epoch,
            "total_epochs": event.total_epochs,
            "fraction": event.fraction,
        }
        self.beat()

    def on_progress(self, _: StageProgress) -> None:
        """A long step between batches is moving: beat if the last beat is old."""
        self.beat()

    def beat(self) -> None:
        """Rewrite status.json with a fresh heartbeat, at most every INTERVAL_SECONDS."""
        if time.monotonic() - self.last > self.INTERVAL_SECONDS:
            self.last = time.monotonic()
            self.writer.heartbeat(self.progress)


def epoch_record(
    epoch: int, stats: EpochStats, validation: Evaluation, learning_rate: float, elapsed: float
) -> dict[str, float | int]:
    """One line of a run's history.jsonl."""
    return {
        "epoch": epoch,
        "train_loss": stats.loss,
        "train_accuracy": stats.accuracy,
        "val_loss": validation.loss,
        "val_accuracy": validation.accuracy,
        "learning_rate": learning_rate,
        "epoch_seconds": stats.seconds,
        "images_per_second": stats.images_per_second,
        "elapsed_seconds": elapsed,
    }
