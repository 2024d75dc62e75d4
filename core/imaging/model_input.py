"""How a decoded image becomes a model's input: normalisation statistics and the batch
transform shared by training, evaluation and inference (no train/serve skew).
"""

from __future__ import annotations

import numpy as np
import torch

from core.config import Preprocessing
from core.imaging.pixels import resize_square

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


def prepare_images(pixels: list[np.ndarray], preprocessing: Preprocessing) -> torch.Tensor:
    """Decoded images of any size -> the model input batch, exactly as in training."""
    squares = np.stack([resize_square(image, preprocessing.image_size) for image in pixels])
    return to_model_input(torch.from_numpy(squares), preprocessing)
