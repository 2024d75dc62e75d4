"""Training images/s: the workbench pipeline vs. the naive ImageFolder pipeline, in one run.

    python -m bench.train_throughput [DATA_DIR] [--models cnn_fast mobilenet_v2 resnet18]
        [--image-size S] [--batch-size 32] [--batches 10] [--quick]

Same model, image size, batch size, optimizer (AdamW) and machine for both sides:
- naive: what tutorials for this dataset do: torchvision ImageFolder + PIL transforms per image
  per epoch (resize, flip, rotation, colour jitter, to-tensor, normalise) + a DataLoader with
  2 workers, fp32, default memory format;
- workbench: images decoded once into a uint8 tensor (the cached array), per-sample
  augmentation on whole batches, channels_last, the engine's `train_one_epoch`.
Both train every layer. Each side runs 2 warm-up batches, then `--batches` timed batches.
Without DATA_DIR: the real dataset when present, else the synthetic demo.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision import transforms as tv

from core import models, paths, synthetic
from core.config import AugmentConfig, DataConfig, ModelConfig, TrainConfig
from core.engine import StepSettings, train_one_epoch
from core.optimization import make_optimizer
from core.training_data import prepare_training_data
from core.transforms import IMAGENET_MEAN, IMAGENET_STD, make_preprocessing

WARMUP_BATCHES = 2


def build(name: str) -> tuple[nn.Module, models.ModelSpec, torch.optim.Optimizer]:
    """The model (random init: speed does not depend on the weights) and its optimizer."""
    spec = models.get_spec(name)
    config = ModelConfig(name, 4, in_channels=spec.default_channels)
    model, _ = models.build_model(config)
    return model.train(), spec, make_optimizer(model, spec, TrainConfig(lr=1e-4))


def naive_images_per_second(
    root: Path, name: str, image_size: int, batch_size: int, batches: int
) -> float:
    """Images/s of the tutorial pipeline (ImageFolder + PIL transforms + DataLoader)."""
    model, spec, optimizer = build(name)
    channels = spec.default_channels
    steps = [tv.Resize((image_size, image_size))]
    steps += [tv.Grayscale(1)] if channels == 1 else [tv.Lambda(lambda image: image.convert("RGB"))]
    steps += [
        tv.RandomHorizontalFlip(),
        tv.RandomRotation(10),
        tv.ColorJitter(brightness=0.1, contrast=0.1),
        tv.ToTensor(),
        tv.Normalize(IMAGENET_MEAN[:channels], IMAGENET_STD[:channels]),
    ]
    folder = datasets.ImageFolder(str(root / "Training"), transform=tv.Compose(steps))
    loader = DataLoader(folder, batch_size=batch_size, shuffle=True, num_workers=2)
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
        if step + 1 == WARMUP_BATCHES + batches:
            break
    return seen / (time.perf_counter() - started)


def workbench_images_per_second(
    root: Path, name: str, image_size: int, batch_size: int, batches: int
) -> float:
    """Images/s of the workbench's engine on cached uint8 images, batch augmentation."""
    model, spec, optimizer = build(name)
    data = prepare_training_data(DataConfig(str(root), image_size=image_size))
    images, labels = data.subset("train")
    preprocessing = make_preprocessing(
        image_size=image_size, channels=spec.default_channels, pretrained=True
    )
    settings = StepSettings(preprocessing, torch.device("cpu"), channels_last=True)
    model.to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(0)

    def run(count: int) -> float:
        stats = train_one_epoch(
            model, images[: count * batch_size], labels[: count * batch_size],
            optimizer=optimizer, scheduler=None, loss_function=nn.CrossEntropyLoss(),
            settings=settings, batch_size=batch_size, generator=generator,
            augment=AugmentConfig(),
        )  # fmt: skip
        return stats.images_per_second

    run(WARMUP_BATCHES)
    return run(batches)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path)
    parser.add_argument("--models", nargs="+", default=["cnn_fast", "mobilenet_v2", "resnet18"])
    parser.add_argument("--image-size", type=int, help="default: each model's own")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="demo data, 64 px, 2 batches")
    arguments = parser.parse_args()
    root = arguments.data_dir
    if arguments.quick:
        root = synthetic.generate_demo_dataset(paths.demo_dataset_dir())
        arguments.image_size, arguments.batches, arguments.batch_size = 64, 2, 16
        arguments.models = ["cnn_fast", "mobilenet_v2"]
    elif root is None:
        real = paths.real_dataset_dir()
        root = real if (real / "Training").is_dir() else paths.demo_dataset_dir()
    print(f"data: {root}; batch {arguments.batch_size}; {arguments.batches} timed batches")
    print("| model | px | naive img/s | workbench img/s | ratio |")
    print("|---|---:|---:|---:|---:|")
    ratios = {}
    for name in arguments.models:
        size = arguments.image_size or models.get_spec(name).default_image_size
        shape = (root, name, size, arguments.batch_size, arguments.batches)
        naive = naive_images_per_second(*shape)
        fast = workbench_images_per_second(*shape)
        ratios[name] = fast / naive
        print(f"| {name} | {size} | {naive:.1f} | {fast:.1f} | {ratios[name]:.2f}x |")
    listed = ", ".join(f"{name} {ratio:.2f}x" for name, ratio in ratios.items())
    print(f"summary: workbench / naive training throughput: {listed} (target >= 3x)")


if __name__ == "__main__":
    main()
