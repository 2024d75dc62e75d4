"""Training images/s: the workbench pipeline vs. the naive ImageFolder pipeline, in one run.

    python -m bench.train_throughput [DATA_DIR] [--settings cnn_fast mobilenet_v2:top-5 ...]
        [--image-size S] [--batch-size 32] [--batches 10] [--epochs 14] [--augment PART ...]
        [--compile] [--quick]

A setting is MODEL or MODEL:FREEZE (none, head, top-N); the default ones: cnn_fast, MobileNetV2
with every layer training and with the recipe's freeze policy, ResNet18 with every layer training
(ImageNet weights where a freeze policy needs them and they are here; else a random init:
throughput does not depend on the weights' values). Same model, freeze policy, image size,
batch size, augmentation (`--augment`, default flip, geometry and intensity), optimizer (AdamW)
and machine for both sides:
- naive: what tutorials for this dataset do: torchvision ImageFolder + PIL transforms per image
  per epoch (resize; flip, rotation/zoom/shift, colour jitter as chosen; to-tensor, normalise)
  + a DataLoader with 2 workers, fp32, default memory format; frozen blocks get
  requires_grad=False but still run every batch;
- workbench: images decoded once into a uint8 tensor (the cached array), per-sample
  augmentation on whole batches, channels_last, the engine's `train_one_epoch`; with a freeze
  policy, frozen-layer caching (core.frozen_cache): the frozen blocks run once per image and
  view, and each epoch trains the top on cached features. Its images/s is then given per epoch
  after caching and amortised over a run of `--epochs` epochs with the recipe's views.
Each side runs 2 warm-up batches, then `--batches` timed batches. Without DATA_DIR: the real
dataset when present, else the synthetic demo.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision import transforms as tv

from core import paths
from core.config import (
    AUGMENT_PARTS,
    AugmentConfig,
    DataConfig,
    ModelConfig,
    TrainConfig,
    augmentation,
)
from core.data import synthetic
from core.data.training_data import prepare_training_data
from core.imaging.model_input import IMAGENET_MEAN, IMAGENET_STD, make_preprocessing
from core.models import pretrained
from core.models.build import build_model, set_train_mode, split_frozen
from core.models.registry import get_spec
from core.models.spec import ModelSpec
from core.training.frozen_cache import FrozenFeatureCache
from core.training.loops import StepSettings, train_one_epoch
from core.training.optimization import make_optimizer
from core.training.recipes import FAST_CPU_RECIPES

WARMUP_BATCHES = 2
MOBILENET_RECIPE = FAST_CPU_RECIPES["mobilenet_v2"]


def build(name: str, freeze: str) -> tuple[nn.Module, ModelSpec, torch.optim.Optimizer]:
    """The model (ImageNet weights where a freeze policy needs them) and its optimizer."""
    spec = get_spec(name)
    use_pretrained = freeze != "none" and pretrained.weights_available(name)
    config = ModelConfig(
        name, 4, in_channels=spec.default_channels, pretrained=use_pretrained, freeze=freeze
    )
    model, _ = build_model(config)
    set_train_mode(model, spec, freeze)
    return model, spec, make_optimizer(model, spec, TrainConfig(lr=1e-4))


@dataclass(frozen=True)
class Measured:
    """What both pipelines share in one comparison."""

    root: Path
    name: str
    freeze: str
    image_size: int
    batch_size: int
    batches: int
    augment: AugmentConfig


def naive_augmentation(augment: AugmentConfig) -> list[object]:
    """The PIL transforms a tutorial would write for the same augmentation."""
    steps: list[object] = [tv.RandomHorizontalFlip()] if augment.flip else []
    if "geometry" in augment.parts:
        zoom, shift = augment.scale, augment.shift
        steps.append(tv.RandomAffine(augment.rotate_degrees, (shift, shift), (1 - zoom, 1 + zoom)))
    if "intensity" in augment.parts:
        steps.append(tv.ColorJitter(brightness=augment.brightness, contrast=augment.contrast))
    return steps


def naive_images_per_second(measured: Measured) -> float:
    """Images/s of the tutorial pipeline (ImageFolder + PIL transforms + DataLoader)."""
    model, spec, optimizer = build(measured.name, measured.freeze)
    channels = spec.default_channels
    steps = [tv.Resize((measured.image_size, measured.image_size))]
    steps += [tv.Grayscale(1)] if channels == 1 else [tv.Lambda(lambda image: image.convert("RGB"))]
    steps += naive_augmentation(measured.augment)
    steps += [tv.ToTensor(), tv.Normalize(IMAGENET_MEAN[:channels], IMAGENET_STD[:channels])]
    folder = datasets.ImageFolder(str(measured.root / "Training"), transform=tv.Compose(steps))
    loader = DataLoader(folder, batch_size=measured.batch_size, shuffle=True, num_workers=2)
    loss_function = nn.CrossEntropyLoss()
    seen, started = 0, 0.0
    for step, (x, y) in enumerate(loader):
        if step == WARMUP_BATCHES:
            seen, started = 0, time.perf_counter()
        loss = loss_function(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(y)
        if step + 1 == WARMUP_BATCHES + measured.batches:
            break
    return seen / (time.perf_counter() - started)


def workbench_images_per_second(
    measured: Measured, compile_model: bool = False
) -> tuple[float, float, float]:
    """(images/s per epoch, seconds per image and view of caching (0 without a freeze), seconds
    of the warm-up batches (with `compile_model`: mostly torch.compile's compilation))."""
    model, spec, optimizer = build(measured.name, measured.freeze)
    data = prepare_training_data(DataConfig(str(measured.root), image_size=measured.image_size))
    images, labels = data.subset("train")
    preprocessing = make_preprocessing(
        image_size=measured.image_size, channels=spec.default_channels, pretrained=True
    )
    settings = StepSettings(preprocessing, torch.device("cpu"), channels_last=True)
    model.to(memory_format=torch.channels_last)
    frozen, trainable = split_frozen(model, spec, measured.freeze)
    batch_size = measured.batch_size
    cache_seconds, batch_augment = 0.0, measured.augment
    count = (WARMUP_BATCHES + measured.batches) * batch_size
    images, labels = images[:count], labels[:count]
    if frozen is not None:
        cache = FrozenFeatureCache(frozen, settings, measured.augment, views=1, seed=0)
        cache.features(images[:batch_size])  # warm-up
        started = time.perf_counter()
        images = cache.features(images)
        cache_seconds = (time.perf_counter() - started) / len(images)
        model, settings, batch_augment = trainable, cache.feature_settings, None
    generator = torch.Generator().manual_seed(0)
    if compile_model:
        model = torch.compile(model)

    def run(first: int, last: int) -> float:
        stats = train_one_epoch(
            model, images[first * batch_size : last * batch_size],
            labels[first * batch_size : last * batch_size], optimizer=optimizer,
            scheduler=None, loss_function=nn.CrossEntropyLoss(), settings=settings,
            batch_size=batch_size, generator=generator, augment=batch_augment,
        )  # fmt: skip
        return stats.images_per_second

    started = time.perf_counter()
    run(0, WARMUP_BATCHES)
    warmup_seconds = time.perf_counter() - started
    return run(WARMUP_BATCHES, WARMUP_BATCHES + measured.batches), cache_seconds, warmup_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path)
    parser.add_argument(
        "--settings",
        nargs="+",
        default=[
            "cnn_fast",
            "mobilenet_v2",
            f"mobilenet_v2:{MOBILENET_RECIPE['freeze']}",
            "resnet18",
        ],
    )
    parser.add_argument("--image-size", type=int, help="default: each model's own")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=10)
    # Amortise the caching over a run as long as the MobileNetV2 recipe's, with its views.
    parser.add_argument("--epochs", type=int, default=MOBILENET_RECIPE["epochs"])
    parser.add_argument("--views", type=int, default=TrainConfig().frozen_views)
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the workbench's trained model (its compile time is printed apart)",
    )
    parser.add_argument(
        "--augment",
        nargs="*",
        choices=AUGMENT_PARTS,
        default=list(AUGMENT_PARTS),
        metavar="PART",
        help=f"augmentation of both pipelines, from: {' '.join(AUGMENT_PARTS)} (default all)",
    )
    parser.add_argument("--quick", action="store_true", help="demo data, 64 px, 2 batches")
    arguments = parser.parse_args()
    root = arguments.data_dir
    if arguments.quick:
        root = synthetic.generate_demo_dataset(paths.demo_dataset_dir())
        arguments.image_size, arguments.batches, arguments.batch_size = 64, 2, 16
        arguments.settings = ["cnn_fast", "mobilenet_v2:top-2"]
    elif root is None:
        real = paths.real_dataset_dir()
        root = real if (real / "Training").is_dir() else paths.demo_dataset_dir()
    epochs, views = arguments.epochs, arguments.views
    augment = augmentation(arguments.augment)
    print(
        f"data: {root}; batch {arguments.batch_size}; {arguments.batches} timed batches; "
        f"augmentation: {augment.label}"
    )
    print(
        f"| model | freeze | px | naive img/s | workbench img/s per epoch | "
        f"workbench img/s over {epochs} epochs | ratio |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    ratios, warmups = {}, []
    for setting in arguments.settings:
        name, _, freeze = setting.partition(":")
        freeze = freeze or "none"
        size = arguments.image_size or get_spec(name).default_image_size
        measured = Measured(
            root, name, freeze, size, arguments.batch_size, arguments.batches, augment
        )
        naive = naive_images_per_second(measured)
        per_epoch, cache_seconds, warmup = workbench_images_per_second(
            measured, compile_model=arguments.compile
        )
        warmups.append(f"{setting} {warmup:.1f} s")
        # A run trains `epochs` epochs and caches `views` views of every image once.
        amortised = epochs / (views * cache_seconds + epochs / per_epoch)
        ratios[setting] = amortised / naive
        print(
            f"| {name} | {freeze} | {size} | {naive:.1f} | {per_epoch:.1f} | {amortised:.1f} "
            f"| {ratios[setting]:.2f}x |"
        )
    if arguments.compile:
        print(f"torch.compile: the {WARMUP_BATCHES} warm-up batches took " + ", ".join(warmups))
    listed = ", ".join(f"{setting} {ratio:.2f}x" for setting, ratio in ratios.items())
    print(f"summary: workbench / naive training throughput over a run: {listed} (target >= 3x)")


if __name__ == "__main__":
    main()
