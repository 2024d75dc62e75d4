"""Estimate how long one epoch of a training request takes on this machine, before launching.

Measured, not guessed: build the model, run a few real training steps (augmentation,
forward, backward, optimizer) on real images, and scale by the number of images.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from core.data.training_data import TrainingData, prepare_training_data
from core.models.build import build_model, set_train_mode, split_frozen
from core.models.registry import get_spec
from core.training.frozen_cache import FrozenFeatureCache
from core.training.loops import StepSettings, evaluate, train_one_epoch
from core.training.request import TrainingRequest
from core.training.run_record import choose_step_settings

WARMUP_BATCHES = 1
TIMED_BATCHES = 3


@dataclass(frozen=True)
class EpochEstimate:
    """Measured throughput and the epoch time it implies."""

    train_images_per_second: float
    eval_images_per_second: float
    train_images: int
    val_images: int
    precision: str
    # With frozen-layer caching: the frozen blocks' output is computed once per view up front.
    cache_seconds: float = 0.0

    @property
    def epoch_seconds(self) -> float:
        """Training plus validation time of one epoch (after the one-time caching)."""
        return (
            self.train_images / self.train_images_per_second
            + self.val_images / self.eval_images_per_second
        )

    def total_seconds(self, epochs: int) -> float:
        """The whole run: caching once, then `epochs` epochs."""
        return self.cache_seconds + epochs * self.epoch_seconds


def _timed_steps(
    model: nn.Module,
    data: TrainingData,
    request: TrainingRequest,
    settings: StepSettings,
    count: int,
    *,
    augment: bool = True,
) -> float:
    """Seconds per training image over `count` batches (after the caller's warm-up)."""
    images, labels = data.subset("train")
    batch = min(request.train.batch_size, len(images))
    take = torch.arange(min(len(images), batch * count))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    started = time.perf_counter()
    train_one_epoch(
        model, images[take], labels[take], optimizer=optimizer, scheduler=None,
        loss_function=nn.CrossEntropyLoss(), settings=settings, batch_size=batch,
        generator=torch.Generator().manual_seed(0),
        augment=request.train.augment if augment else None,
    )  # fmt: skip
    return (time.perf_counter() - started) / len(take)


def estimate_epoch(request: TrainingRequest, data: TrainingData | None = None) -> EpochEstimate:
    """Measure a few training and evaluation batches of `request` on this machine."""
    data = data or prepare_training_data(request.data)
    request = replace(request, model=replace(request.model, num_classes=len(data.classes)))
    spec = get_spec(request.model.name)
    model, _ = build_model(request.model)
    settings = choose_step_settings(spec, request, data)
    memory_format = torch.channels_last if settings.channels_last else torch.preserve_format
    model.to(settings.device, memory_format=memory_format)
    set_train_mode(model, spec, request.model.freeze)
    frozen, trainable = split_frozen(model, spec, request.model.freeze)
    if frozen is not None and request.train.cache_frozen:
        return _estimate_cached(frozen, trainable, data, request, settings)
    _timed_steps(model, data, request, settings, WARMUP_BATCHES)
    train_seconds = _timed_steps(model, data, request, settings, TIMED_BATCHES)
    val_images, val_labels = data.subset("val")
    sample = torch.arange(min(len(val_images), 128))
    started = time.perf_counter()
    evaluate(
        model, val_images[sample], val_labels[sample], loss_function=nn.CrossEntropyLoss(),
        settings=settings,
    )  # fmt: skip
    eval_seconds = (time.perf_counter() - started) / max(len(sample), 1)
    return EpochEstimate(
        train_images_per_second=1.0 / train_seconds,
        eval_images_per_second=1.0 / max(eval_seconds, 1e-6),
        train_images=len(data.train_positions),
        val_images=len(data.val_positions),
        precision="bf16" if settings.bf16 else "fp32",
    )


def _estimate_cached(
    frozen: nn.Module,
    trainable: nn.Module,
    data: TrainingData,
    request: TrainingRequest,
    settings: StepSettings,
) -> EpochEstimate:
    """Frozen-layer caching: time the frozen blocks once, then the trainable top on features."""
    cache = FrozenFeatureCache(
        frozen, settings, request.train.augment, request.train.frozen_views, request.train.seed
    )
    images, labels = data.subset("train")
    batch = min(request.train.batch_size, len(images))
    sample = images[: batch * (WARMUP_BATCHES + TIMED_BATCHES)]
    cache.features(sample[:batch])  # warm-up
    started = time.perf_counter()
    features = cache.features(sample)
    frozen_seconds = (time.perf_counter() - started) / len(sample)
    feature_data = TrainingData(
        data.dataset, data.manifest, data.classes,
        np.arange(len(features)), np.arange(0), features, labels[: len(features)],
    )  # fmt: skip
    feature_settings = cache.feature_settings
    # Cached features are already augmented views: the top trains on them as they are.
    timed = (trainable, feature_data, request, feature_settings)
    _timed_steps(*timed, WARMUP_BATCHES, augment=False)
    train_seconds = _timed_steps(*timed, TIMED_BATCHES, augment=False)
    cached_images = len(data.train_positions) * request.train.frozen_views + len(data.val_positions)
    return EpochEstimate(
        train_images_per_second=1.0 / train_seconds,
        # Validation runs the top only, on cached features: about a third of a training step.
        eval_images_per_second=3.0 / train_seconds,
        train_images=len(data.train_positions),
        val_images=len(data.val_positions),
        precision="bf16" if settings.bf16 else "fp32",
        cache_seconds=cached_images * frozen_seconds,
    )
