"""The decoded-image cache: every image of a dataset at one size, as a uint8 array in RAM.

Decoding 7,000 JPEGs takes seconds; loading the cached array takes a fraction of one. Training,
the audit and the image statistics all read pixels from here instead of from the files.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from core.data.discovery import DatasetError
from core.data.index import Dataset, array_cache_path, save_image_array
from core.events import Events, report_progress
from core.imaging.pixels import ImageReadError, resize_square
from core.imaging.reader import read_image


def _decode_resized(path: Path, size: int) -> np.ndarray:
    try:
        return resize_square(read_image(path).pixels, size)
    except ImageReadError as error:
        # The index said this file was readable: it changed on disk since.
        raise DatasetError(
            f"{error}; the dataset changed since it was indexed, reopen it"
        ) from error


def decode_all(dataset: Dataset, size: int, events: Events | None = None) -> np.ndarray:
    """Decode every indexed image to a (N, size, size) uint8 array, in index order."""
    files = dataset.absolute_paths()
    result = np.empty((len(files), size, size), dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=2) as pool:
        decoded = pool.map(lambda path: _decode_resized(path, size), files)
        for position, image in enumerate(decoded):
            result[position] = image
            done = position + 1
            if done % 200 == 0 or done == len(files):
                message = f"Decoding images at {size} px: {done}/{len(files)}"
                report_progress(events, "decode", done, len(files), message)
    return result


def load_images(dataset: Dataset, size: int, events: Events | None = None) -> np.ndarray:
    """The (N, size, size) uint8 array of all images, from the cache or decoded once and cached."""
    if size < 8 or size > 1024:
        raise ValueError(f"image size {size} is outside 8..1024 pixels")
    cache_path = array_cache_path(dataset, size)
    expected_shape = (len(dataset.frame), size, size)
    try:
        cached = np.load(cache_path, allow_pickle=False)
        if cached.shape == expected_shape and cached.dtype == np.uint8:
            return cached
    except (OSError, ValueError):
        pass  # missing or damaged: rebuild below
    images = decode_all(dataset, size, events)
    save_image_array(dataset, size, images)
    return images
