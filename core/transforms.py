"""The one preprocessing shared by the dataset cache, training, evaluation and inference.

Images are brain MRI slices: intensity only. Everything is reduced to one grayscale channel
at a square size here; models that want three channels get it repeated at normalisation.
Augmentation works on whole batches of tensors: no per-image PIL work per epoch.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
from torch.nn import functional

from core.config import AugmentConfig, Preprocessing
from core.imaging import to_grayscale


def resize_square(pixels: np.ndarray, size: int) -> np.ndarray:
    """Grayscale uint8 (size, size) image from any decoded image, stretched to a square.

    Area interpolation when shrinking avoids aliasing; linear when enlarging.
    """
    gray = to_grayscale(pixels)
    if gray.shape == (size, size):
        return np.ascontiguousarray(gray)
    shrinking = gray.shape[0] > size or gray.shape[1] > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(gray, (size, size), interpolation=interpolation)


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def intensity_statistics(images: np.ndarray, sample: int = 2000) -> tuple[float, float]:
    """Mean and standard deviation of pixel values in [0, 1] over a fixed sample of images."""
    step = max(1, len(images) // sample)
    values = images[::step].astype(np.float32) / 255.0
    return float(values.mean()), float(max(values.std(), 1e-3))


def make_preprocessing(
    *, image_size: int, channels: int, pretrained: bool, images: np.ndarray | None = None
) -> Preprocessing:
    """ImageNet statistics for pretrained models; the training images' own for the rest."""
    if pretrained:
        return Preprocessing(
            image_size, channels, IMAGENET_MEAN[:channels], IMAGENET_STD[:channels]
        )
    mean, std = intensity_statistics(images) if images is not None else (0.5, 0.25)
    return Preprocessing(image_size, channels, (mean,) * channels, (std,) * channels)


def to_model_input(
    batch: torch.Tensor,
    preprocessing: Preprocessing,
    *,
    device: torch.device | str = "cpu",
    channels_last: bool = False,
) -> torch.Tensor:
    """(B, H, W) uint8 or (B, 1, H, W) float in [0, 1] -> normalised (B, C, H, W) float32."""
    x = batch.to(device, non_blocking=True)
    if x.dtype == torch.uint8:
        x = x.unsqueeze(1).float().div_(255.0)
    mean = torch.tensor(preprocessing.mean, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(preprocessing.std, device=x.device).view(1, -1, 1, 1)
    # Grayscale repeated for 3-channel (ImageNet) models: broadcasting does the repeat.
    x = (x - mean) / std
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


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


def prepare_images(pixels: list[np.ndarray], preprocessing: Preprocessing) -> torch.Tensor:
    """Decoded images of any size -> the model input batch, exactly as in training."""
    squares = np.stack([resize_square(image, preprocessing.image_size) for image in pixels])
    return to_model_input(torch.from_numpy(squares), preprocessing)
