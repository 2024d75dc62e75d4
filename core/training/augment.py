"""Per-sample random augmentation of whole batches of tensors: no per-image PIL work per epoch."""

from __future__ import annotations

import math

import torch
from torch.nn import functional

from core.config import AugmentConfig


def augment_batch(
    images: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """Per-sample random flip, rotation, zoom, shift, brightness, contrast, gamma, blur,
    Gaussian and salt-and-pepper noise of a whole batch.

    `images` is (B, H, W) uint8 or (B, 1, H, W) float in [0, 1]; returns (B, 1, H, W) float in
    [0, 1]. One affine_grid + grid_sample call warps every image with its own parameters; each
    scanner-like change (gamma, blur, noise, salt and pepper) hits about half the images, so
    the clean ones are still seen as they are.
    """
    x = images.unsqueeze(1).float().div_(255.0) if images.dtype == torch.uint8 else images
    count = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return (torch.rand(count, generator=generator) * (high - low) + low).to(x.device)

    if config.flip:
        flipped = torch.rand(count, generator=generator).to(x.device) < 0.5
        x = torch.where(flipped.view(-1, 1, 1, 1), x.flip(-1), x)
    plain = x
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
    if config.share < 1.0 and x is not plain:
        changed = (torch.rand(count, generator=generator) < config.share).to(x.device)
        x = torch.where(changed.view(-1, 1, 1, 1), x, plain)
    if config.gamma > 0:
        log_range = math.log1p(config.gamma)
        gamma = torch.exp(uniform(-log_range, log_range))
        gamma = torch.where(_half(count, generator, x.device) > 0, gamma, torch.ones_like(gamma))
        x = x.clamp(min=0.0).pow(gamma.view(-1, 1, 1, 1))
    if config.blur > 0:
        sigma = uniform(0.0, config.blur) * _half(count, generator, x.device)
        x = _gaussian_blur(x, sigma, config.blur)
    if config.noise > 0:
        chosen = _half_positions(count, generator, x.device)
        sigma = uniform(0.0, config.noise)[chosen].view(-1, 1, 1, 1)
        noise = torch.randn(x[chosen].shape, generator=generator).to(x.device)
        x = x.index_add(0, chosen, noise * sigma)
    if config.salt_pepper > 0:
        chosen = _half_positions(count, generator, x.device)
        fraction = uniform(0.0, config.salt_pepper)[chosen].view(-1, 1, 1, 1)
        # One draw decides both: below fraction / 2 black, between fraction / 2 and fraction white.
        draw = torch.rand(x[chosen].shape, generator=generator).to(x.device)
        peppered = torch.where(draw < fraction, (draw >= fraction / 2).to(x.dtype), x[chosen])
        x = x.index_copy(0, chosen, peppered)
    return x.clamp_(0.0, 1.0)


def _half(count: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """A per-sample 0/1 mask, 1 for about half the samples."""
    return (torch.rand(count, generator=generator) < 0.5).to(device=device, dtype=torch.float32)


def _half_positions(count: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """The positions of about half the samples (drawn at random)."""
    return torch.nonzero(_half(count, generator, device) > 0).flatten()


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, largest: float) -> torch.Tensor:
    """Blur each image of (B, 1, H, W) `x` with its own sigma (0: unchanged), as two 1-D passes
    of a grouped convolution: one call for the whole batch."""
    radius = max(1, math.ceil(3 * largest))
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    safe = sigma.clamp(min=1e-3).view(-1, 1)
    kernels = torch.exp(-0.5 * (offsets.view(1, -1) / safe) ** 2)
    kernels = kernels / kernels.sum(1, keepdim=True)
    count, _, height, width = x.shape
    grouped = x.reshape(1, count, height, width)
    grouped = functional.pad(grouped, (radius, radius, radius, radius), mode="reflect")
    grouped = functional.conv2d(grouped, kernels.view(count, 1, 1, -1), groups=count)
    grouped = functional.conv2d(grouped, kernels.view(count, 1, -1, 1), groups=count)
    return grouped.reshape(count, 1, height, width)
