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
    [0, 1]. The geometry and intensity changes hit a random `config.share` of the images, and
    each scanner-like change (gamma, blur, noise, salt and pepper) about half, so the clean ones
    are still seen as they are. Only the chosen images are computed: the robust recipe's
    augmentation took 32 ms a batch of 64 at 128 px when every image was changed and the
    unchosen ones thrown away, and torch's `affine_grid` alone took 10 of them
    (`python -m bench.augment`).
    """
    x = images.unsqueeze(1).float().div_(255.0) if images.dtype == torch.uint8 else images
    count = x.shape[0]

    def chosen(share: float) -> torch.Tensor:
        return torch.nonzero(torch.rand(count, generator=generator) < share).flatten().to(x.device)

    def uniform(low: float, high: float, size: int) -> torch.Tensor:
        return (torch.rand(size, generator=generator) * (high - low) + low).to(x.device)

    if config.flip:
        flipped = torch.rand(count, generator=generator).to(x.device) < 0.5
        x = torch.where(flipped.view(-1, 1, 1, 1), x.flip(-1), x)
    geometry = config.rotate_degrees > 0 or config.scale > 0 or config.shift > 0
    if geometry or config.brightness > 0 or config.contrast > 0:
        positions = chosen(config.share)
        part = x[positions]
        size = len(positions)
        if geometry:
            angle = uniform(-config.rotate_degrees, config.rotate_degrees, size) * (math.pi / 180)
            zoom = uniform(1.0 - config.scale, 1.0 + config.scale, size)
            shift_x, shift_y = (uniform(-config.shift, config.shift, size) * 2.0 for _ in range(2))
            part = _warp(part, angle, zoom, shift_x, shift_y)
        if config.brightness > 0:
            part = part + uniform(-config.brightness, config.brightness, size).view(-1, 1, 1, 1)
        if config.contrast > 0:
            mean = part.mean(dim=(1, 2, 3), keepdim=True)
            factor = uniform(1 - config.contrast, 1 + config.contrast, size).view(-1, 1, 1, 1)
            part = (part - mean) * factor + mean
        x = x.index_copy(0, positions, part)
    if config.gamma > 0:
        positions = chosen(0.5)
        log_range = math.log1p(config.gamma)
        gamma = torch.exp(uniform(-log_range, log_range, len(positions))).view(-1, 1, 1, 1)
        x = x.index_copy(0, positions, x[positions].clamp(min=0.0).pow(gamma))
    if config.blur > 0:
        positions = chosen(0.5)
        sigma = uniform(0.0, config.blur, len(positions))
        x = x.index_copy(0, positions, _gaussian_blur(x[positions], sigma, config.blur))
    if config.noise > 0:
        positions = chosen(0.5)
        sigma = uniform(0.0, config.noise, len(positions)).view(-1, 1, 1, 1)
        noise = torch.randn(x[positions].shape, generator=generator).to(x.device)
        x = x.index_add(0, positions, noise * sigma)
    if config.salt_pepper > 0:
        positions = chosen(0.5)
        fraction = uniform(0.0, config.salt_pepper, len(positions)).view(-1, 1, 1, 1)
        # One draw decides both: below fraction / 2 black, between fraction / 2 and fraction white.
        part = x[positions]
        draw = torch.rand(part.shape, generator=generator).to(x.device)
        x = x.index_copy(
            0, positions, torch.where(draw < fraction, (draw >= fraction / 2).to(x.dtype), part)
        )
    return x.clamp_(0.0, 1.0)


def _warp(
    x: torch.Tensor,
    angle: torch.Tensor,
    zoom: torch.Tensor,
    shift_x: torch.Tensor,
    shift_y: torch.Tensor,
) -> torch.Tensor:
    """Rotate by `angle` (radians), zoom and shift (in [-1, 1] units) each image of (B, 1, H, W)
    `x` with its own parameters, in one `grid_sample` call.

    The sampling grid is built by broadcasting the pixel-centre coordinates against each
    image's affine matrix: the same grid as `affine_grid(..., align_corners=False)` (the test
    checks that), seven times faster on CPU.
    """
    _, _, height, width = x.shape
    if len(x) == 0:
        return x
    cosine, sine = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    # Pixel centres in [-1, 1], as align_corners=False places them.
    across = (torch.arange(width, device=x.device, dtype=x.dtype) * 2 + 1) / width - 1
    down = (torch.arange(height, device=x.device, dtype=x.dtype) * 2 + 1) / height - 1
    across, down = across.view(1, 1, -1), down.view(1, -1, 1)

    def column(values: torch.Tensor) -> torch.Tensor:
        return values.view(-1, 1, 1).to(x.dtype)

    grid_x = column(cosine) * across - column(sine) * down + column(shift_x)
    grid_y = column(sine) * across + column(cosine) * down + column(shift_y)
    grid = torch.stack([grid_x, grid_y], dim=-1)
    return functional.grid_sample(
        x, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )


def _gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, largest: float) -> torch.Tensor:
    """Blur each image of (B, 1, H, W) `x` with its own sigma (0: unchanged), as two 1-D passes
    of a grouped convolution: one call for the whole batch."""
    if len(x) == 0:  # grouped convolution needs at least one group
        return x
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
