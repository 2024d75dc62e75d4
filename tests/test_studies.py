"""Studies: nested stratified sizes, planning and bad input, the paired statistics, and a tiny
study on the demo data run end to end, killed mid-cell and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from core import paths
from core.cli.main import main as cli_main
from core.data.training_data import nested_sample
from core.evaluation.stress import stored_stress, stress_run
from core.imaging.shifts import SHIFTS
from core.jobs import JobManager
from core.runs.registry import resolve_run
from core.studies.plan import (
    ModelSetting,
    cell_epochs,
    load_study,
    parse_setting,
    parse_size,
    plan_study,
)
from core.studies.runner import cell_request
from core.studies.summary import paired_difference, study_summary, verdict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def test_smaller_training_sets_are_nested_and_stratified() -> None:
    labels = np.repeat([0, 1, 2, 3], [50, 80, 65, 90])
    positions = np.arange(len(labels))[::-1].copy()  # an order the sample must not rely on
    samples = {n: nested_sample(positions, labels, per_class=n, seed=3) for n in (5, 10, 40)}
    for n, sample in samples.items():
        assert np.bincount(labels[sample]).tolist() == [n] * 4
        assert len(set(sample.tolist())) == len(sample)
    assert set(samples[5]) < set(samples[10]) < set(samples[40])
    by_fraction = {f: nested_sample(positions, labels, fraction=f, seed=3) for f in (0.1, 0.5)}
    assert np.bincount(labels[by_fraction[0.1]]).tolist() == [5, 8, 6, 9]  # 10% of each class
    assert set(by_fraction[0.1]) < set(by_fraction[0.5])
    other_seed = nested_sample(positions, labels, per_class=10, seed=4)
    assert set(other_seed) != set(samples[10])
    with pytest.raises(ValueError, match="larger than class a"):
        nested_sample(positions, labels, per_class=60, seed=0, class_names=("a", "b", "c", "d"))


def test_sizes_parse_and_small_sets_get_enough_steps() -> None:
    assert parse_size("all").is_all and parse_size("100%").is_all
    assert parse_size("50").per_class == 50 and parse_size("25%").fraction == 0.25
    assert parse_size("25%").label == "25%" and parse_size(" 50 ").label == "50"
    for bad in ("0", "-3", "ten", "0%", "150%", "1.5"):
        with pytest.raises(ValueError):
            parse_size(bad)
    assert cell_epochs(12, 4600, 64, 300) == 12  # a full set already takes 864 steps
    assert cell_epochs(12, 200, 64, 300) == 48  # 4 steps an epoch: 75 wanted, at most 4 x 12
    assert cell_epochs(12, 800, 64, 300) == 24  # 13 steps an epoch: 24 epochs = 312 steps


def test_a_study_plans_its_cells_on_one_split(demo_dataset_dir: Path) -> None:
    settings = [parse_setting("cnn_fast"), parse_setting("cnn_fast:none", {"epochs": 2})]
    study = plan_study(
        data_root=demo_dataset_dir, settings=settings, sizes=["all", "10", "25%"], seeds=2,
        min_steps=1,
    )  # fmt: skip
    assert study.sizes == ["10", "25%", "all"]  # smallest first
    assert len(study.cells) == 2 * 3 * 2 and study.cells[0].seed == 0
    assert {cell.train_images for cell in study.cells if cell.size == "10"} == {40}
    requests = [cell_request(study, cell) for cell in study.cells]
    assert {request.data.split_seed for request in requests} == {0}  # one split for every cell
    assert {request.data.sample_seed for request in requests} == {0, 1}
    assert requests[0].study is not None and requests[0].study.id == study.study_id
    assert settings[1].name == "cnn_fast (none, epochs=2)"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--models", "resnet9000"], "unknown model"),
        (["--sizes", "5000"], "larger than class"),
        (["--seeds", "0"], "at least 1 seed"),
        (["--sizes", "ten"], "not 'all'"),
        (["--models", "cnn_fast:fancy"], "recipe 'fancy'"),
    ],
)
def test_bad_study_input_is_one_line_and_exit_2(
    demo_dataset_dir: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    code = cli_main(["study", "run", "--data", str(demo_dataset_dir), *arguments])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.startswith("error: ") and message in error
    assert len(error.splitlines()) == 1
    assert cli_main(["study", "show", "20261201T000000Z_study_000000"]) == 2
    assert "not found" in capsys.readouterr().err


def test_the_paired_difference_matches_a_hand_computed_t_interval() -> None:
    first = pd.Series([0.80, 0.84, 0.82], index=[0, 1, 2])
    second = pd.Series([0.90, 0.92, 0.91, 0.99], index=[0, 1, 2, 3])  # seed 3 has no pair
    result = paired_difference(first, second)
    differences = np.array([0.10, 0.08, 0.09])
    half = 4.302652729911275 * differences.std(ddof=1) / np.sqrt(3)  # t(0.975, df=2)
    assert result["seeds"] == 3
    assert result["difference_mean"] == pytest.approx(0.09)
    assert result["ci_low"] == pytest.approx(0.09 - half)
    assert result["ci_high"] == pytest.approx(0.09 + half)
    expected_p = stats.ttest_rel([0.90, 0.92, 0.91], [0.80, 0.84, 0.82]).pvalue
    assert result["p_value"] == pytest.approx(expected_p)
    text = verdict({"size": "50", "metric": "unseen_scan_accuracy", "reference": "cnn",
                    "setting": "mnv2", **result})  # fmt: skip
    assert text.startswith("at 50 images per class, mnv2 is ahead of cnn by 9.0 points")
    unclear = paired_difference(first, pd.Series([0.85, 0.80, 0.83], index=[0, 1, 2]))
    assert "no clear difference" in verdict(
        {"size": "all", "metric": "accuracy", "reference": "a", "setting": "b", **unclear}
    )


def test_a_tiny_study_runs_and_its_summary_pairs_settings(demo_dataset_dir: Path) -> None:
    settings = [
        ModelSetting("cnn_fast", changes={"epochs": 1}),
        parse_setting("cnn_fast:none", {"epochs": 1}),
    ]
    study = plan_study(
        data_root=demo_dataset_dir, settings=settings, sizes=["5", "all"], seeds=2, min_steps=1,
        stress=True,
    )  # fmt: skip
    study.save()
    manager = JobManager()  # as the Studies page runs it: in the training queue's worker
    job = manager.submit_study(study.study_id)
    with pytest.raises(ValueError, match="already queued or running"):
        manager.submit_study(study.study_id)
    assert manager.wait_idle(timeout=300)
    assert job.snapshot().state == "completed", job.snapshot().error
    stored = load_study(study.study_id)
    assert stored.state == "finished" and stored.counts()["completed"] == 8
    runs = [resolve_run(cell.run_id) for cell in stored.cells]
    assert all(info.status == "completed" for info in runs)
    assert {info.config.study.id for info in runs} == {study.study_id}
    assert {info.config.dataset.train_images for info in runs if info.config.study.size == "5"} == {
        20
    }
    summary = study_summary(stored)
    assert len(summary["rows"]) == 4 and {row["seeds"] for row in summary["rows"]} == {2}
    row = summary["rows"][0]
    assert (
        row["unseen_scan_accuracy_mean"] is not None
        and row["stress_worst_accuracy_mean"] is not None
    )
    assert len(summary["comparisons"]) == 2 and all("verdict" in c for c in summary["comparisons"])
    json.dumps(summary)  # JSON-ready: no NaN, no numpy scalars
    # Cells are stress-tested at moderate severity only; a full request fills in the rest.
    points = stored_stress(runs[0]).shifts["blur"]
    assert [point.severity for point in points] == [0.0, SHIFTS["blur"].moderate]
    full = stress_run(runs[0].run_id, shifts=["blur"], bootstrap_samples=0)
    assert [point.severity for point in full.shifts["blur"]] == list(SHIFTS["blur"].severities)
    assert full.shifts["blur"][2].accuracy == points[1].accuracy  # the same seeded shift


def _study_file(checkpoints: Path) -> Path | None:
    found = list((checkpoints / "studies").glob("*_study_*.json"))
    return found[0] if found else None


def test_a_killed_study_resumes_without_redoing_completed_cells(
    demo_dataset_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environment = {
        **os.environ,
        paths.CHECKPOINTS_ENV: str(tmp_path / "checkpoints"),
        paths.CACHE_DIR_ENV: os.environ[paths.CACHE_DIR_ENV],
    }
    command = [
        sys.executable, "-m", "core", "study", "run", "--data", str(demo_dataset_dir),
        "--models", "cnn_fast", "--sizes", "5", "all", "--seeds", "1", "--epochs", "40",
        "--min-steps", "1", "--no-stress", "--quiet",
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:  # wait for the second cell to be training
            path = _study_file(tmp_path / "checkpoints")
            payload = json.loads(path.read_text()) if path else None
            if (
                payload
                and payload["cells"][0]["state"] == "completed"
                and payload["cells"][1]["state"] == "running"
            ):
                time.sleep(3)  # well into its epochs
                break
            assert process.poll() is None, "the study ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("the second cell never started")
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        if process.poll() is None:
            process.kill()
    before = json.loads(_study_file(tmp_path / "checkpoints").read_text())
    first_run, killed_run = before["cells"][0]["run_id"], before["cells"][1]["run_id"]
    assert before["cells"][1]["state"] == "running"  # as the killed process left it
    resumed = subprocess.run(
        [sys.executable, "-m", "core", "study", "resume", before["study_id"], "--quiet", "--json"],
        cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    after = json.loads(_study_file(tmp_path / "checkpoints").read_text())
    assert after["state"] == "finished"
    assert after["cells"][0]["run_id"] == first_run and after["cells"][0]["attempts"] == 1
    assert after["cells"][1]["run_id"] != killed_run and after["cells"][1]["attempts"] == 2
    summary = json.loads(resumed.stdout)
    assert summary["cells"]["completed"] == 2
    killed = json.loads((tmp_path / "checkpoints" / killed_run / "status.json").read_text())
    assert killed["status"] == "running"  # the killed run's own file says so; the registry
    monkeypatch.setenv(paths.CHECKPOINTS_ENV, str(tmp_path / "checkpoints"))
    assert resolve_run(killed_run).status == "interrupted"  # reads it as interrupted


def test_study_run_json_prints_one_document_and_list_shows_it(
    demo_dataset_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arguments = ["--models", "cnn_fast", "--sizes", "5", "--seeds", "1", "--epochs", "1"]
    code = cli_main(
        ["study", "run", "--data", str(demo_dataset_dir), *arguments, "--no-stress", "--quiet",
         "--json", "--name", "json check"]
    )  # fmt: skip
    captured = capsys.readouterr()
    summary = json.loads(captured.out)  # the estimate went to stderr
    assert code == 0 and "estimated" in captured.err
    [row] = summary["rows"]
    assert row["n_train"] == 20 and row["seeds"] == 1 and row["accuracy_mean"] is not None
    assert row["duplicate_free_accuracy_mean"] is not None and row["train_seconds_mean"] > 0
    assert summary["comparisons"] == []  # one setting: nothing to pair
    assert cli_main(["study", "list"]) == 0
    assert summary["study_id"] in capsys.readouterr().out
    assert cli_main(["study", "show", summary["study_id"], "--csv", str(tmp_path / "csv")]) == 0
    assert (tmp_path / "csv" / "sizes.csv").read_text().startswith("setting,size")


def test_a_study_cancelled_in_the_queue_stops_and_resumes(demo_dataset_dir: Path) -> None:
    settings = [ModelSetting("cnn_fast", changes={"epochs": 30, "image_size": 64})]
    study = plan_study(
        data_root=demo_dataset_dir, settings=settings, sizes=["all"], seeds=2, min_steps=1,
        stress=False,
    )  # fmt: skip
    study.save()
    manager = JobManager()
    job = manager.submit_study(study.study_id)
    deadline = time.monotonic() + 120
    while job.snapshot().epoch < 2:  # the first cell is training
        assert time.monotonic() < deadline and job.snapshot().active
        time.sleep(0.1)
    job.cancel()
    assert manager.wait_idle(timeout=120)
    cancelled = load_study(study.study_id)
    assert job.snapshot().state == "cancelled" and cancelled.state == "cancelled"
    assert [cell.state for cell in cancelled.cells] == ["cancelled", "pending"]
    assert resolve_run(cancelled.cells[0].run_id).status == "cancelled"
    resumed = manager.submit_study(study.study_id)  # "Resume the study" on the page
    assert manager.wait_idle(timeout=300) and resumed.snapshot().state == "completed"
    finished = load_study(study.study_id)
    assert finished.state == "finished" and finished.cells[0].attempts == 2
