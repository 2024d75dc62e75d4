"""Which compute device the workbench uses, described for people, and how it runs there.

`compute_policy` is the one place that decides device, precision and memory format, for
training, evaluation and prediction alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

Purpose = Literal["train", "evaluate", "predict"]
PRECISIONS = ("auto", "fp32", "bf16")
# Models whose CPU training is reported faster under bf16 autocast on CPUs with AMX-BF16 matrix
# units (ResNet ~2x; depthwise convolutions gain nothing). Without AMX, bf16 is emulated: on
# this project's AVX2 machine it made training ~10x slower, so "auto" means fp32 there.
CPU_BF16_MODELS = frozenset({"resnet18", "resnet50", "densenet121"})


@dataclass(frozen=True)
class DeviceInfo:
    """The device training and inference run on."""

    kind: str
    name: str
    threads: int
    bf16_matrix_units: bool

    def describe(self) -> str:
        """One line for the sidebar and the CLI."""
        if self.kind == "cuda":
            return f"CUDA GPU: {self.name}"
        extras = ", AMX-BF16" if self.bf16_matrix_units else ""
        return f"CPU: {self.threads} threads{extras}"


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def detect_device() -> DeviceInfo:
    """CUDA when a GPU is usable, else the CPU with its thread count."""
    if torch.cuda.is_available():
        return DeviceInfo("cuda", torch.cuda.get_device_name(0), torch.get_num_threads(), True)
    flags = _cpu_flags()
    return DeviceInfo("cpu", "CPU", torch.get_num_threads(), "amx_bf16" in flags)


@dataclass(frozen=True)
class ComputePolicy:
    """Where and how a model's steps run: device, bf16 autocast, channels_last memory format."""

    device: torch.device
    bf16: bool
    channels_last: bool

    @property
    def precision(self) -> str:
        """The precision's name as config.json records it: "bf16" or "fp32"."""
        return "bf16" if self.bf16 else "fp32"


def compute_policy(
    model_name: str | None = None,
    *,
    precision: str = "auto",
    channels_last: bool | None = None,
    purpose: Purpose = "train",
    device_info: DeviceInfo | None = None,
) -> ComputePolicy:
    """Device, precision and memory format for `model_name` doing `purpose` on this machine.

    Every purpose runs on CUDA when a GPU is usable, else on the CPU. precision "auto" means:
    for training, bf16 on CUDA and on a CPU with AMX-BF16 for CPU_BF16_MODELS, fp32 otherwise;
    for evaluation and prediction always fp32, so a run's scores and probabilities do not depend
    on the machine that computes them. channels_last None means on for training and evaluation
    (measured 1.4x for cnn_fast and MobileNetV2, fp32, on this project's 2-core AVX2 CPU) and
    off for prediction (single images; not measured, so the plain layout is kept).
    The model's name matters only to training's "auto" precision, so only training needs it.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of: {', '.join(PRECISIONS)}")
    if purpose not in ("train", "evaluate", "predict"):
        raise ValueError(f"purpose {purpose!r} is not train, evaluate or predict")
    if purpose == "train" and model_name is None:
        raise ValueError("training's precision depends on the model: pass its name")
    info = device_info or detect_device()
    device = torch.device("cuda" if info.kind == "cuda" else "cpu")
    if precision == "auto":
        fast_bf16 = device.type == "cuda" or (
            info.bf16_matrix_units and model_name in CPU_BF16_MODELS
        )
        bf16 = purpose == "train" and fast_bf16
    else:
        bf16 = precision == "bf16"
    if channels_last is None:
        channels_last = purpose != "predict"
    return ComputePolicy(device, bf16=bf16, channels_last=channels_last)
