"""Faults: damaged run folders in front of the registry and every page."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from streamlit.testing.v1 import AppTest

from core import paths, runs
from core.evaluation import evaluate_run
from core.inference import Predictor
from core.run_writer import new_run_id
from core.trainer import fit
from core.ui.memo import shared_memo
from tests.test_pages import PROJECT_ROOT, TIMEOUT
from tests.test_training import tiny_request


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
        return runs.load_run(run_id).path


def copy_run(source: Path, checkpoints: Path) -> Path:
    """A copy of a run folder under a fresh run id."""
    target = checkpoints / new_run_id("cnn_fast")
    shutil.copytree(source, target)
    return target


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
    listed = {info.run_id: info for info in runs.list_runs(damaged_folder.checkpoints)}
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
    assert [record["epoch"] for record in half_written.history] == [1]  # the whole line kept
    assert listed[damaged_folder.run("metrics not JSON").run_id].metrics is None
    assert listed[damaged_folder.run("config sections wrong").run_id].config is None


def runs_in(folder: DamagedFolder) -> list[str]:
    return [folder.good, *(run.run_id for run in folder.damaged)]


def test_a_run_whose_weights_do_not_fit_is_refused_in_one_line(
    damaged_folder: DamagedFolder,
) -> None:
    folder = damaged_folder.checkpoints / damaged_folder.run("weights of another model").run_id
    with pytest.raises(runs.RunError, match="cannot be used") as refused:
        Predictor.from_run(folder)
    assert "\n" not in str(refused.value)
    with pytest.raises(runs.RunError, match="cannot be used"):
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
