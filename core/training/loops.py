"""Training and evaluation loops: plain functions, no I/O, no threads, no Streamlit.

Batches come from an in-RAM uint8 tensor (the decoded-image cache), so a batch costs one
index, one augmentation call and one normalisation: no per-image work.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.config import AugmentConfig, Preprocessing
from core.imaging.model_input import to_model_input
from core.training.augment import augment_batch


class TrainingCancelled(Exception):
    """Raised inside a loop when the caller asked to stop."""


class TrainingInterrupted(Exception):
    """Raised when a run is stopped from outside: a signal, or (under DDP) a lost process."""


@dataclass(frozen=True)
class BatchReport:
    """What one training step did (for progress bars and live charts)."""

    batch: int
    total_batches: int
    loss: float
    accuracy: float
    images: int
    seconds: float


@dataclass(frozen=True)
class EpochStats:
    """Average loss and accuracy over an epoch, and its throughput."""

    loss: float
    accuracy: float
    images: int
    seconds: float

    @property
    def images_per_second(self) -> float:
        """Training throughput."""
        return self.images / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Evaluation:
    """Loss, accuracy and the raw outputs of a model over a set of images."""

    loss: float
    accuracy: float
    logits: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class StepSettings:
    """How inputs are prepared and run: device, precision, memory format."""

    preprocessing: Preprocessing
    device: torch.device
    bf16: bool = False
    channels_last: bool = False

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """bf16 autocast on the device when enabled, else nothing."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W) or float (B, 1, H, W) in [0, 1] -> normalised model input."""
        return to_model_input(
            images, self.preprocessing, device=self.device, channels_last=self.channels_last
        )


@dataclass(frozen=True)
class BatchShard:
    """This process's part of every global batch under DDP (core.training.distributed)."""

    rank: int
    world_size: int
    augment_generator: torch.Generator  # per process, so shards are not augmented alike

    def take(self, positions: np.ndarray) -> tuple[np.ndarray, float]:
        """(this process's positions of a global batch, the scale of its loss).

        Every world_size-th image from `rank`. DDP averages the processes' gradients, so each
        mean loss is scaled by its shard's share of the batch times world_size: the average is
        then the global batch's mean, even when shards differ in size. A process left without an
        image (a last batch smaller than world_size) still has to step with the others: it takes
        the batch's last image at scale 0.
        """
        mine = positions[self.rank :: self.world_size]
        if len(mine) == 0:
            return positions[-1:], 0.0
        return mine, len(mine) * self.world_size / len(positions)


def batch_order(
    count: int, batch_size: int, generator: torch.Generator | None
) -> Iterator[np.ndarray]:
    """Positions 0..count-1 in batches: shuffled with `generator`, in order without one."""
    order = (
        torch.randperm(count, generator=generator) if generator is not None else torch.arange(count)
    )
    positions = order.numpy()
    for start in range(0, count, batch_size):
        yield positions[start : start + batch_size]


def train_one_epoch(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    loss_function: nn.Module,
    settings: StepSettings,
    batch_size: int,
    generator: torch.Generator,
    augment: AugmentConfig | None,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[BatchReport], None] | None = None,
    shard: BatchShard | None = None,
) -> EpochStats:
    """One pass over shuffled training images; the model must already be in training mode.

    `generator` orders the batches (and, in one process, augments them too). With a `shard`
    (DDP), the model is the DDP wrapper and this process trains on its part of every global
    batch; the statistics returned are this process's (core.training.distributed sums them).
    """
    total_batches = -(-len(images) // batch_size)
    augment_generator = generator if shard is None else shard.augment_generator
    loss_sum, correct, seen, started = 0.0, 0, 0, time.perf_counter()
    for batch, batch_positions in enumerate(batch_order(len(images), batch_size, generator), 1):
        if should_stop():
            raise TrainingCancelled
        batch_start = time.perf_counter()
        positions, loss_scale = (
            (batch_positions, 1.0) if shard is None else shard.take(batch_positions)
        )
        index = torch.from_numpy(positions)
        inputs = images[index]
        if augment is not None and augment.enabled:
            inputs = augment_batch(inputs, augment, augment_generator)
        x, y = settings.prepare(inputs), labels[index].to(settings.device)
        with settings.autocast():
            logits = model(x)
            loss = loss_function(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        (loss if shard is None else loss * loss_scale).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if loss_scale == 0.0:
            continue  # a stand-in image (DDP): it trained nothing and is not counted
        batch_loss, batch_correct = float(loss.detach()), int((logits.argmax(1) == y).sum())
        loss_sum += batch_loss * len(y)
        correct += batch_correct
        seen += len(y)
        if on_batch is not None:
            # Under DDP the processes step together: the global batch is the throughput's unit.
            report = BatchReport(
                batch, total_batches, batch_loss, batch_correct / len(y), len(batch_positions),
                time.perf_counter() - batch_start,
            )  # fmt: skip
            on_batch(report)
    return EpochStats(
        loss_sum / max(seen, 1), correct / max(seen, 1), seen, time.perf_counter() - started
    )


@torch.no_grad()
def evaluate(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    loss_function: nn.Module,
    settings: StepSettings,
    batch_size: int = 128,
    should_stop: Callable[[], bool] = lambda: False,
) -> Evaluation:
    """Loss, accuracy and logits of `model` (switched to eval mode) on every image, in order."""
    model.eval()
    outputs: list[torch.Tensor] = []
    for positions in batch_order(len(images), batch_size, None):
        if should_stop():
            raise TrainingCancelled
        index = torch.from_numpy(positions)
        with settings.autocast():
            outputs.append(model(settings.prepare(images[index])).float().cpu())
    logits = torch.cat(outputs) if outputs else torch.empty(0, 0)
    return evaluation_of(logits, labels.cpu(), loss_function)


def evaluation_of(
    logits: torch.Tensor, target: torch.Tensor, loss_function: nn.Module
) -> Evaluation:
    """Loss and accuracy of CPU `logits` against `target` (NaN for no images)."""
    loss = float(loss_function(logits, target)) if len(target) else float("nan")
    accuracy = float((logits.argmax(1) == target).float().mean()) if len(target) else float("nan")
    return Evaluation(loss, accuracy, logits.numpy(), target.numpy())
