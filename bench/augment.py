"""Batch augmentation cost: the robust recipe's augmentation against a training step, and the
hand-built sampling grid of `core.training.augment._warp` against torch's `affine_grid`.

    python -m bench.augment [--quick]

Per batch of 64 grey 128 px images (cnn_fast's robust recipe): the best of N timings of
(a) torch's affine_grid + grid_sample, (b) `_warp` (the same grid by broadcasting, the same
grid_sample), (c) the whole robust augmentation, (d) flips only, and (e) one cnn_fast training
step (forward, backward, optimizer) on the augmented batch. Prints milliseconds and ratios;
absolute times are this machine's.
"""

from __future__ import annotations

import argparse
import math
import timeit

import torch
from torch.nn import functional

from core.config import ModelConfig, augmentation
from core.models.build import build_model
from core.training.augment import _warp, augment_batch
from core.training.recipes import ROBUST_RECIPES

BATCH, SIZE = 64, 128


def best_ms(function: object, repeats: int) -> float:
    """The best of `repeats` single calls, in milliseconds."""
    return min(timeit.repeat(function, number=1, repeat=repeats)) * 1000  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    arguments = parser.parse_args()
    repeats = 3 if arguments.quick else 20
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (BATCH, SIZE, SIZE), dtype=torch.uint8, generator=generator)
    floats = images.unsqueeze(1).float() / 255
    angle = torch.rand(BATCH, generator=generator) * math.pi / 9
    zoom = 1 + (torch.rand(BATCH, generator=generator) - 0.5) * 0.7
    shift = torch.zeros(BATCH)
    cosine, sine = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cosine, -sine, shift], 1), torch.stack([sine, cosine, shift], 1)], 1
    )

    def with_affine_grid() -> torch.Tensor:
        grid = functional.affine_grid(theta, list(floats.shape), align_corners=False)
        return functional.grid_sample(floats, grid, align_corners=False)

    robust = ROBUST_RECIPES["cnn_fast"]["augment"]
    model, _ = build_model(ModelConfig("cnn_fast", 4))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    labels = torch.randint(0, 4, (BATCH,), generator=generator)

    def training_step() -> None:
        optimizer.zero_grad()
        functional.cross_entropy(model(augment_batch(images, robust, generator)), labels).backward()
        optimizer.step()

    timings = {
        "affine_grid + grid_sample": best_ms(with_affine_grid, repeats),
        "_warp (broadcast grid + grid_sample)": best_ms(
            lambda: _warp(floats, angle, zoom, shift, shift), repeats
        ),
        "robust augmentation": best_ms(lambda: augment_batch(images, robust, generator), repeats),
        "flips only": best_ms(
            lambda: augment_batch(images, augmentation(["flip"]), generator), repeats
        ),
        "cnn_fast training step": best_ms(training_step, repeats),
    }
    print(f"batch of {BATCH} x {SIZE} px, best of {repeats}, torch {torch.__version__}")
    for name, milliseconds in timings.items():
        print(f"  {name:<38} {milliseconds:8.2f} ms")
    warp_ratio = (
        timings["affine_grid + grid_sample"] / timings["_warp (broadcast grid + grid_sample)"]
    )
    share = timings["robust augmentation"] / timings["cnn_fast training step"]
    print(f"affine_grid path / _warp: {warp_ratio:.2f}x")
    print(f"robust augmentation / whole training step (which includes it): {share:.2f}")


if __name__ == "__main__":
    main()
