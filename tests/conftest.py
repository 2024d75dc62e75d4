"""Shared fixtures: isolated cache/checkpoint folders, the demo dataset, the real dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import paths
from core.data import synthetic
from core.ui.memo import shared_memo

REQUIRE_REAL_DATA_ENV = "BTW_REQUIRE_REAL_DATA"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 120  # seconds an AppTest run may take


@pytest.fixture(scope="session", autouse=True)
def isolated_workbench(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Never touch the user's data/.cache or checkpoints/ from tests."""
    root = tmp_path_factory.mktemp("workbench")
    os.environ[paths.CACHE_DIR_ENV] = str(root / "cache")
    os.environ[paths.CHECKPOINTS_ENV] = str(root / "checkpoints")
    os.environ.pop(paths.DATA_DIR_ENV, None)


@pytest.fixture(scope="session")
def demo_dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic demo dataset, generated once per test session."""
    return synthetic.generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo-dataset")


@pytest.fixture(scope="session")
def real_dataset_dir() -> Path:
    """The real Kaggle brain MRI dataset; skipped when absent unless CI requires it."""
    folder = paths.real_dataset_dir()
    if not (folder / "Training").is_dir():
        message = f"real dataset not found at {folder} (set {paths.REAL_DATA_ENV})"
        if os.environ.get(REQUIRE_REAL_DATA_ENV) == "1":
            pytest.fail(message + f"; {REQUIRE_REAL_DATA_ENV}=1 makes it required")
        pytest.skip(message)
    return folder


@pytest.fixture
def app(demo_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """Home.py under AppTest, on the demo dataset, with an empty process-wide memo."""
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(demo_dataset_dir))
    shared_memo.clear()
    return AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=TIMEOUT)
