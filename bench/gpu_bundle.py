"""Prepare what a lent GPU machine needs for the GPU benchmark, under its 64 MiB carry limit.

    python -m bench.gpu_bundle [DATA_DIR] [--to gpu]

Writes, inside the git-ignored `gpu/` folder (not `data/`, where a dataset copy would become
the app's default dataset):
- `<to>/<dataset name>/`: a copy of the dataset's image files (the device tool carries only the
  working tree, and the shared dataset lies outside it);
- `<to>/fp16-weights/`: MobileNetV2's verified ImageNet weights as float16 with a manifest of
  both hashes (`core.pretrained.export_fp16_copy`; 7 MB instead of 14), which the workbench
  there loads back as float32 and records as an fp16 copy.
Then prints the `carry` paths, their size, and the command to run on the GPU machine.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from core import paths
from core.models import pretrained

CARRY_LIMIT_BYTES = 64 * 2**20


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=paths.real_dataset_dir())
    parser.add_argument("--to", type=Path, default=paths.gpu_bundle_dir())
    arguments = parser.parse_args()
    source: Path = arguments.data_dir.resolve()
    if not (source / "Training").is_dir():
        raise SystemExit(f"error: no Training/ folder in {source}")
    bundle: Path = arguments.to
    dataset = bundle / source.name
    if dataset.exists():
        shutil.rmtree(dataset)
    # Only the images: the dataset's README and licence stay where they are.
    shutil.copytree(source, dataset, ignore=shutil.ignore_patterns("*.md", "*.txt", ".*"))
    weights = pretrained.export_fp16_copy("mobilenet_v2", bundle / "fp16-weights")
    size = folder_bytes(bundle)
    root = paths.PROJECT_ROOT
    carried = [str(dataset.relative_to(root)), str(weights.parent.relative_to(root))]
    print(f"bundle: {bundle} ({size / 2**20:.1f} MiB of the {CARRY_LIMIT_BYTES // 2**20} MiB)")
    print(f"carry: {carried}")
    print(
        "command: "
        f"{paths.FP16_WEIGHTS_ENV}={carried[1]} python3 -m bench.time_to_accuracy {carried[0]} "
        "--models mobilenet_v2 --target 0.997 --set freeze=none image_size=224 batch_size=128"
    )
    if size > CARRY_LIMIT_BYTES:
        raise SystemExit("error: the bundle is over the carry limit")


if __name__ == "__main__":
    main()
