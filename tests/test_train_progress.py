"""The Train page shows real progress (a fraction and a label) while a job prepares its data
and while it caches the frozen layers' output, not a bare 'Preparing'."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import paths
from core.events import Events
from core.models.pretrained import weights_available
from core.ui.memo import shared_memo
from core.ui.training import job_manager
from tests.conftest import PROJECT_ROOT, TIMEOUT


class Gate:
    """Holds the training thread at the first report of one step that is under way."""

    def __init__(self, stage: str) -> None:
        self.stage = stage
        self.reached = threading.Event()
        self.release = threading.Event()


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> Iterator[Gate]:
    holder: list[Gate] = []
    original = Events.progress

    def gated(self: Events, stage: str, done: int, total: int, message: str) -> None:
        original(self, stage, done, total, message)
        chosen = holder[0]
        in_worker = threading.current_thread().name == "training-worker"
        if in_worker and stage == chosen.stage and 0 < done < total and not chosen.reached.is_set():
            chosen.reached.set()
            chosen.release.wait(60)

    monkeypatch.setattr(Events, "progress", gated)
    yield holder  # type: ignore[misc]
    for chosen in holder:
        chosen.release.set()
    job_manager().cancel_all()
    job_manager().wait_idle(60)


@pytest.fixture
def fresh_app(demo_dataset_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The app on a copy of the demo dataset that nothing has decoded or audited yet."""
    copy = tmp_path / "demo-copy"
    shutil.copytree(demo_dataset_dir, copy)
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(copy))
    shared_memo.clear()
    return AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=TIMEOUT)


def start_job(app: AppTest, model: str, size: int) -> None:
    app.run()
    app.switch_page("app_pages/train.py").run()
    app.selectbox(key="train_model").select(model).run()
    if any(radio.key == f"train_recipe_{model}" for radio in app.radio):
        app.radio(key=f"train_recipe_{model}").set_value("custom").run()
    app.number_input(key=f"train_epochs_{model}_custom").set_value(1)
    app.select_slider(key=f"train_image_size_{model}_custom").set_value(size)
    app.number_input(key="train_subset").set_value(20)
    next(button for button in app.button if button.label == "Start training").click().run()
    assert not app.exception


def bars(app: AppTest) -> list[tuple[int, str]]:
    """(percent, label) of every progress bar on the page."""
    return [(element.proto.value, element.proto.text) for element in app.get("progress")]


def finish(app: AppTest, gate: Gate) -> None:
    gate.release.set()
    for _ in range(600):
        if not any(snapshot.active for snapshot in job_manager().snapshots()):
            break
        time.sleep(0.1)
    app.run()
    assert not app.exception


def bar_while_held(app: AppTest, gate: Gate, model: str, size: int, phrase: str) -> tuple:
    """Start a job, hold it in the gate's step, and return the page's bar naming `phrase`."""
    start_job(app, model, size)
    assert gate.reached.wait(180), f"the job never reached the {gate.stage} step"
    app.run()
    shown = bars(app)
    matching = [(value, text) for value, text in shown if phrase in text]
    finish(app, gate)
    assert matching, shown
    return matching[0]


def test_data_preparation_shows_a_fraction_and_a_label(fresh_app: AppTest, gate: list) -> None:
    gate.append(Gate("decode"))
    value, text = bar_while_held(fresh_app, gate[0], "cnn_fast", 96, "Decoding images at 96 px")
    assert text.startswith("Preparing: ") and 0 < value < 100


@pytest.mark.skipif(not weights_available("mobilenet_v2"), reason="no ImageNet weights here")
def test_frozen_feature_caching_shows_a_fraction_and_a_label(
    fresh_app: AppTest, gate: list
) -> None:
    gate.append(Gate("frozen-cache"))
    value, _ = bar_while_held(fresh_app, gate[0], "mobilenet_v2", 64, "frozen layers' output")
    assert 0 < value < 100
