"""Test-time augmentation: a model's logits averaged over the image and its left-right mirror
(ttach, which grad-cam already installs).

Only the horizontal flip: it is the one flip the recipes train with, and a brain slice mirrored
left-right is still a plausible slice; upside down it is not. The cost is one more forward pass
per image (docs/benchmarks.md, "Test-time augmentation").
"""

from __future__ import annotations

import ttach
from torch import nn

TTA_VIEWS = 2  # the image and its mirror


def with_flip_tta(model: nn.Module) -> nn.Module:
    """`model` behind a wrapper whose logits are the mean over the image and its mirror."""
    return ttach.ClassificationTTAWrapper(model, ttach.aliases.hflip_transform(), merge_mode="mean")
