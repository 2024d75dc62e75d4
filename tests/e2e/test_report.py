"""The report, in a real browser: built and downloaded from the Compare page, then opened from
disk in an offline Chromium tab, with every chart drawn, every CAM decoded and no console error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browser import playwright_or_skip

playwright_or_skip()  # before anything imports playwright

from playwright.sync_api import Page, expect

from core.ui.run_management import SELECTION_KEY
from tests.e2e import ui
from tests.e2e.conftest import new_page
from tests.e2e.server import AppServer
from tests.e2e.test_demo_workflow import train_runs_directly

pytestmark = pytest.mark.browser

# Curves, accuracy on each split, accuracy against time, the evaluated run's confusion matrix
# and its reliability diagram; the cancelled run adds curves only.
REPORT_CHARTS = 5

DRAWN = """plots => plots.map(plot => ({
    traces: (plot.data || []).length,
    svgs: plot.querySelectorAll('svg.main-svg').length,
}))"""


def download_report(page: Page, tmp_path: Path) -> Path:
    """Click 'Build a report', then its download button; the saved file."""
    ui.button(page, "Build a report of the selected runs").click()
    ui.wait_for_script(page)
    ui.expect_no_exception(page)
    download_button = ui.widget(page, "compare_report_download").get_by_role("button")
    expect(download_button).to_be_visible()
    with page.expect_download() as started:
        download_button.click()
    download = started.value
    assert re.fullmatch(r"report-\d{8}\.html", download.suggested_filename)
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    return path


def test_the_report_downloads_from_compare_and_draws_offline(
    demo_app: AppServer, page: Page, browser: Any, tmp_path: Path
) -> None:
    runs = train_runs_directly(demo_app)  # this test's own: an evaluated and a cancelled run
    completed, cancelled = runs["completed"], runs["cancelled"]
    labels = demo_app.run_labels()  # as the page names them
    ui.open_page(page, demo_app.url, "compare")
    ui.choose_exactly(page, SELECTION_KEY, [labels[completed], labels[cancelled]])
    ui.wait_for_elements(page)
    path = download_report(page, tmp_path)
    assert completed in path.read_text(encoding="utf-8")

    report = new_page(browser)
    report.context.set_offline(True)  # a report to share opens without a network
    problems: list[str] = []
    report.on("console", lambda message: message.type == "error" and problems.append(message.text))
    report.on("pageerror", lambda error: problems.append(str(error)))
    report.on(
        "request",
        lambda request: (
            request.url.startswith(("file:", "data:", "blob:"))
            or problems.append(f"request to {request.url}")
        ),
    )
    try:
        report.goto(path.as_uri())
        plots = report.locator(".js-plotly-plot")
        expect(plots).to_have_count(REPORT_CHARTS)
        expect(report.locator(".js-plotly-plot svg.main-svg").first).to_be_visible()
        drawn = plots.evaluate_all(DRAWN)
        assert all(one["traces"] >= 1 and one["svgs"] >= 1 for one in drawn), drawn
        images = report.locator("#cams img")
        expect(images).to_have_count(4)  # one per class, for the run with an evaluation
        widths = images.evaluate_all("images => images.map(image => image.naturalWidth)")
        assert all(width > 0 for width in widths), widths
        expect(report.locator("#evaluations")).to_contain_text("not evaluated")
        ui.save_screenshot(report, "demo-report")
        assert problems == []
    finally:
        report.context.close()
