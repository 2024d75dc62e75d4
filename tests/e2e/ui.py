"""What a person does and sees in the workbench, as Playwright calls on Streamlit's DOM.

Streamlit gives every widget with a key a `st-key-<key>` class on its container, and each
element kind a data-testid; these helpers find widgets by those, never by generated CSS names.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

ARTIFACTS_ENV = "BTW_E2E_ARTIFACTS"
DEFAULT_ARTIFACTS = Path(__file__).resolve().parent / "artifacts"

# The first page of a fresh server imports torch and may generate or index a dataset: slow on a
# 2-core machine that also runs the browser. Every wait below is for something to appear, so a
# generous limit costs nothing when things are fast.
APP_TIMEOUT_MS = 120_000
TRAINING_TIMEOUT_MS = 240_000
OPEN_ATTEMPTS = 3
OPEN_TIMEOUT_MS = 10_000

MAIN = "[data-testid='stMain']"
SIDEBAR = "[data-testid='stSidebar']"
EXCEPTION = "[data-testid='stException']"

PAGE_TITLES = {
    "": "Brain Tumor Workbench",
    "dataset": "Dataset",
    "train": "Train",
    "compare": "Compare runs",
    "studies": "Studies",
    "inside": "Inside the model",
    "classify": "Classify",
}


def artifacts_dir() -> Path:
    """Where screenshots go: $BTW_E2E_ARTIFACTS, else tests/e2e/artifacts (git-ignored)."""
    folder = Path(os.environ.get(ARTIFACTS_ENV) or DEFAULT_ARTIFACTS)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_screenshot(page: Page, name: str, folder: Path | None = None) -> Path:
    """A PNG of the window (Streamlit scrolls inside stMain: a 'full page' shot adds nothing)."""
    path = (folder or artifacts_dir()) / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def main(page: Page) -> Locator:
    return page.locator(MAIN)


def wait_for_script(page: Page, timeout: float = APP_TIMEOUT_MS) -> None:
    """Until the page's script (or fragment) run is over and the server is connected."""
    page.locator(
        "[data-testid='stApp'][data-test-script-state='notRunning']"
        "[data-test-connection-state='CONNECTED']"
    ).wait_for(timeout=timeout)


def wait_for_elements(page: Page) -> None:
    """Until the script has run and lazily loaded elements (tables, charts) have replaced their
    grey placeholders."""
    wait_for_script(page)
    expect(main(page).get_by_test_id("stSkeleton")).to_have_count(0)


def open_page(page: Page, base_url: str, path: str = "", query: str = "") -> None:
    """Load a page by its URL (a new Streamlit session) and wait until it is drawn."""
    page.goto(f"{base_url}/{path}" + (f"?{query}" if query else ""))
    expect_title(page, PAGE_TITLES[path])
    wait_for_elements(page)


def navigate(page: Page, title: str) -> None:
    """Click a page in the sidebar's navigation (the same Streamlit session)."""
    page.locator("[data-testid='stSidebarNav'] a").filter(has_text=title).click()
    path = next(path for path, shown in PAGE_TITLES.items() if shown.startswith(title))
    expect_title(page, PAGE_TITLES[path])
    wait_for_elements(page)


def expect_title(page: Page, title: str) -> None:
    heading = main(page).locator("h1").filter(has_text=re.compile(f"^{re.escape(title)}$"))
    expect(heading).to_be_visible(timeout=APP_TIMEOUT_MS)


def expect_no_exception(page: Page) -> None:
    """No red exception box anywhere on the page."""
    expect(page.locator(EXCEPTION)).to_have_count(0)


def metric(scope: Locator, label: str) -> Locator:
    """The st.metric with exactly this label."""
    label_locator = scope.page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True)
    return scope.get_by_test_id("stMetric").filter(has=label_locator)


def metric_value(scope: Locator, label: str) -> str:
    return metric(scope, label).get_by_test_id("stMetricValue").inner_text()


def widget(page: Page, key: str) -> Locator:
    """The container of the widget created with `key=...`."""
    return page.locator(f".st-key-{key}")


def pick_option(page: Page, opener: Locator, option: str | re.Pattern[str]) -> None:
    """Open a drop-down list and click one of its options.

    A rerun that lands while the list is open (the previous change reaching the server, a job
    finishing, a fragment's timer) closes it; a person would open it again, and so does this,
    a few times at most.
    """
    for attempt in range(1, OPEN_ATTEMPTS + 1):
        opener.click()
        try:
            page.get_by_role("option", name=option).first.click(timeout=OPEN_TIMEOUT_MS)
            return
        except PlaywrightTimeoutError:
            if attempt == OPEN_ATTEMPTS:
                raise
            page.keyboard.press("Escape")


def choose(page: Page, key: str, option: str | re.Pattern[str]) -> None:
    """Pick an option of a selectbox by (part of) its shown text."""
    box = widget(page, key).locator("input[role='combobox']")
    pick_option(page, box, option)
    expect(box).to_have_value(
        option if isinstance(option, re.Pattern) else re.compile(re.escape(option))
    )


def choose_exactly(page: Page, key: str, options: list[str]) -> None:
    """Make a multiselect's selection exactly these options (removing the others first)."""
    selection = widget(page, key)
    chips = selection.get_by_test_id("stMultiSelectTagsContainer").locator("[data-tag]")
    expect(selection).to_be_visible()
    for label in chips.evaluate_all("tags => tags.map(tag => tag.getAttribute('aria-label'))"):
        if label not in options:
            selection.get_by_role("button", name=f"Remove {label}", exact=True).click()

    def chip(option: str) -> Locator:  # exactly this option: 'cnn_fast' is in 'cnn_fast:robust'
        return chips.filter(has_text=re.compile(rf"^\s*{re.escape(option)}\s*$"))

    for option in options:
        if chip(option).count() == 0:
            pick_option(page, selection.locator("input"), re.compile(f"^{re.escape(option)}$"))
            page.keyboard.press("Escape")
    for option in options:
        expect(chip(option)).to_have_count(1)
    expect(chips).to_have_count(len(options))


def set_number(page: Page, key: str, value: float) -> None:
    """Type a number into a number input and leave the field (Tab), which commits it.

    Not Enter: inside a form, Enter submits the whole form.
    """
    field = widget(page, key).locator("input[type='number']")
    field.fill(str(value))
    field.press("Tab")
    expect(field).to_have_value(str(value))


def slide_to_start(page: Page, key: str) -> None:
    """Move a slider or select slider to its first value with the keyboard (Home)."""
    widget(page, key).get_by_role("slider").first.press("Home")


def button(page: Page, label: str, scope: Locator | None = None) -> Locator:
    """A st.button or form submit button by its label (not the drop-downs' 'Open' arrows)."""
    buttons = (scope or main(page)).locator(
        "[data-testid='stButton'], [data-testid='stFormSubmitButton']"
    )
    return buttons.get_by_role("button", name=label, exact=True)


def table_row(table: Locator, text: str) -> Locator:
    """The row of a st.dataframe holding `text`.

    The grid is drawn on a canvas; its cells are mirrored in an accessibility table that
    Playwright counts as hidden, hence CSS rather than get_by_role.
    """
    return table.locator("tbody tr[role='row']").filter(has_text=text)


def row_cells(table: Locator, text: str) -> list[str]:
    """The cell texts of the single st.dataframe row holding `text` (index column included)."""
    row = table_row(table, text)
    expect(row).to_have_count(1)
    return row.locator("td").all_text_contents()


def progress_bars(scope: Locator) -> Locator:
    return scope.locator("[data-testid='stProgress']")


def plotly_traces(chart: Locator) -> list[dict[str, Any]]:
    """Name, kind and point count of each trace of one drawn Plotly chart (Plotly's own state)."""
    return chart.locator(".js-plotly-plot").evaluate(PLOTLY_TRACES)


def plotly_figures(scope: Locator) -> list[dict[str, Any]]:
    """Title and traces of every drawn Plotly chart in `scope`."""
    return scope.locator(".js-plotly-plot").evaluate_all(
        "plots => plots.map(plot => ({"
        "title: ((plot.layout.title || {}).text || '').replace(/<[^>]+>/g, ''), "
        f"traces: ({PLOTLY_TRACES})(plot)}}))"
    )


# Points: a line's or bar's number of values; a heatmap's number of rows.
PLOTLY_TRACES = """plot => (plot._fullData || []).map(trace => ({
    name: trace.name, type: trace.type, points: trace._length || (trace.z || []).length
}))"""
