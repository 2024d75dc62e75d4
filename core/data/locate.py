"""Which dataset the workbench opens when the user names none."""

from __future__ import annotations

from pathlib import Path

from core import paths
from core.data import synthetic
from core.data.discovery import DatasetError, discover


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
