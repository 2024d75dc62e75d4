"""Which dataset the workbench opens when the user names none."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
import numpy as np
import pandas as pd
from core import paths
from core.data import synthetic
from core.data.discovery import SPLIT_ORDER, DatasetError, DatasetLayout, SkippedFile, discover
from core.imaging.pixels import ImageReadError, to_grayscale
from core.imaging.reader import read_image
from core.atomic_files import read_json, write_json_atomic, write_with_atomic


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
