"""Browser fixtures: the app on a free port, Debian's Chromium driven by Playwright.

See browser.py for which Chromium, and for skipping (a user's machine) versus failing (CI).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import paths
from core.data.discovery import DatasetError, discover
from tests.e2e.browser import chromium_or_skip, playwright_or_skip
from tests.e2e.server import AppServer
from tests.e2e.ui import APP_TIMEOUT_MS, artifacts_dir

VIEWPORT = {"width": 1400, "height": 900}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole session (each test gets its own context)."""
    playwright_or_skip()
    executable = chromium_or_skip()
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=APP_TIMEOUT_MS)
    for stale in artifacts_dir().glob("FAILED-*.png"):  # a failure shot is from this session
        stale.unlink()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Remember each phase's outcome on the test, so a failing test can leave a screenshot."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def new_page(browser: Any) -> Any:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(APP_TIMEOUT_MS)
    return page


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context and tab; a screenshot is kept when the test fails."""
    tab = new_page(browser)
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        tab.screenshot(path=str(artifacts_dir() / f"FAILED-{request.node.name}.png"))
    tab.context.close()


@pytest.fixture
def second_page(browser: Any) -> Iterator[Any]:
    """Another browser context: a second person using the same server at the same time."""
    tab = new_page(browser)
    yield tab
    tab.context.close()


def _started(server: AppServer) -> Iterator[AppServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def project_data_is_a_dataset() -> bool:
    """A user's own dataset in data/ would be the app's default instead of the demo."""
    try:
        discover(paths.data_root())
    except (DatasetError, OSError):
        return False
    return True


@pytest.fixture(scope="session")
def demo_app(
    tmp_path_factory: pytest.TempPathFactory, browser: Any, project_data_is_a_dataset: bool
) -> Iterator[AppServer]:
    """The app on its first run: no dataset configured, empty cache and checkpoints.

    Depends on `browser` so that a machine without Chromium skips before starting a server.
    """
    root = tmp_path_factory.mktemp("e2e-demo")
    demo = None
    if project_data_is_a_dataset:  # point it at the demo explicitly; the first-run test skips
        from core.data import synthetic

        demo = synthetic.generate_demo_dataset(root / "demo-dataset")
    server = AppServer(
        cache_dir=root / "cache",
        checkpoints_dir=root / "checkpoints",
        log_path=root / "server.log",
        data=demo,
    )
    yield from _started(server)


@pytest.fixture(scope="session")
def real_app(
    tmp_path_factory: pytest.TempPathFactory, browser: Any, real_dataset_dir: Path
) -> Iterator[AppServer]:
    """The app opened on the real dataset (`-- --data`).

    Its cache is the test session's (tests/conftest.py), so the index, thumbnails and audit that
    the real-data tests compute are computed once per session, whichever test comes first.
    """
    root = tmp_path_factory.mktemp("e2e-real")
    server = AppServer(
        cache_dir=paths.cache_root(),
        checkpoints_dir=root / "checkpoints",
        log_path=root / "server.log",
        data=real_dataset_dir,
    )
    yield from _started(server)
