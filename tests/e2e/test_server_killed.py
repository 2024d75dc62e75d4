"""The real server SIGKILLed while a browser session trains, then started again.

tests/test_faults.py kills an AppTest process; this kills `streamlit run` itself, with the run
started from Chromium, and opens the restarted app in a new browser session.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e.browser import playwright_or_skip

playwright_or_skip()  # before anything imports playwright

from playwright.sync_api import Page, expect

from core.data import synthetic
from tests.e2e import ui
from tests.e2e.server import AppServer
from tests.e2e.test_demo_workflow import live_progress, runs_table_row, start_cnn_fast

pytestmark = pytest.mark.browser


def history_epochs(run_dir: Path) -> list[int]:
    """The epochs in a run's history.jsonl; every line must parse."""
    lines = (run_dir / "history.jsonl").read_text().splitlines()
    return [json.loads(line)["epoch"] for line in lines]


def test_server_killed_mid_training_restarts_with_the_run_interrupted(
    tmp_path: Path, page: Page
) -> None:
    demo = synthetic.generate_demo_dataset(tmp_path / "demo-dataset")
    folders = {
        "cache_dir": tmp_path / "cache",
        "checkpoints_dir": tmp_path / "checkpoints",
        "data": demo,
    }
    first = AppServer(log_path=tmp_path / "first.log", **folders).start()
    try:
        ui.open_page(page, first.url, "train")
        run_id = start_cnn_fast(page, epochs=300)
        expect(live_progress(page)).to_contain_text(
            re.compile(r"Epoch ([3-9]|\d\d+)/300"), timeout=ui.TRAINING_TIMEOUT_MS
        )
    finally:
        first.kill()
    run_dir = folders["checkpoints_dir"] / run_id
    epochs_at_kill = history_epochs(run_dir)
    assert len(epochs_at_kill) >= 2
    assert epochs_at_kill == list(range(1, len(epochs_at_kill) + 1))

    with AppServer(log_path=tmp_path / "second.log", **folders) as second:
        again = page.context.browser.new_page(viewport=page.viewport_size)
        try:
            ui.open_page(again, second.url, "compare")
            expect(runs_table_row(again, second, run_id)).to_contain_text("interrupted")
            ui.expect_no_exception(again)
            ui.open_page(again, second.url, "train", f"run={run_id}")
            expect(ui.main(again)).to_contain_text("nterrupted")
            ui.expect_no_exception(again)
        finally:
            again.close()
    # Nothing was lost: the history the restart found is the history at the kill.
    assert history_epochs(run_dir) == epochs_at_kill
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "interrupted"
    leftovers = [path.name for path in folders["checkpoints_dir"].iterdir() if path.name != run_id]
    assert leftovers == [], leftovers  # no half-created run folder beside it
