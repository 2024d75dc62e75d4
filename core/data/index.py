"""Index every image of a dataset and cache the index.

The index (one row per readable image) is built once and cached under the cache folder,
keyed by a listing fingerprint, so a second open of the same, unchanged folder is instant.
"""

from __future__ import annotations

import functools
import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core import paths
from core.atomic_files import read_json, write_json_atomic, write_with_atomic
from core.data import synthetic
from core.data.discovery import SPLIT_ORDER, DatasetError, DatasetLayout, SkippedFile, discover
from core.events import Events, report_progress
from core.imaging.pixels import ImageReadError, resize_square, to_grayscale
from core.imaging.reader import read_image

INDEX_VERSION = 1
# Indexing decodes every image anyway: it also keeps it at this size (the audit's and cnn_fast's)
# and saves that as the decoded-image cache, so no one decodes the dataset a second time for it.
INDEX_IMAGE_SIZE = 128

INDEX_COLUMNS = [
    "path",
    "label",
    "split",
    "width",
    "height",
    "channels",
    "mode",
    "format",
    "file_bytes",
    "file_hash",
    "pixel_hash",
    "mean_intensity",
]


@dataclass(frozen=True)
class Dataset:
    """An indexed dataset: one row per readable image, plus what was skipped."""

    root: Path
    layout: str
    classes: tuple[str, ...]
    frame: pd.DataFrame = field(repr=False)
    skipped: tuple[SkippedFile, ...]
    listing_fingerprint: str
    synthetic: bool

    @functools.cached_property
    def fingerprint(self) -> str:
        """Content fingerprint: changes when any image's bytes, label or split changes.

        Computed once per Dataset (45 ms for the real dataset's 7,019 rows): pages ask for it
        on every rerun, and a Dataset never changes after it is built."""
        digest = hashlib.sha1()
        for row in self.frame[["path", "label", "split", "file_hash"]].itertuples(index=False):
            digest.update("|".join(row).encode("utf-8"))
            digest.update(b"\n")
        return digest.hexdigest()[:16]

    @property
    def splits(self) -> tuple[str, ...]:
        """The official splits present, in train/val/test order."""
        present = set(self.frame["split"])
        return tuple(split for split in SPLIT_ORDER if split in present)

    def counts(self) -> dict[str, dict[str, int]]:
        """Number of images per split and class (every class listed, zeros included)."""
        table = self.frame.groupby(["split", "label"]).size()
        return {
            split: {label: int(table.get((split, label), 0)) for label in self.classes}
            for split in self.splits
        }

    def cache_dir(self) -> Path:
        """The folder where everything derived from this dataset is cached."""
        return dataset_cache_dir(self.root)

    def absolute_paths(self) -> list[Path]:
        """Absolute path of every indexed image, in index order."""
        return [self.root / relative for relative in self.frame["path"]]


def dataset_cache_dir(root: Path) -> Path:
    """Cache folder of a dataset root: readable name plus a hash of its absolute path."""
    resolved = Path(root).expanduser().resolve()
    path_hash = hashlib.sha1(str(resolved).encode("utf-8")).hexdigest()[:10]
    slug = "".join(char if char.isalnum() or char in "-_" else "-" for char in resolved.name)
    return paths.cache_root() / "datasets" / f"{slug or 'dataset'}-{path_hash}"


def array_cache_path(dataset: Dataset, size: int) -> Path:
    """Where the decoded array of `dataset` at `size` pixels is cached."""
    return dataset.cache_dir() / f"images-{size}px-{dataset.listing_fingerprint}.npy"


def save_image_array(dataset: Dataset, size: int, images: np.ndarray) -> Path:
    """Cache `images` (N, size, size) as the decoded array at `size`; drop older listings' ones."""
    keep = array_cache_path(dataset, size)
    write_with_atomic(keep, lambda handle: np.save(handle, images, allow_pickle=False))
    for stale in dataset.cache_dir().glob(f"images-{size}px-*.npy"):
        if stale != keep:
            stale.unlink(missing_ok=True)
    return keep


def _listing_fingerprint(layout: DatasetLayout) -> str:
    # Sizes and modification times stand in for content: cheap to read, and any edit changes them.
    digest = hashlib.sha1(f"index-v{INDEX_VERSION}".encode())
    for relative, label, split in layout.files:
        stat = (layout.root / relative).stat()
        digest.update(f"{relative}|{label}|{split}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def pixel_hash(gray: np.ndarray) -> str:
    """SHA-1 of a grayscale image's shape and pixels: equal for identical decoded pixels,
    whatever the file format."""
    digest = hashlib.sha1(f"{gray.shape}".encode())
    digest.update(np.ascontiguousarray(gray).data)
    return digest.hexdigest()


def _describe_image(
    root: Path, relative: str
) -> tuple[dict[str, object], np.ndarray] | SkippedFile:
    """One index row and the INDEX_IMAGE_SIZE thumbnail of an image file, or why it is unusable.

    The thumbnail is `resize_square` of the same decode, exactly what the image cache would
    compute; the full-size pixels are dropped on return.
    """
    try:
        data = (root / relative).read_bytes()
    except OSError as error:
        return SkippedFile(relative, f"cannot read file: {error.strerror or error}")
    try:
        image = read_image(data, name=relative)
    except ImageReadError as error:
        return SkippedFile(relative, error.reason)
    gray = to_grayscale(image.pixels)
    # resize_square(image.pixels) starts with to_grayscale, which passes `gray` through as is.
    thumbnail = resize_square(gray, INDEX_IMAGE_SIZE)
    row = {
        "path": relative,
        "width": image.width,
        "height": image.height,
        "channels": image.channels,
        "mode": image.mode,
        "format": image.format,
        "file_bytes": len(data),
        "file_hash": hashlib.sha1(data).hexdigest(),
        "pixel_hash": pixel_hash(gray),
        "mean_intensity": float(gray.mean()),
    }
    return row, thumbnail


def build_index(
    layout: DatasetLayout, events: Events | None = None
) -> tuple[pd.DataFrame, list[SkippedFile], np.ndarray]:
    """Decode every candidate image once: its size, channels and content hashes.

    Also gives the (rows, INDEX_IMAGE_SIZE, INDEX_IMAGE_SIZE) uint8 thumbnails, in row order.
    """
    rows: list[dict[str, object]] = []
    skipped: list[SkippedFile] = []
    total = len(layout.files)
    size = INDEX_IMAGE_SIZE
    thumbnails = np.empty((total, size, size), dtype=np.uint8)
    # Decoding releases the GIL, so two threads use both cores of a small machine.
    with ThreadPoolExecutor(max_workers=2) as pool:
        described = pool.map(lambda item: _describe_image(layout.root, item[0]), layout.files)
        for done, ((_, label, split), result) in enumerate(
            zip(layout.files, described, strict=True), 1
        ):
            if isinstance(result, SkippedFile):
                skipped.append(result)
            else:
                row, thumbnail = result
                thumbnails[len(rows)] = thumbnail
                rows.append({**row, "label": label, "split": split})
            if done % 200 == 0 or done == total:
                report_progress(events, "index", done, total, f"Indexing images: {done}/{total}")
    frame = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    return frame, skipped, thumbnails[: len(rows)]


def _load_cached_index(
    cache_dir: Path, fingerprint: str
) -> tuple[pd.DataFrame, list[SkippedFile]] | None:
    meta = read_json(cache_dir / "index.json")
    if not isinstance(meta, dict) or meta.get("listing_fingerprint") != fingerprint:
        return None
    try:
        frame = pd.read_parquet(cache_dir / "index.parquet")
    except (OSError, ValueError):
        return None
    skipped = [SkippedFile(item["path"], item["reason"]) for item in meta.get("unreadable", [])]
    return frame, skipped


def _save_index(
    cache_dir: Path, fingerprint: str, frame: pd.DataFrame, unreadable: list[SkippedFile]
) -> None:
    write_with_atomic(
        cache_dir / "index.parquet", lambda handle: frame.to_parquet(handle, index=False)
    )
    write_json_atomic(
        cache_dir / "index.json",
        {
            "listing_fingerprint": fingerprint,
            "index_version": INDEX_VERSION,
            "images": len(frame),
            "unreadable": [{"path": item.path, "reason": item.reason} for item in unreadable],
        },
    )


def open_dataset(root: Path, events: Events | None = None, *, for_testing: bool = False) -> Dataset:
    """Discover and index a dataset, reusing the cached index when the folder is unchanged.

    `for_testing`: a folder only to score a model on (see `discover`)."""
    layout = discover(root, for_testing=for_testing)
    listing_fingerprint = _listing_fingerprint(layout)
    cache_dir = dataset_cache_dir(layout.root)
    cached = _load_cached_index(cache_dir, listing_fingerprint)
    thumbnails = None
    if cached is None:
        frame, unreadable, thumbnails = build_index(layout, events)
        _save_index(cache_dir, listing_fingerprint, frame, unreadable)
    else:
        frame, unreadable = cached
    if frame.empty:
        raise DatasetError(
            f"{layout.root}: none of the {len(layout.files)} image files could be read"
        )
    dataset = Dataset(
        root=layout.root,
        layout=layout.layout,
        classes=layout.classes,
        frame=frame,
        skipped=layout.skipped + tuple(unreadable),
        listing_fingerprint=listing_fingerprint,
        synthetic=synthetic.is_synthetic_dataset(layout.root),
    )
    if thumbnails is not None:  # the decode just done, kept: load_images at this size reads it
        save_image_array(dataset, INDEX_IMAGE_SIZE, thumbnails)
    return dataset
