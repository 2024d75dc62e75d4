"""A model's stages from the registry: their outputs for an input, their sizes and receptive
fields, and the first convolution's kernels."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.config import ModelConfig
from core.models.build import build_model
from core.models.registry import get_spec


@dataclass(frozen=True)
class StageInfo:
    """One stage (block) of a model: its position, output shape and receptive field."""

    index: int
    name: str
    channels: int
    height: int
    width: int
    stride: int  # input pixels per output pixel
    receptive_field: int  # input pixels (per side) that one output unit sees


def model_stages(model: nn.Module, model_name: str) -> list[nn.Module]:
    """The registry's blocks of `model`, without the classifier tail."""
    return get_spec(model_name).stages(model)[:-1]


def stage_names(model: nn.Module, model_name: str) -> list[str]:
    """The kind of each block ('Sequential', 'InvertedResidual', ...), in order."""
    return [type(stage).__name__ for stage in model_stages(model, model_name)]


@torch.inference_mode()
def stage_outputs(model: nn.Module, model_name: str, x: torch.Tensor) -> list[torch.Tensor]:
    """Each block's output for input `x` (B, C, H, W), in order (running the blocks in turn is
    the model's own forward up to its tail)."""
    outputs = []
    for stage in model_stages(model, model_name):
        x = stage(x)
        outputs.append(x)
    return outputs


def receptive_fields(
    model: nn.Module, model_name: str, channels: int, size: int
) -> list[StageInfo]:
    """Output shape, stride and receptive field of every block, measured: the input pixels
    whose gradient reaches the centre unit of the block's output (a random input, so that no
    ReLU is dead by construction; at most the input's size). A squeeze-and-excitation block
    (MobileNetV3, EfficientNet) pools the whole image, so from there on a unit can see all of
    it, while a later block without one may again see only its convolutions' window."""
    was_training = model.training
    model.eval()
    stages = model_stages(model, model_name)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, channels, size, size, generator=generator, requires_grad=True)
    infos = []
    try:
        out = x
        for index, stage in enumerate(stages, 1):  # one forward; a gradient per block's output
            out = stage(out)
            _, depth, height, width = out.shape
            (gradient,) = torch.autograd.grad(
                out[0, :, height // 2, width // 2].sum(), x, retain_graph=True
            )
            reached = np.argwhere(gradient[0].abs().sum(0).numpy() > 0)
            extent = int(max(reached.max(0) - reached.min(0)) + 1) if len(reached) else 0
            infos.append(StageInfo(
                index, type(stage).__name__, depth, height, width, max(1, size // height), extent,
            ))  # fmt: skip
    finally:
        model.train(was_training)
    return infos


def first_convolution(model: nn.Module) -> nn.Conv2d:
    """The model's first 2-D convolution (the one that sees pixels)."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise ValueError("the model has no 2-D convolution")


def filter_grid(model: nn.Module, *, gap: int = 1) -> np.ndarray:
    """The first convolution's kernels as one image per input channel: (C_in, rows * k, cols *
    k) float32 in [0, 1], each kernel scaled on its own (symmetric around 0, so grey is 0),
    kernels in rows of ceil(sqrt(C_out)) with a `gap` of NaN between them."""
    weights = first_convolution(model).weight.detach().float().cpu().numpy()  # (out, in, k, k)
    count, inputs, height, width = weights.shape
    columns = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    grid = np.full(
        (inputs, rows * (height + gap) - gap, columns * (width + gap) - gap), np.nan, np.float32
    )
    for number, kernel in enumerate(weights):
        row, column = divmod(number, columns)
        scale = float(np.abs(kernel).max()) or 1.0
        top, left = row * (height + gap), column * (width + gap)
        grid[:, top : top + height, left : left + width] = kernel / (2 * scale) + 0.5
    return grid


def strongest_channels(output: torch.Tensor, count: int) -> list[int]:
    """The `count` channels of one image's stage output (1, C, H, W) with the largest mean
    activation, strongest first."""
    means = output[0].float().mean(dim=(1, 2))
    return means.argsort(descending=True)[:count].tolist()


@functools.lru_cache(maxsize=16)
def architecture_fields(model_name: str, channels: int, size: int) -> tuple[StageInfo, ...]:
    """`receptive_fields` of the architecture (a freshly initialised model: the extent does not
    depend on trained weights), computed once per model, channels and input size."""
    with torch.random.fork_rng():  # a fixed initialisation: the same answer every time
        torch.manual_seed(0)
        model, _ = build_model(ModelConfig(model_name, 4, in_channels=channels))
    return tuple(receptive_fields(model, model_name, channels, size))
