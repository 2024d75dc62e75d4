"""Faults: the app killed mid-training, and damaged run folders in front of every page.

The kill test runs the real Train page (Home.py under Streamlit's AppTest) in a child process,
so training happens in the app's own background job thread; SIGKILL then stands in for a
crashed or killed server. "Starting again" is what a fresh server does: Home marks the runs
left running by a dead process as interrupted, then the pages read the folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from streamlit.testing.v1 import AppTest

from core import paths
from core.evaluation.evaluate import evaluate_run
from core.inference.predictor import Predictor
from core.runs.layout import RunError, new_run_id
from core.runs.registry import list_runs, load_run, load_weights
from core.training.fit import fit
from core.ui.memo import shared_memo
from tests.test_pages import PROJECT_ROOT, TIMEOUT
from tests.test_training import tiny_request

KILL_AFTER_EPOCHS = 2

# The Train page, driven the way a person would, in a process of its own. It prints the run id
# and then keeps the process (the "server") alive while the job thread trains.
APP_THAT_TRAINS = """
import time
from streamlit.testing.v1 import AppTest

app = AppTest.from_file("Home.py", default_timeout=120).run()
app.switch_page("app_pages/train.py").run()
app.selectbox(key="train_model").select("cnn_fast").run()
app.radio(key="train_recipe_cnn_fast").set_value("custom").run()
app.number_input(key="train_epochs_cnn_fast_custom").set_value(300)
app.select_slider(key="train_image_size_cnn_fast_custom").set_value(64)
app.number_input(key="train_subset").set_value(20)
app.number_input(key="train_patience_cnn_fast_custom").set_value(0)
next(button for button in app.button if button.label == "Start training").click().run()
assert not app.exception, app.exception
run_id = app.query_params["run"]
print("RUN", run_id[0] if isinstance(run_id, list) else run_id, flush=True)
while True:
    time.sleep(1)
"""


def folder_hashes(folder: Path) -> dict[str, str]:
    """SHA-256 of every file below `folder`, by relative path."""
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def history_lines(run_dir: Path) -> list[bytes]:
    """The run's history lines; none while the job has not made its folder yet."""
    try:
        return [line for line in (run_dir / "history.jsonl").read_bytes().splitlines() if line]
    except FileNotFoundError:
        return []


def fresh_app(checkpoints: Path, dataset: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """Home.py as a newly started server sees it: nothing remembered from an earlier one."""
    monkeypatch.setenv(paths.CHECKPOINTS_ENV, str(checkpoints))
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(dataset))
    shared_memo.clear()  # Home marks interrupted runs once per server: this is a new server
    app = AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=TIMEOUT).run()
    assert not app.exception
    return app


@pytest.fixture(scope="module")
def completed_run(demo_dataset_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished, evaluated run folder, to copy into each test's checkpoints folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.CHECKPOINTS_ENV, str(tmp_path_factory.mktemp("faults-source")))
        run_id = fit(tiny_request(demo_dataset_dir, epochs=2, subset_per_class=10)).run_id
        evaluate_run(run_id, bootstrap_samples=100)
        return load_run(run_id).path


def copy_run(source: Path, checkpoints: Path) -> Path:
    """A copy of a run folder under a fresh run id."""
    target = checkpoints / new_run_id("cnn_fast")
    shutil.copytree(source, target)
    return target


# ---------------------------------------------------------------- killed during training


def test_killing_the_app_mid_training_leaves_an_interrupted_run_and_harms_nothing_else(
    completed_run: Path,
    demo_dataset_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    neighbour = copy_run(completed_run, checkpoints)
    neighbour_before = folder_hashes(neighbour)
    weights_before = load_weights(neighbour.name, checkpoints)
    environment = {
        **os.environ,
        paths.CHECKPOINTS_ENV: str(checkpoints),
        paths.DATA_DIR_ENV: str(demo_dataset_dir),
    }
    log = tmp_path / "app.log"
    with log.open("w") as log_file:  # the child keeps its own copy of the descriptor
        app = subprocess.Popen(
            [sys.executable, "-c", APP_THAT_TRAINS],
            cwd=PROJECT_ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            start_new_session=True,  # its own process group: the kill reaches all it started
        )
    try:
        line = app.stdout.readline()
        assert line.startswith("RUN "), f"no run started: {log.read_text()[-2000:]}"
        killed = checkpoints / line.split()[1]
        deadline = time.monotonic() + 240
        while len(history_lines(killed)) < KILL_AFTER_EPOCHS:
            assert app.poll() is None, "the app exited before it was killed"
            assert time.monotonic() < deadline, "training recorded too few epochs in time"
            time.sleep(0.05)
        recorded_before_kill = len(history_lines(killed))
    finally:
        os.killpg(app.pid, signal.SIGKILL)
        app.wait(timeout=30)
        app.stdout.close()
    assert load_run(killed.name, checkpoints).stored_status.status == "running"

    # The history up to the kill: every line whole, epochs 1..k in order, none lost.
    records = [json.loads(line) for line in history_lines(killed)]
    assert all(isinstance(record, dict) for record in records)
    assert [record["epoch"] for record in records] == list(range(1, len(records) + 1))
    assert len(records) >= recorded_before_kill >= KILL_AFTER_EPOCHS

    # Start again: Home marks the run interrupted on disk; every page still works.
    app_again = fresh_app(checkpoints, demo_dataset_dir, monkeypatch)
    info = load_run(killed.name, checkpoints)
    assert info.status == "interrupted" and info.stored_status.status == "interrupted"
    assert "stopped without finishing" in info.stored_status.message
    assert [record.epoch for record in info.history] == [r["epoch"] for r in records]
    assert not any("unreadable" in problem or "corrupt" in problem for problem in info.problems)
    assert info.config.model.name == "cnn_fast"  # written once, atomically, never torn
    app_again.switch_page("app_pages/compare.py").run()
    assert not app_again.exception
    table = app_again.dataframe[0].value.set_index("run")
    assert table.loc[killed.name, "status"] == "interrupted"
    assert table.loc[neighbour.name, "status"] == "completed"
    app_again.query_params["run"] = killed.name
    app_again.switch_page("app_pages/train.py").run()
    assert not app_again.exception
    assert any("status **interrupted**" in str(text.value) for text in app_again.markdown)
    # The stored reason, and no "Detach (the run keeps going)" for a run that is not going.
    assert any("Why it stopped: stopped without finishing" in i.value for i in app_again.info)
    assert app_again.button(key="detach").label == "Close"

    # Nothing else was touched: the finished run is byte for byte what it was, and still loads.
    assert folder_hashes(neighbour) == neighbour_before
    weights_after = load_weights(neighbour.name, checkpoints)
    assert weights_after.keys() == weights_before.keys()
    assert all(torch.equal(weights_after[key], weights_before[key]) for key in weights_before)
    assert load_run(neighbour.name, checkpoints).status == "completed"
    assert Predictor.from_run(neighbour).classes == info.config.classes
    assert sorted(path.name for path in checkpoints.iterdir()) == sorted(
        [killed.name, neighbour.name]
    )  # no half-created run left behind


# ---------------------------------------------------------------- damaged run folders


@dataclass(frozen=True)
class DamagedRun:
    """A run folder broken in one way, and what the registry must say about it."""

    kind: str
    run_id: str
    status: str  # the status shown: 'damaged' or the run's own
    problem: str  # a phrase its problems must contain ('' when it has none to report)


def damage(kind: str, folder: Path) -> None:
    """Break a copied run folder in the way `kind` names."""
    history = (folder / "history.jsonl").read_bytes().splitlines()
    if kind == "weights missing":
        (folder / "model.safetensors").unlink()
    elif kind == "weights are junk":
        (folder / "model.safetensors").write_bytes(os.urandom(4096))
    elif kind == "weights of another model":
        save_file({"w": torch.zeros(3)}, folder / "model.safetensors")  # a valid file
        (folder / "metrics.json").write_text(json.dumps({"val": {"accuracy": 0.999, "loss": 0.01}}))
    elif kind == "history line half-written":
        (folder / "history.jsonl").write_bytes(history[0] + b"\n" + history[1][:40])
    elif kind == "history lines odd":
        (folder / "history.jsonl").write_text('{"epoch": 1, "train_loss": "n/a"}\n{"note": 1}\n')
    elif kind == "config not JSON":
        (folder / "config.json").write_text("{not json")
    elif kind == "config sections wrong":
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "model": 5, "classes": "x"}))
    elif kind == "status not JSON":
        (folder / "status.json").write_bytes(b"\x00\x01\x02 binary junk")
    elif kind == "metrics not JSON":
        (folder / "metrics.json").write_bytes(b"\xff\xfe garbage")
    elif kind == "metrics sections wrong":
        (folder / "metrics.json").write_text('{"val": [0.9], "evaluation": "yes"}')
    elif kind == "metrics values odd":
        (folder / "metrics.json").write_text('{"val": {"accuracy": "high", "loss": null}}')
    elif kind == "meta not JSON":
        (folder / "meta.json").write_text("name = baseline")
    elif kind == "emptied":
        shutil.rmtree(folder)
        folder.mkdir()
    else:
        raise AssertionError(kind)


# kind -> (status shown, a phrase of its problems)
DAMAGE = {
    "weights missing": ("damaged", "model.safetensors is missing"),
    "weights are junk": ("damaged", "model.safetensors is truncated or corrupt"),
    "weights of another model": ("completed", ""),  # only loading the model can tell
    "history line half-written": ("completed", "history.jsonl: 1 unreadable line skipped"),
    "history lines odd": ("completed", ""),
    "config not JSON": ("damaged", "config.json is not valid JSON"),
    "config sections wrong": ("damaged", "config.json has unreadable sections (classes, model)"),
    "status not JSON": ("damaged", "status.json is not valid JSON"),
    "metrics not JSON": ("completed", "metrics.json is not valid JSON"),
    "metrics sections wrong": ("completed", "metrics.json has unreadable sections"),
    "metrics values odd": ("completed", ""),
    "meta not JSON": ("completed", "meta.json is not valid JSON"),
    "emptied": ("damaged", "config.json is missing"),
}


@dataclass(frozen=True)
class DamagedFolder:
    checkpoints: Path
    good: str
    damaged: tuple[DamagedRun, ...]

    def run(self, kind: str) -> DamagedRun:
        return next(run for run in self.damaged if run.kind == kind)


@pytest.fixture(scope="module")
def damaged_folder(
    completed_run: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DamagedFolder]:
    """A checkpoints folder: one good run and one copy of it per kind of damage."""
    checkpoints = tmp_path_factory.mktemp("damaged-checkpoints")
    good = copy_run(completed_run, checkpoints).name
    damaged = []
    for kind, (status, problem) in DAMAGE.items():
        folder = copy_run(completed_run, checkpoints)
        damage(kind, folder)
        damaged.append(DamagedRun(kind, folder.name, status, problem))
    yield DamagedFolder(checkpoints, good, tuple(damaged))


def test_every_damaged_run_is_listed_with_its_problem(damaged_folder: DamagedFolder) -> None:
    listed = {info.run_id: info for info in list_runs(damaged_folder.checkpoints)}
    assert set(listed) == {damaged_folder.good} | {run.run_id for run in damaged_folder.damaged}
    good = listed[damaged_folder.good]
    assert good.status == "completed" and not good.damaged and good.problems == ()
    for run in damaged_folder.damaged:
        info = listed[run.run_id]
        shown = "damaged" if info.damaged else info.status
        assert shown == run.status, (run.kind, info.status, info.problems)
        if run.problem:
            assert any(run.problem in problem for problem in info.problems), (run.kind, info)
    half_written = listed[damaged_folder.run("history line half-written").run_id]
    assert [record.epoch for record in half_written.history] == [1]  # the whole line kept
    assert listed[damaged_folder.run("metrics not JSON").run_id].metrics is None
    assert listed[damaged_folder.run("config sections wrong").run_id].config is None


def runs_in(folder: DamagedFolder) -> list[str]:
    return [folder.good, *(run.run_id for run in folder.damaged)]


def test_a_run_whose_weights_do_not_fit_is_refused_in_one_line(
    damaged_folder: DamagedFolder,
) -> None:
    folder = damaged_folder.checkpoints / damaged_folder.run("weights of another model").run_id
    with pytest.raises(RunError, match="cannot be used") as refused:
        Predictor.from_run(folder)
    assert "\n" not in str(refused.value)
    with pytest.raises(RunError, match="cannot be used"):
        evaluate_run(folder, force=True)  # the Compare page's Evaluate button reports these


@pytest.fixture
def damaged_app(
    damaged_folder: DamagedFolder, demo_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> AppTest:
    return fresh_app(damaged_folder.checkpoints, demo_dataset_dir, monkeypatch)


def test_the_compare_page_shows_damaged_runs_and_survives_every_choice(
    damaged_app: AppTest, damaged_folder: DamagedFolder
) -> None:
    app = damaged_app
    app.switch_page("app_pages/compare.py").run()
    assert not app.exception
    table = app.dataframe[0].value.set_index("run")
    assert table.loc[damaged_folder.good, "status"] == "completed"
    for run in damaged_folder.damaged:
        assert table.loc[run.run_id, "status"] == run.status, run.kind
    problems_box = next(box for box in app.expander if "Runs with problems" in box.label)
    listed = "\n".join(str(element.value) for element in problems_box.markdown)
    for run in damaged_folder.damaged:
        if run.problem:
            assert run.run_id in listed and run.problem in listed, run.kind
    choices = app.multiselect(key="compare_runs").options
    app.multiselect(key="compare_runs").set_value(choices).run()  # every plottable run at once
    assert not app.exception
    for kind in ("emptied", "config sections wrong", "status not JSON", "meta not JSON"):
        app.selectbox(key="manage_run").set_value(damaged_folder.run(kind).run_id).run()
        assert not app.exception, kind


def test_the_classify_page_skips_damaged_runs_and_explains_one_that_cannot_load(
    damaged_app: AppTest, damaged_folder: DamagedFolder, demo_dataset_dir: Path
) -> None:
    app = damaged_app
    app.switch_page("app_pages/classify.py").run()
    assert not app.exception
    from core.ui.classify import usable_runs

    labels = app.selectbox(key="classify_run").options
    offered = {run_id for run_id in runs_in(damaged_folder) if any(run_id in x for x in labels)}
    for run in damaged_folder.damaged:
        assert (run.run_id in offered) == (run.status == "completed"), run.kind
    # The best validation accuracy is the run whose weights belong to another model.
    bad = damaged_folder.run("weights of another model").run_id
    assert app.selectbox(key="classify_run").value.run_id == bad
    refusals = [error.value for error in app.error if "This run cannot classify" in error.value]
    assert len(refusals) == 1 and bad in refusals[0] and "\n" not in refusals[0]
    good = next(choice for choice in usable_runs() if choice.run_id == damaged_folder.good)
    app.selectbox(key="classify_run").set_value(good).run()
    png = sorted((demo_dataset_dir / "Testing" / "glioma").glob("*.png"))[0]
    app.get("file_uploader")[0].set_value([("scan.png", png.read_bytes(), "image/png")]).run()
    assert not app.exception
    assert {metric.label for metric in app.metric} == {"Predicted class"}


def test_the_train_page_shows_each_damaged_run_without_failing(
    damaged_app: AppTest, damaged_folder: DamagedFolder
) -> None:
    app = damaged_app
    for run in damaged_folder.damaged:
        app.query_params["run"] = run.run_id
        app.switch_page("app_pages/train.py").run()
        assert not app.exception, (run.kind, app.exception)
        assert any(f"status **{run.status}**" in str(text.value) for text in app.markdown), run.kind
        warnings = "\n".join(warning.value for warning in app.warning)
        assert run.problem in warnings, run.kind


def test_an_atomically_written_file_gets_the_mode_a_plain_write_would(tmp_path: Path) -> None:
    from core.atomic_files import write_text_atomic

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic = tmp_path / "atomic.txt"
    write_text_atomic(atomic, "x")  # mkstemp alone would leave it owner-only (0o600)
    assert atomic.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
