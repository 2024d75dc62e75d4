"""Inference backends: eager PyTorch vs. TorchScript, torch.compile and ONNX Runtime, one image.

    python -m bench.inference_backends [--models cnn_fast mobilenet_v2] [--repeats 50] [--quick]

Per model, at its default input size, batch 1 (one uploaded slice, already preprocessed): p50 and
p95 of the forward pass + softmax after warm-up, for
- eager: what the workbench runs (fp32, channels_last, `torch.inference_mode`);
- torchscript: `torch.jit.trace` + `torch.jit.freeze`;
- compile: `torch.compile` (inductor), with its one-time compile seconds printed;
- onnxruntime: the legacy TorchScript-based ONNX export, run by onnxruntime's CPU provider
  (skipped when `onnxruntime`/`onnx` are not installed: they are not workbench requirements).
The ratio column is eager p50 / backend p50 (above 1: the backend is faster). Grad-CAM needs
autograd through the model, so only the eager model can draw one; a faster backend would serve the
probabilities only. Latency does not depend on the weights' values (random init).
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
import warnings
from collections.abc import Callable

import torch

from core.config import ModelConfig
from core.models.build import build_model
from core.models.registry import get_spec

Forward = Callable[[torch.Tensor], torch.Tensor]
WARMUP_CALLS = 10


def percentiles(forward: Forward, sample: torch.Tensor, repeats: int) -> tuple[float, float]:
    """(p50, p95) milliseconds of forward + softmax, after WARMUP_CALLS warm-up calls."""
    timings = []
    with torch.inference_mode():
        for index in range(WARMUP_CALLS + repeats):
            started = time.perf_counter()
            torch.softmax(forward(sample), dim=1)
            if index >= WARMUP_CALLS:
                timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    return statistics.median(timings), timings[int(0.95 * (len(timings) - 1))]


def eager(model: torch.nn.Module, sample: torch.Tensor) -> Forward:
    """The model as the workbench runs it."""
    return model


def torchscript(model: torch.nn.Module, sample: torch.Tensor) -> Forward:
    """Traced and frozen (constants folded, BatchNorm fused into convolutions)."""
    with torch.inference_mode(False), torch.no_grad():
        return torch.jit.freeze(torch.jit.trace(model, sample))


def compiled(model: torch.nn.Module, sample: torch.Tensor) -> Forward:
    """torch.compile; its first call (the compilation) happens here, outside the timings."""
    forward = torch.compile(model)
    with torch.inference_mode():
        forward(sample)
    return forward


def onnx_runtime(model: torch.nn.Module, sample: torch.Tensor) -> Forward:
    """The model exported to ONNX and run by onnxruntime on the CPU."""
    import onnxruntime  # optional: only this benchmark uses it

    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (sample,), buffer, dynamo=False, input_names=["image"])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    session = onnxruntime.InferenceSession(
        buffer.getvalue(), options, providers=["CPUExecutionProvider"]
    )

    def forward(batch: torch.Tensor) -> torch.Tensor:
        (logits,) = session.run(None, {"image": batch.contiguous().numpy()})
        return torch.from_numpy(logits)

    return forward


BACKENDS: dict[str, Callable[[torch.nn.Module, torch.Tensor], Forward]] = {
    "eager": eager,
    "torchscript": torchscript,
    "compile": compiled,
    "onnxruntime": onnx_runtime,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["cnn_fast", "mobilenet_v2", "resnet18"])
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--quick", action="store_true", help="cnn_fast at 64 px, 5 repeats")
    arguments = parser.parse_args()
    # The exporters' and tracer's deprecation notices would bury the table.
    warnings.filterwarnings("ignore")
    if arguments.quick:
        # torch.compile takes tens of seconds even for a small model: not in the CI smoke run.
        arguments.models, arguments.repeats = ["cnn_fast"], 5
        arguments.backends = [name for name in arguments.backends if name != "compile"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch 1")
    print("| model | px | backend | setup s | p50 ms | p95 ms | eager p50 / p50 |")
    print("|---|---:|---|---:|---:|---:|---:|")
    best: list[str] = []
    for name in arguments.models:
        spec = get_spec(name)
        size = 64 if arguments.quick else spec.default_image_size
        model, _ = build_model(ModelConfig(name, 4, in_channels=spec.default_channels))
        model = model.eval().to(memory_format=torch.channels_last)
        sample = torch.randn(1, spec.default_channels, size, size).to(
            memory_format=torch.channels_last
        )
        results: dict[str, float] = {}
        for backend in arguments.backends:
            started = time.perf_counter()
            try:
                forward = BACKENDS[backend](model, sample)
            except ImportError as error:
                print(f"| {name} | {size} | {backend} | - | - | - | skipped: {error} |")
                continue
            setup = time.perf_counter() - started
            p50, p95 = percentiles(forward, sample, arguments.repeats)
            results[backend] = p50
            ratio = results.get("eager", p50) / p50
            print(f"| {name} | {size} | {backend} | {setup:.1f} | {p50:.1f} | {p95:.1f} "
                  f"| {ratio:.2f}x |")  # fmt: skip
        fastest = min(results, key=results.__getitem__)
        best.append(f"{name} {fastest} ({results['eager'] / results[fastest]:.2f}x eager)")
    print("summary: fastest per model: " + ", ".join(best))


if __name__ == "__main__":
    main()
