"""Find a dataset of MRI slices on disk and index every image in it.

Two layouts are understood:
- Kaggle style: `<root>/<split>/<class>/<image>` with split folders named Training/Train,
  Testing/Test and optionally Validation/Val (any letter case);
- flat: `<root>/<class>/<image>`, where every image belongs to the training part.

The index (one row per readable image) is built once and cached under the cache folder,
keyed by a listing fingerprint, so a second open of the same, unchanged folder is instant.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core import paths, synthetic
from core.imaging import SUPPORTED_EXTENSIONS, ImageReadError, read_image, to_grayscale
from core.storage import read_json, write_json_atomic, write_with_atomic

ProgressCallback = Callable[[int, int, str], None]
"""Called as progress(done, total, message) by long operations."""

INDEX_VERSION = 1
SPLIT_ALIASES = {
    "training": "train",
    "train": "train",
    "testing": "test",
    "test": "test",
    "validation": "val",
    "val": "val",
    "valid": "val",
}
SPLIT_ORDER = ("train", "val", "test")
# Folders that tools leave behind; never classes or splits.
IGNORED_FOLDERS = {"__macosx", ".ipynb_checkpoints", "__pycache__"}
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


class DatasetError(ValueError):
    """A folder that is not a usable dataset; the message says why, in one line."""


@dataclass(frozen=True)
class SkippedFile:
    """A file passed over while reading a dataset, with the reason."""

    path: str
    reason: str


@dataclass(frozen=True)
class DatasetLayout:
    """What discovery found in a folder before any image was decoded."""

    root: Path
    layout: str
    classes: tuple[str, ...]
    files: tuple[tuple[str, str, str], ...]
    skipped: tuple[SkippedFile, ...]


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

    @property
    def fingerprint(self) -> str:
        """Content fingerprint: changes when any image's bytes, label or split changes."""
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


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name.lower() in IGNORED_FOLDERS


def _visible_folders(folder: Path) -> list[Path]:
    return sorted(
        child for child in folder.iterdir() if child.is_dir() and not _is_hidden(child.name)
    )


def _collect_images(class_dir: Path, root: Path, skipped: list[SkippedFile]) -> list[str]:
    """Relative paths of candidate images under a class folder (recursively)."""
    images: list[str] = []
    for path in sorted(class_dir.rglob("*")):
        relative = path.relative_to(root).as_posix()
        parts = path.relative_to(class_dir).parts
        if any(_is_hidden(part) for part in parts[:-1]):
            continue
        if path.is_dir():
            continue
        if _is_hidden(path.name):
            skipped.append(SkippedFile(relative, "hidden file"))
        elif path.suffix.lower() not in SUPPORTED_EXTENSIONS:
            skipped.append(
                SkippedFile(relative, f"not an image file ({path.suffix or 'no extension'})")
            )
        else:
            images.append(relative)
    return images


def _split_folders(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in _visible_folders(root):
        split = SPLIT_ALIASES.get(folder.name.lower())
        if split is None:
            continue
        if split in found:
            raise DatasetError(
                f"{root}: two folders mean the same split: {found[split].name}, {folder.name}"
            )
        found[split] = folder
    return found


def discover(root: Path) -> DatasetLayout:
    """Find the layout, classes and candidate image files of a dataset folder."""
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"{root}: no such folder")
    if not root.is_dir():
        raise DatasetError(f"{root}: not a folder")
    skipped: list[SkippedFile] = []
    split_folders = _split_folders(root)
    layout = "kaggle" if split_folders else "flat"
    sources = split_folders or {"train": root}
    files: list[tuple[str, str, str]] = []
    for split, split_dir in sources.items():
        skipped.extend(_loose_files(split_dir, root))
        for class_dir in _visible_folders(split_dir):
            images = _collect_images(class_dir, root, skipped)
            files.extend((relative, class_dir.name, split) for relative in images)
    if layout == "kaggle":
        skipped.extend(_loose_files(root, root))
        skipped.extend(
            SkippedFile(folder.name + "/", "not a split folder (Training/Testing/Validation)")
            for folder in _visible_folders(root)
            if folder.name.lower() not in SPLIT_ALIASES
        )
    classes = _check_classes(root, sources, files)
    return DatasetLayout(root.resolve(), layout, classes, tuple(files), tuple(skipped))


def _loose_files(folder: Path, root: Path) -> list[SkippedFile]:
    return [
        SkippedFile(path.relative_to(root).as_posix(), "file outside any class folder")
        for path in sorted(folder.iterdir())
        if path.is_file() and not _is_hidden(path.name)
    ]


def _check_classes(
    root: Path, sources: dict[str, Path], files: list[tuple[str, str, str]]
) -> tuple[str, ...]:
    if "train" not in sources:
        raise DatasetError(
            f"{root}: has {', '.join(sorted(sources))} folders but no Training folder"
        )
    if not files:
        raise DatasetError(
            f"{root}: no images found (expected <class>/ or Training/<class>/ folders of images)"
        )
    train_classes = sorted(folder.name for folder in _visible_folders(sources["train"]))
    per_split: dict[str, Counter[str]] = {split: Counter() for split in sources}
    for _, label, split in files:
        per_split[split][label] += 1
    if len(train_classes) < 2:
        found = ", ".join(train_classes) or "none"
        raise DatasetError(
            f"{root}: a classifier needs at least two classes; found {len(train_classes)} ({found})"
        )
    for label in train_classes:
        if per_split["train"][label] == 0:
            raise DatasetError(f"{root}: class '{label}' has no images in the training part")
    for split, counter in per_split.items():
        extra = sorted(set(counter) - set(train_classes))
        if extra:
            raise DatasetError(f"{root}: class '{extra[0]}' appears in {split} but not in training")
    return tuple(train_classes)


def dataset_cache_dir(root: Path) -> Path:
    """Cache folder of a dataset root: readable name plus a hash of its absolute path."""
    resolved = Path(root).expanduser().resolve()
    path_hash = hashlib.sha1(str(resolved).encode("utf-8")).hexdigest()[:10]
    slug = "".join(char if char.isalnum() or char in "-_" else "-" for char in resolved.name)
    return paths.cache_root() / "datasets" / f"{slug or 'dataset'}-{path_hash}"


def _listing_fingerprint(layout: DatasetLayout) -> str:
    # Sizes and modification times stand in for content: cheap to read, and any edit changes them.
    digest = hashlib.sha1(f"index-v{INDEX_VERSION}".encode())
    for relative, label, split in layout.files:
        stat = (layout.root / relative).stat()
        digest.update(f"{relative}|{label}|{split}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _describe_image(root: Path, relative: str) -> dict[str, object] | SkippedFile:
    """One index row for an image file, or the reason it cannot be used."""
    try:
        data = (root / relative).read_bytes()
    except OSError as error:
        return SkippedFile(relative, f"cannot read file: {error.strerror or error}")
    try:
        image = read_image(data, name=relative)
    except ImageReadError as error:
        return SkippedFile(relative, error.reason)
    gray = to_grayscale(image.pixels)
    pixel_digest = hashlib.sha1(f"{gray.shape}".encode())
    pixel_digest.update(np.ascontiguousarray(gray).data)
    return {
        "path": relative,
        "width": image.width,
        "height": image.height,
        "channels": image.channels,
        "mode": image.mode,
        "format": image.format,
        "file_bytes": len(data),
        "file_hash": hashlib.sha1(data).hexdigest(),
        "pixel_hash": pixel_digest.hexdigest(),
        "mean_intensity": float(gray.mean()),
    }


def build_index(
    layout: DatasetLayout, progress: ProgressCallback | None = None
) -> tuple[pd.DataFrame, list[SkippedFile]]:
    """Decode every candidate image once: its size, channels and content hashes."""
    rows: list[dict[str, object]] = []
    skipped: list[SkippedFile] = []
    total = len(layout.files)
    # Decoding releases the GIL, so two threads use both cores of a small machine.
    with ThreadPoolExecutor(max_workers=2) as pool:
        described = pool.map(lambda item: _describe_image(layout.root, item[0]), layout.files)
        for done, ((_, label, split), result) in enumerate(
            zip(layout.files, described, strict=True), 1
        ):
            if isinstance(result, SkippedFile):
                skipped.append(result)
            else:
                rows.append({**result, "label": label, "split": split})
            if progress is not None and (done % 200 == 0 or done == total):
                progress(done, total, f"Indexing images: {done}/{total}")
    frame = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    return frame, skipped


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


def open_dataset(root: Path, progress: ProgressCallback | None = None) -> Dataset:
    """Discover and index a dataset, reusing the cached index when the folder is unchanged."""
    layout = discover(root)
    listing_fingerprint = _listing_fingerprint(layout)
    cache_dir = dataset_cache_dir(layout.root)
    cached = _load_cached_index(cache_dir, listing_fingerprint)
    if cached is None:
        frame, unreadable = build_index(layout, progress)
        _save_index(cache_dir, listing_fingerprint, frame, unreadable)
    else:
        frame, unreadable = cached
    if frame.empty:
        raise DatasetError(
            f"{layout.root}: none of the {len(layout.files)} image files could be read"
        )
    return Dataset(
        root=layout.root,
        layout=layout.layout,
        classes=layout.classes,
        frame=frame,
        skipped=layout.skipped + tuple(unreadable),
        listing_fingerprint=listing_fingerprint,
        synthetic=synthetic.is_synthetic_dataset(layout.root),
    )


def _looks_like_dataset(folder: Path) -> bool:
    try:
        discover(folder)
    except (DatasetError, OSError):
        return False
    return True


def resolve_dataset_dir(explicit: Path | str | None = None) -> Path:
    """The dataset to use: an explicit path, else BTW_DATA_DIR, else data/, else the demo.

    The synthetic demo dataset is generated on first use when nothing else is configured.
    """
    if explicit is not None and str(explicit).strip():
        return Path(explicit).expanduser().resolve()
    configured = paths.configured_dataset_dir()
    if configured is not None:
        return configured
    if paths.data_root().is_dir() and _looks_like_dataset(paths.data_root()):
        return paths.data_root().resolve()
    return synthetic.generate_demo_dataset(paths.demo_dataset_dir())
