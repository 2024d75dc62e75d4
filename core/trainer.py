"""fit(): a whole training run, from a request to a complete run folder on disk.

Epochs, learning-rate schedule, early stopping on validation loss, best-epoch weights, events
for subscribers (job snapshot, CLI progress bar, tests) and the run files through `core.runs`.
Every exit path (completed, cancelled, failed) leaves a consistent run with a terminal status.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from core import models, pretrained, runs
from core.config import DataConfig, ModelConfig, TrainConfig
from core.data import ProgressCallback
from core.engine import (
    BatchReport,
    EpochStats,
    Evaluation,
    StepSettings,
    TrainingCancelled,
    evaluate,
    train_one_epoch,
)
from core.run_config import build_run_config, choose_step_settings
from core.training_data import TrainingData, prepare_training_data


@dataclass(frozen=True)
class TrainingRequest:
    """Everything needed to start a run."""

    data: DataConfig
    model: ModelConfig
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass(frozen=True)
class FitResult:
    """How a run ended."""

    run_id: str
    run_dir: str
    status: str
    epochs: int
    best_epoch: int | None
    train_seconds: float
    val_accuracy: float | None
    val_loss: float | None
    weights_source: str
    message: str | None = None


class Events:
    """A tiny event bus: fit() triggers 'batch', 'epoch', 'message' and 'finished'."""

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callable[[Any], None]]] = defaultdict(list)

    def add_callback(self, event: str, callback: Callable[[Any], None]) -> None:
        """Call `callback(payload)` whenever `event` fires."""
        self._callbacks[event].append(callback)

    def trigger(self, event: str, payload: Any) -> None:
        """Call every subscriber of `event`."""
        for callback in self._callbacks[event]:
            callback(payload)


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


def _schedule(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up, then cosine decay (to 1%), one-cycle, or constant; stepped per batch."""
    total = max(1, config.epochs * steps_per_epoch)
    if config.schedule == "onecycle":
        peaks = [group["lr"] for group in optimizer.param_groups]
        warmup_share = min(0.5, max(0.05, config.warmup_epochs / max(config.epochs, 1)))
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=peaks, total_steps=total, pct_start=warmup_share
        )
    warmup = min(total - 1, round(config.warmup_epochs * steps_per_epoch))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        if config.schedule == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def _loss_function(config: TrainConfig, data: TrainingData) -> nn.Module:
    weight = None
    if config.class_weights:
        _, train_labels = data.subset("train")
        counts = torch.bincount(train_labels, minlength=len(data.classes)).float().clamp(min=1)
        weight = counts.sum() / (len(counts) * counts)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing)


def _optimizer(
    model: nn.Module, spec: models.ModelSpec, config: TrainConfig
) -> torch.optim.Optimizer:
    groups = models.parameter_groups(
        model,
        spec,
        lr=config.lr,
        backbone_lr_scale=config.backbone_lr_scale,
        weight_decay=config.weight_decay,
    )
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    raise ValueError(f"optimizer {config.optimizer!r} is not one of: adam, adamw")


class _Progress:
    """Turns batch reports into BatchEvents with a throughput estimate and an ETA."""

    def __init__(self, events: Events, total_epochs: int, writer: runs.RunWriter) -> None:
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


def _epoch_record(
    epoch: int, stats: EpochStats, validation: Evaluation, learning_rate: float, elapsed: float
) -> dict[str, float | int]:
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


def fit(
    request: TrainingRequest,
    *,
    run_id: str | None = None,
    events: Events | None = None,
    cancel: threading.Event | None = None,
    data_progress: ProgressCallback | None = None,
) -> FitResult:
    """Train one model and store it as a run; returns how it ended (never half-written)."""
    events = events or Events()
    stop = cancel.is_set if cancel is not None else (lambda: False)
    if request.model.pretrained and not pretrained.weights_available(request.model.name):
        # Fail (or download into the PyTorch cache) before minutes of data preparation.
        pretrained.load_imagenet_state_dict(request.model.name, allow_download=True)
    data = prepare_training_data(request.data, data_progress)
    spec = models.get_spec(request.model.name)
    request = replace(request, model=replace(request.model, num_classes=len(data.classes)))
    torch.manual_seed(request.train.seed)
    model, weights_source = models.build_model(request.model, allow_download=True)
    settings = choose_step_settings(spec, request, data)
    config = build_run_config(request, data, spec, weights_source, settings)
    writer = runs.RunWriter.create(config, model_name=spec.name, run_id=run_id)
    return _run(request, data, spec, model, settings, writer, events, stop, weights_source)


def _run(
    request: TrainingRequest,
    data: TrainingData,
    spec: models.ModelSpec,
    model: nn.Module,
    settings: StepSettings,
    writer: runs.RunWriter,
    events: Events,
    stop: Callable[[], bool],
    weights_source: models.WeightsSource | None,
) -> FitResult:
    source = weights_source.description if weights_source else "random initialisation"
    state = _LoopState()
    writer.set_status("running", message="training")
    status, message = "failed", None
    try:
        _train_epochs(request, data, spec, model, settings, writer, events, stop, state)
        status = "completed"
        message = (
            "stopped early: validation loss stopped improving" if state.stopped_early else None
        )
    except TrainingCancelled:
        status, message = "cancelled", "cancelled by the user"
    except Exception as error:
        message = f"{type(error).__name__}: {error}"
        raise
    finally:
        result = _finish(data, writer, state, status, message, source)
        events.trigger("finished", result)
    return result


@dataclass
class _LoopState:
    """What the epoch loop has learned so far (survives a cancel or a crash)."""

    epochs_run: int = 0
    best_epoch: int | None = None
    best_val_loss: float = math.inf
    best_state: dict[str, torch.Tensor] | None = None
    best_validation: Evaluation | None = None
    stopped_early: bool = False
    train_seconds: float = 0.0
    batch_size: int = 0


def _train_epochs(
    request: TrainingRequest,
    data: TrainingData,
    spec: models.ModelSpec,
    model: nn.Module,
    settings: StepSettings,
    writer: runs.RunWriter,
    events: Events,
    stop: Callable[[], bool],
    state: _LoopState,
) -> None:
    recipe = request.train
    memory_format = torch.channels_last if settings.channels_last else torch.preserve_format
    model.to(settings.device, memory_format=memory_format)
    train_images, train_labels = data.subset("train")
    val_images, val_labels = data.subset("val")
    state.batch_size = min(recipe.batch_size, len(train_images))
    optimizer = _optimizer(model, spec, recipe)
    scheduler = _schedule(optimizer, recipe, -(-len(train_images) // state.batch_size))
    loss_function, val_loss_function = _loss_function(recipe, data), nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(recipe.seed)
    progress = _Progress(events, recipe.epochs, writer)
    progress.optimizer = optimizer
    patience = 0
    for epoch in range(1, recipe.epochs + 1):
        progress.epoch = epoch
        models.set_train_mode(model, spec, request.model.freeze)
        learning_rate = optimizer.param_groups[0]["lr"]
        started = time.perf_counter()
        stats = train_one_epoch(
            model, train_images, train_labels, optimizer=optimizer, scheduler=scheduler,
            loss_function=loss_function, settings=settings, batch_size=state.batch_size,
            generator=generator, augment=recipe.augment, should_stop=stop, on_batch=progress,
        )  # fmt: skip
        validation = evaluate(
            model, val_images, val_labels, loss_function=val_loss_function, settings=settings,
            should_stop=stop,
        )  # fmt: skip
        state.train_seconds += time.perf_counter() - started
        state.epochs_run = epoch
        record = _epoch_record(epoch, stats, validation, learning_rate, state.train_seconds)
        writer.append_history(record)
        events.trigger("epoch", record)
        if validation.loss < state.best_val_loss:
            state.best_val_loss, state.best_epoch, state.best_validation = (
                validation.loss,
                epoch,
                validation,
            )
            state.best_state = {
                name: value.detach().cpu().clone() for name, value in model.state_dict().items()
            }
            writer.save_weights(state.best_state)
            patience = 0
        else:
            patience += 1
            if 0 < recipe.early_stopping_patience <= patience:
                state.stopped_early = True
                return


def _confusion_matrix(validation: Evaluation, classes: int) -> list[list[int]]:
    predicted = validation.logits.argmax(1)
    matrix = torch.zeros(classes, classes, dtype=torch.int64)
    for truth, guess in zip(validation.labels.tolist(), predicted.tolist(), strict=True):
        matrix[truth, guess] += 1
    return matrix.tolist()


def _finish(
    data: TrainingData,
    writer: runs.RunWriter,
    state: _LoopState,
    status: str,
    message: str | None,
    weights_source: str,
) -> FitResult:
    """Write final metrics and the terminal status; the best epoch's numbers are the run's."""
    best = state.best_validation
    metrics: dict[str, Any] = {
        "best_epoch": state.best_epoch,
        "epochs_run": state.epochs_run,
        "train_seconds": round(state.train_seconds, 3),
        "stopped_early": state.stopped_early,
        "batch_size": state.batch_size,
    }
    if best is not None:
        metrics["val"] = {
            "n": len(best.labels),
            "accuracy": best.accuracy,
            "loss": best.loss,
            "confusion_matrix": _confusion_matrix(best, len(data.classes)),
        }
    writer.save_metrics(metrics)
    error = message if status == "failed" else None
    writer.set_status(status, message=None if error else message, error=error)
    return FitResult(
        run_id=writer.run_id,
        run_dir=str(writer.path),
        status=status,
        epochs=state.epochs_run,
        best_epoch=state.best_epoch,
        train_seconds=state.train_seconds,
        val_accuracy=best.accuracy if best else None,
        val_loss=best.loss if best else None,
        weights_source=weights_source,
        message=message,
    )
