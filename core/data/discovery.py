"""Find a dataset of MRI slices on disk: its layout, classes and candidate image files.

Two layouts are understood:
- Kaggle style: `<root>/<split>/<class>/<image>` with split folders named Training/Train,
  Testing/Test and optionally Validation/Val (any letter case);
- flat: `<root>/<class>/<image>`, where every image belongs to the training part.

Nothing is decoded here; `core.data.index` indexes what discovery finds.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from core.imaging.reader import SUPPORTED_EXTENSIONS

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


def discover(root: Path, *, for_testing: bool = False) -> DatasetLayout:
    """Find the layout, classes and candidate image files of a dataset folder.

    `for_testing`: a folder to score a trained model on (an external test set), not to train
    on: any split folders are pooled, and one class, or classes outside a Training folder, are
    fine.
    """
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
    classes = _test_classes(root, files) if for_testing else _check_classes(root, sources, files)
    return DatasetLayout(root.resolve(), layout, classes, tuple(files), tuple(skipped))


def _loose_files(folder: Path, root: Path) -> list[SkippedFile]:
    return [
        SkippedFile(path.relative_to(root).as_posix(), "file outside any class folder")
        for path in sorted(folder.iterdir())
        if path.is_file() and not _is_hidden(path.name)
    ]


def _test_classes(root: Path, files: list[tuple[str, str, str]]) -> tuple[str, ...]:
    if not files:
        raise DatasetError(
            f"{root}: no images found (expected <class>/ folders of images, optionally under "
            "Training/ or Testing/)"
        )
    return tuple(sorted({label for _, label, _ in files}))


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
