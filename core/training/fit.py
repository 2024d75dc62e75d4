"""fit(): a whole training run, from a request to a complete run folder on disk.

Epochs, learning-rate schedule, early stopping on validation loss, best-epoch weights, events
for subscribers (job snapshot, CLI progress bar, tests) and the run files through
`core.runs.writer`.
Every exit path (completed, cancelled, failed, interrupted) leaves a consistent run with a
terminal status. Under torchrun, `distributed` makes the processes train one run together
(core.training.distributed); without it, one process trains as it always has.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from sklearn.metrics import confusion_matrix
from torch import nn

from core.data.training_data import TrainingData, prepare_training_data
from core.events import PROGRESS, Events, report_progress
from core.models import pretrained
from core.models.build import build_model, set_train_mode, split_frozen
from core.models.registry import get_spec
from core.models.spec import ModelSpec
from core.runs.writer import RunWriter
from core.training.distributed import DistributedContext, DistributedTraining, check_world_fits
from core.training.frozen_cache import FrozenFeatureCache
from core.training.loops import (
    Evaluation,
    StepSettings,
    TrainingCancelled,
    TrainingInterrupted,
    evaluate,
    train_one_epoch,
)
from core.training.optimization import make_loss_function, make_optimizer, make_schedule
from core.training.progress import BatchProgress, Heartbeat, epoch_record
from core.training.request import TrainingRequest
from core.training.run_record import build_run_config, choose_step_settings


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


def fit(
    request: TrainingRequest,
    *,
    run_id: str | None = None,
    events: Events | None = None,
    cancel: threading.Event | None = None,
    distributed: DistributedContext | None = None,
) -> FitResult:
    """Train one model and store it as a run; returns how it ended (never half-written).

    `events` hears everything: data preparation and frozen-layer caching as 'progress', then
    'batch', 'epoch', 'message' and 'finished'. With `distributed` (torchrun, more than one
    process) every process calls fit() and only rank 0 writes the run.
    """
    events = events or Events()
    main_first = distributed.main_first if distributed else (lambda work: work())
    if request.model.pretrained and not pretrained.weights_available(request.model.name):
        # Fail (or download into the PyTorch cache) before minutes of data preparation.
        main_first(
            lambda: pretrained.load_imagenet_state_dict(request.model.name, allow_download=True)
        )
    data = main_first(lambda: prepare_training_data(request.data, events))
    if distributed is not None:  # before any run folder exists
        distributed.check_same(
            (data.dataset.fingerprint, data.manifest.digest),
            "the dataset and its split: every machine needs the same copy at the same path",
        )
        check_world_fits(
            distributed.world_size, train_images=len(data.train_positions),
            val_images=len(data.val_positions),
            batch=min(request.train.batch_size, len(data.train_positions)),
        )  # fmt: skip
    report_progress(events, "model", 0, 1, f"Building {request.model.name}")
    spec = get_spec(request.model.name)
    request = replace(request, model=replace(request.model, num_classes=len(data.classes)))
    torch.manual_seed(request.train.seed)
    model, weights_source = build_model(request.model, allow_download=True)
    report_progress(events, "model", 1, 1, f"Built {request.model.name}")
    settings = choose_step_settings(spec, request, data)
    parallel = None
    if distributed is not None:
        parallel = DistributedTraining(distributed, request.train.seed)
        parallel.seed_dropout()
        settings = replace(settings, device=distributed.device)  # cuda:LOCAL_RANK on a GPU
    config = build_run_config(request, data, spec, weights_source, settings)
    if distributed is not None:
        config["distributed"] = distributed.describe(request.train.batch_size)

    def create_writer() -> RunWriter:
        return RunWriter.create(config, model_name=spec.name, run_id=run_id, name=request.name)

    session = _Session(
        request=request,
        data=data,
        spec=spec,
        model=model,
        settings=settings,
        writer=distributed.create_writer(create_writer) if distributed else create_writer(),
        events=events,
        stop=cancel.is_set if cancel is not None else (lambda: False),
        weights_source=weights_source.description if weights_source else "random initialisation",
        parallel=parallel,
    )
    return session.run()


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

    def keep_best(self, epoch: int, validation: Evaluation, model: nn.Module) -> None:
        """Remember this epoch as the best so far (weights copied to the CPU)."""
        self.best_val_loss, self.best_epoch, self.best_validation = (
            validation.loss,
            epoch,
            validation,
        )
        self.best_state = {
            name: value.detach().cpu().clone() for name, value in model.state_dict().items()
        }


@dataclass
class _Session:
    """One training run in progress: its inputs, its run folder and what it has learned."""

    request: TrainingRequest
    data: TrainingData
    spec: ModelSpec
    model: nn.Module
    settings: StepSettings
    writer: RunWriter
    events: Events
    stop: Callable[[], bool]
    weights_source: str
    parallel: DistributedTraining | None = None  # set when several processes train the run
    state: _LoopState = field(default_factory=_LoopState)

    def run(self) -> FitResult:
        """Train, then write the terminal status on every exit path."""
        self.writer.set_status("running", message="training")
        heartbeat = Heartbeat(self.writer)
        self.events.add_callback("batch", heartbeat.on_batch)
        self.events.add_callback(PROGRESS, heartbeat.on_progress)
        status, message = "failed", None
        signals = self.parallel.context.stop_signals if self.parallel else None
        try:
            with signals.training() if signals else contextlib.nullcontext():
                self.train_adapting_batch_size()
            status = "completed"
            if self.state.stopped_early:
                message = "stopped early: validation loss stopped improving"
        except TrainingCancelled:
            status, message = "cancelled", "cancelled by the user"
        except TrainingInterrupted as error:
            status, message = "interrupted", str(error)
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            raise
        finally:
            self.events.remove_callback("batch", heartbeat.on_batch)
            self.events.remove_callback(PROGRESS, heartbeat.on_progress)
            result = _finish(
                self.data, self.writer, self.state, status, message, self.weights_source
            )
            self.events.trigger("finished", result)
            if signals:
                signals.finished()
        return result

    def train_adapting_batch_size(self) -> None:
        """Train; when the first epoch runs out of (GPU) memory, halve the batch and restart."""
        memory_format = (
            torch.channels_last if self.settings.channels_last else torch.preserve_format
        )
        self.model.to(self.settings.device, memory_format=memory_format)
        initial = {name: value.detach().clone() for name, value in self.model.state_dict().items()}
        batch_size = min(self.request.train.batch_size, len(self.data.train_positions))
        while True:
            try:
                self.train_epochs(batch_size)
                return
            except torch.OutOfMemoryError:
                # Under DDP one process's OOM would leave the others waiting: no restart.
                if self.state.epochs_run > 0 or batch_size == 1 or self.parallel:
                    raise
                if self.settings.device.type == "cuda":
                    torch.cuda.empty_cache()
                self.model.load_state_dict(initial)
                batch_size //= 2
                notice = f"Out of memory: batch size halved to {batch_size}; training restarted."
                self.events.trigger("message", notice)
                self.writer.set_status("running", message=notice)

    def train_epochs(self, batch_size: int) -> None:
        """The epoch loop: train, validate, record, keep the best, stop early."""
        recipe, model, settings = self.request.train, self.model, self.settings
        train_images, train_labels = self.data.subset("train")
        val_images, val_labels = self.data.subset("val")
        self.state.batch_size = batch_size
        optimizer = make_optimizer(model, self.spec, recipe)
        scheduler = make_schedule(optimizer, recipe, -(-len(train_images) // batch_size))
        loss_function, val_loss_function = (
            make_loss_function(recipe, self.data),
            nn.CrossEntropyLoss(),
        )
        generator = torch.Generator().manual_seed(recipe.seed)
        progress = BatchProgress(self.events, recipe.epochs)
        progress.optimizer = optimizer
        frozen, trainable = split_frozen(model, self.spec, self.request.model.freeze)
        parallel = self.parallel
        train, validate = (parallel.train_one_epoch, parallel.evaluate) if parallel else (
            train_one_epoch, evaluate
        )  # fmt: skip
        if parallel:
            val_images = parallel.validation_shard(val_images)  # each process validates a part
        cache = None
        if frozen is not None and recipe.cache_frozen:
            cache = FrozenFeatureCache(
                frozen, settings, recipe.augment, recipe.frozen_views, recipe.seed, self.events,
                sharing=parallel.context if parallel else None,
            )  # fmt: skip
            self.events.trigger("message", "computing the frozen layers once (cached features)")
        patience = 0
        for epoch in range(1, recipe.epochs + 1):
            progress.epoch = epoch
            set_train_mode(model, self.spec, self.request.model.freeze)
            learning_rate = optimizer.param_groups[0]["lr"]
            started = time.perf_counter()
            if cache is None:
                network, step_settings, augment = model, settings, recipe.augment
                epoch_images, epoch_val_images = train_images, val_images
            else:
                # The cost of filling the cache counts as training time (in the first epochs).
                network, step_settings, augment = trainable, cache.feature_settings, None
                epoch_images = cache.train_view(train_images, epoch, self.stop)
                epoch_val_images = cache.validation_view(val_images, self.stop)
            stats = train(
                network, epoch_images, train_labels, optimizer=optimizer, scheduler=scheduler,
                loss_function=loss_function, settings=step_settings, batch_size=batch_size,
                generator=generator, augment=augment, should_stop=self.stop,
                on_batch=progress,
            )  # fmt: skip
            validation = validate(
                network, epoch_val_images, val_labels, loss_function=val_loss_function,
                settings=step_settings, should_stop=self.stop,
            )  # fmt: skip
            self.state.train_seconds += time.perf_counter() - started
            self.state.epochs_run = epoch
            record = epoch_record(epoch, stats, validation, learning_rate, self.state.train_seconds)
            self.writer.append_history(record)
            self.events.trigger("epoch", record)
            if validation.loss < self.state.best_val_loss:
                self.state.keep_best(epoch, validation, model)
                self.writer.save_weights(self.state.best_state)
                patience = 0
            else:
                patience += 1
                if 0 < recipe.early_stopping_patience <= patience:
                    self.state.stopped_early = True
                    return


def _confusion_matrix(validation: Evaluation, classes: int) -> list[list[int]]:
    predicted = validation.logits.argmax(1)
    return confusion_matrix(validation.labels, predicted, labels=range(classes)).tolist()


def _finish(
    data: TrainingData,
    writer: RunWriter,
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
