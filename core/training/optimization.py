"""Optimizer, learning-rate schedule and loss of a training recipe."""

from __future__ import annotations

import math

import torch
from torch import nn

from core.config import TrainConfig
from core.data.training_data import TrainingData
from core.models.build import parameter_groups
from core.models.spec import ModelSpec


def make_schedule(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up, then cosine decay (to 1%), one-cycle, or constant; stepped per batch."""
    total = max(1, config.epochs * steps_per_epoch)
    # OneCycleLR divides by the length of its phases, which are empty for a handful of steps;
    # such tiny runs (smoke tests, a few images) get the warm-up + cosine curve instead.
    if config.schedule == "onecycle" and total >= 10:
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


def make_loss_function(config: TrainConfig, data: TrainingData) -> nn.Module:
    """Cross-entropy, with label smoothing and inverse-frequency class weights when asked."""
    weight = None
    if config.class_weights:
        _, train_labels = data.subset("train")
        counts = torch.bincount(train_labels, minlength=len(data.classes)).float().clamp(min=1)
        weight = counts.sum() / (len(counts) * counts)
    return nn.CrossEntropyLoss(weight=weight, label_smoothing=config.label_smoothing)


def make_optimizer(model: nn.Module, spec: ModelSpec, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over the model's parameter groups (discriminative learning rates)."""
    groups = parameter_groups(
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
