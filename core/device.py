"""Which compute device the workbench uses, described for people."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch


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
