"""How long opening a dataset and loading its decoded images takes, cold and warm.

    python -m bench.dataset_load [DATA_DIR] [--size 128] [--quick]

Cold = empty cache folder (index + decode every image); warm = a second load in a new
process-like state (index from parquet, pixels from the .npy cache). Prints a table and the
cold/warm ratio. --quick uses the synthetic demo dataset.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from core import paths
from core.data import image_cache, synthetic
from core.data.index import open_dataset


def timed_load(root: Path, size: int) -> tuple[float, float, int]:
    """Seconds to open the dataset, seconds to get its pixel array, number of images."""
    start = time.perf_counter()
    dataset = open_dataset(root)
    opened = time.perf_counter()
    images = image_cache.load_images(dataset, size)
    return opened - start, time.perf_counter() - opened, len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default=str(paths.real_dataset_dir()))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="use the synthetic demo dataset")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        os.environ[paths.CACHE_DIR_ENV] = cache
        root = Path(arguments.data_dir)
        if arguments.quick:
            root = synthetic.generate_demo_dataset(Path(cache) / "demo")
        cold = timed_load(root, arguments.size)
        warm = timed_load(root, arguments.size)
    print(f"{root}: {cold[2]} images at {arguments.size} px")
    print("| load | open (index) s | pixels s | total s |\n|---|---:|---:|---:|")
    for name, (index_seconds, pixel_seconds, _) in (("cold", cold), ("warm", warm)):
        total = index_seconds + pixel_seconds
        print(f"| {name} | {index_seconds:.2f} | {pixel_seconds:.2f} | {total:.2f} |")
    print(f"warm load is {sum(cold[:2]) / sum(warm[:2]):.1f}x faster than cold")


if __name__ == "__main__":
    main()
