"""Per-sample random augmentation of whole batches of tensors: no per-image PIL work per epoch."""

from __future__ import annotations

import math

import torch
from torch.nn import functional

from core.config import AugmentConfig


def augment_batch(
    images: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """Per-sample random flip, rotation, zoom, shift, brightness and contrast of a whole batch.

    `images` is (B, H, W) uint8 or (B, 1, H, W) float in [0, 1]; returns (B, 1, H, W) float in
    [0, 1]. One affine_grid + grid_sample call warps every image with its own parameters.
    """
    x = images.unsqueeze(1).float().div_(255.0) if images.dtype == torch.uint8 else images
    count = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return (torch.rand(count, generator=generator) * (high - low) + low).to(x.device)

    if config.flip:
        flipped = torch.rand(count, generator=generator).to(x.device) < 0.5
        x = torch.where(flipped.view(-1, 1, 1, 1), x.flip(-1), x)
    if config.rotate_degrees > 0 or config.scale > 0 or config.shift > 0:
        angle = uniform(-config.rotate_degrees, config.rotate_degrees) * (math.pi / 180.0)
        zoom = uniform(1.0 - config.scale, 1.0 + config.scale)
        shift_x, shift_y = (uniform(-config.shift, config.shift) * 2.0 for _ in range(2))
        cosine, sine = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack(
            [torch.stack([cosine, -sine, shift_x], 1), torch.stack([sine, cosine, shift_y], 1)], 1
        )
        grid = functional.affine_grid(theta, list(x.shape), align_corners=False)
        x = functional.grid_sample(
            x, grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
    if config.brightness > 0:
        x = x + uniform(-config.brightness, config.brightness).view(-1, 1, 1, 1)
    if config.contrast > 0:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * uniform(1 - config.contrast, 1 + config.contrast).view(-1, 1, 1, 1) + mean
    return x.clamp_(0.0, 1.0)
