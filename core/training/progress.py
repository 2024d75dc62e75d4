"""Training progress: batch events with throughput and ETA, and the per-epoch history records."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from core.events import Events
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


class Progress:
    """Turns batch reports into BatchEvents with a throughput estimate and an ETA."""

    def __init__(self, events: Events, total_epochs: int, writer: RunWriter) -> None:
        self.events, self.total_epochs, self.writer = events, total_epochs, writer
        self.started = time.monotonic()
        self.epoch = 1
        self.images_per_second = 0.0
        self.last_heartbeat = 0.0
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
        if time.monotonic() - self.last_heartbeat > 2.0:
            self.last_heartbeat = time.monotonic()
            self.writer.heartbeat(
                {"epoch": self.epoch, "total_epochs": self.total_epochs, "fraction": fraction}
            )


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
