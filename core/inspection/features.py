"""Every stage's pooled features for a set of images, in one pass through the model's blocks:
the input to the embedding projector (the last stage) and to the layer probes (every stage)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from core.config import Preprocessing
from core.events import Events, report_progress
from core.imaging.model_input import to_model_input
from core.inference.predictor import Predictor

BATCH = 64
FEATURES = "features"  # the progress stage name


@dataclass(frozen=True)
class StageFeatures:
    """Per image: the logits and each stage's output averaged over its positions."""

    logits: np.ndarray = field(repr=False)  # (N, classes)
    stages: list[np.ndarray] = field(repr=False)  # per stage (N, channels), float32

    @property
    def penultimate(self) -> np.ndarray:
        """The last block's pooled output: what the classifier sees."""
        return self.stages[-1]


@torch.inference_mode()
def stage_features(
    predictor: Predictor,
    images: torch.Tensor,
    preprocessing: Preprocessing | None = None,
    *,
    events: Events | None = None,
    label: str = "images",
) -> StageFeatures:
    """Run decoded images (N, S, S) uint8 at the run's input size through the model's blocks
    in turn (which is the model's forward), keeping each block's globally averaged output."""
    preprocessing = preprocessing or predictor.preprocessing
    blocks = predictor.spec.stages(predictor.model)
    model_blocks, tail = blocks[:-1], blocks[-1]
    policy = predictor.compute
    pooled: list[list[np.ndarray]] = [[] for _ in model_blocks]
    logits = []
    total = len(images)
    for start in range(0, total, BATCH):
        report_progress(events, FEATURES, start, total, f"Features of the {label}")
        x = to_model_input(images[start : start + BATCH], preprocessing).to(policy.device)
        if policy.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with predictor.lock:
            for index, block in enumerate(model_blocks):
                x = block(x)
                summary = x.float().mean(dim=(2, 3)) if x.dim() == 4 else x.float().flatten(1)
                pooled[index].append(summary.cpu().numpy())
            logits.append(tail(x).float().cpu().numpy())
    report_progress(events, FEATURES, total, total, f"Features of the {label}")
    return StageFeatures(np.concatenate(logits), [np.concatenate(parts) for parts in pooled])
