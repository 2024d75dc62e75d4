"""Which Chromium the browser tests drive, and what happens when it or Playwright is missing.

Playwright never downloads a browser here: it drives the system Chromium ($BTW_CHROMIUM, a path
or a command name, else Debian's /usr/bin/chromium). Without either, the browser tests skip,
unless BTW_REQUIRE_BROWSER=1 (set by .ci/run), which turns the skip into a failure.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest

CHROMIUM_ENV = "BTW_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
REQUIRE_BROWSER_ENV = "BTW_REQUIRE_BROWSER"


def wanted_chromium() -> str:
    return os.environ.get(CHROMIUM_ENV, "").strip() or DEFAULT_CHROMIUM


def chromium_executable() -> str | None:
    """The Chromium to drive, if it is there."""
    return shutil.which(wanted_chromium())


def skip_or_fail(reason: str) -> None:
    """Skip (a user's machine without a browser) or fail (CI, where the browser is required)."""
    if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
        pytest.fail(f"{reason}; {REQUIRE_BROWSER_ENV}=1 makes the browser tests required")
    pytest.skip(reason, allow_module_level=True)


def playwright_or_skip() -> None:
    """Call before importing playwright in a test module: without it the module is skipped."""
    if importlib.util.find_spec("playwright") is None:
        skip_or_fail("the playwright package is not installed (make test installs it)")


def chromium_or_skip() -> str:
    executable = chromium_executable()
    if executable is None:
        skip_or_fail(
            f"no Chromium at {wanted_chromium()} (apt-get install chromium, or set {CHROMIUM_ENV})"
        )
    assert executable is not None
    return executable
