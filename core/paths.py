"""Where data, caches and runs live. Nothing else in the project spells a path.

Each location has an environment override so that tests, CI and a GPU box can point the
workbench elsewhere without touching code.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DATA_DIR_ENV = "BTW_DATA_DIR"
CACHE_DIR_ENV = "BTW_CACHE_DIR"
CHECKPOINTS_ENV = "BTW_CHECKPOINTS"
REAL_DATA_ENV = "BTW_REAL_DATA_DIR"
FP16_WEIGHTS_ENV = "BTW_FP16_WEIGHTS_DIR"
DATA_ROOTS_ENV = "BTW_DATA_ROOTS"


def _from_env(variable: str, default: Path) -> Path:
    value = os.environ.get(variable, "").strip()
    return Path(value).expanduser().resolve() if value else default


def data_root() -> Path:
    """The project's data folder: user datasets (or links to them) and every cache."""
    return PROJECT_ROOT / "data"


def configured_dataset_dir() -> Path | None:
    """The dataset named by BTW_DATA_DIR, or None when the variable is unset."""
    value = os.environ.get(DATA_DIR_ENV, "").strip()
    return Path(value).expanduser().resolve() if value else None


def allowed_data_roots() -> list[Path] | None:
    """The folders BTW_DATA_ROOTS allows the app to open datasets in (os.pathsep-separated),
    resolved; None when the variable is unset, which allows any folder.

    A value that names no folder (only separators) gives an empty list: nothing but the demo.
    """
    value = os.environ.get(DATA_ROOTS_ENV, "")
    if not value.strip():
        return None
    folders = (part.strip() for part in value.split(os.pathsep))
    return [Path(folder).expanduser().resolve() for folder in folders if folder]


def demo_dataset_dir() -> Path:
    """Where the synthetic demo dataset is generated on first use."""
    return cache_root() / "demo-dataset"


def cache_root() -> Path:
    """Root of derived, re-creatable files (indexes, decoded arrays, audits, splits)."""
    # Hidden, so that discovery never mistakes the cache for a class folder inside data/.
    return _from_env(CACHE_DIR_ENV, data_root() / ".cache")


def checkpoints_root() -> Path:
    """Root of training runs: one folder per run."""
    return _from_env(CHECKPOINTS_ENV, PROJECT_ROOT / "checkpoints")


def real_dataset_dir() -> Path:
    """The shared real MRI dataset used by real-data tests and benchmarks."""
    default = PROJECT_ROOT.parent / "shared" / "datasets" / "brain-tumor-mri"
    return _from_env(REAL_DATA_ENV, default)


def fp16_weights_dir() -> Path:
    """Float16 copies of verified ImageNet weights, for carrying to a machine without them."""
    return _from_env(FP16_WEIGHTS_ENV, cache_root() / "fp16-weights")


def gpu_bundle_dir() -> Path:
    """What `bench.gpu_bundle` prepares for a lent GPU machine (git-ignored, outside data/)."""
    return PROJECT_ROOT / "gpu"
