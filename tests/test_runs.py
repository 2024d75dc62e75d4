"""The run registry on disk: files, statuses, damage, interruption, labels, deletion."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import torch

from core.runs.layout import HEARTBEAT_STALE_SECONDS, RunError, new_run_id
from core.runs.registry import (
    delete_run,
    is_process_alive,
    list_runs,
    load_run,
    load_weights,
    mark_interrupted_runs,
    paths,
    rename_run,
    set_notes,
    set_tags,
)
from core.runs.writer import RunWriter

# The smallest config.json a run can have: what rebuilds its model and its input.
CONFIG = {
    "classes": ["a", "b", "c", "d"],
    "data": {"root": "/nowhere", "image_size": 64},
    "model": {"name": "resnet18", "num_classes": 4, "in_channels": 3},
    "preprocessing": {"image_size": 64, "channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3},
    "train": {"epochs": 3, "lr": 1e-3},
}


def make_run(root: Path, model: str = "resnet18", config: dict | None = None) -> RunWriter:
    return RunWriter.create(config or CONFIG, model_name=model, root=root)


def write_status(run: RunWriter, **changes: object) -> None:
    status = json.loads((run.path / "status.json").read_text())
    status.update(changes)
    (run.path / "status.json").write_text(json.dumps(status))


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def temp_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.name.endswith(".tmp")]


def test_run_id_format_and_sanitising() -> None:
    moment = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    run_id = new_run_id("ResNet 18/../x", now=moment)
    stamp, _, random = run_id.rpartition("_")
    assert stamp.startswith("20240506T070809Z_")
    assert all(c in "abcdefghijklmnopqrstuvwxyz0123456789_-" for c in stamp.split("_", 1)[1])
    assert "/" not in run_id and ".." not in run_id
    assert len(random) == 6 and int(random, 16) >= 0
    assert new_run_id("!!!", now=moment).split("_")[1] == "model"
    assert new_run_id("cnn", now=moment) != new_run_id("cnn", now=moment)


def test_create_writes_every_file(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    assert run.path == tmp_path / run.run_id and "_resnet18_" in run.run_id
    assert json.loads((run.path / "config.json").read_text()) == CONFIG
    status = json.loads((run.path / "status.json").read_text())
    assert status["status"] == "queued" and status["pid"] == os.getpid()
    assert status["started_at"] is None and status["finished_at"] is None
    assert (run.path / "history.jsonl").read_text() == ""
    assert json.loads((run.path / "meta.json").read_text()) == {
        "name": None,
        "tags": [],
        "notes": "",
    }
    assert [p.name for p in tmp_path.iterdir()] == [run.run_id]  # no staging leftovers
    info = load_run(run.run_id, tmp_path)
    assert info.status == "queued" and not info.damaged and info.problems == ()
    assert info.created_at is not None and info.display_name == run.run_id


def test_status_transitions_stamp_times(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.set_status("running", progress={"epoch": 1, "total_epochs": 3, "fraction": 0.33})
    first = load_run(run.run_id, tmp_path).stored_status
    assert first.started_at and first.finished_at is None
    run.heartbeat({"epoch": 2, "total_epochs": 3, "fraction": 0.66})
    run.set_status("running", message="epoch 2")
    run.set_status("failed", error="boom")
    info = load_run(run.run_id, tmp_path)
    assert info.status == "failed" and info.stored_status.error == "boom"
    assert info.stored_status.started_at == first.started_at
    assert info.stored_status.finished_at and info.stored_status.progress["epoch"] == 2
    with pytest.raises(RunError):
        run.set_status("exploded")


def test_history_skips_torn_line(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.append_history({"epoch": 1, "loss": 0.5})
    run.append_history({"epoch": 2, "loss": 0.4})
    with (run.path / "history.jsonl").open("a") as handle:
        handle.write('{"epoch": 3, "lo')  # a crash mid-write
    info = load_run(run.run_id, tmp_path)
    assert [r.epoch for r in info.history] == [1, 2]
    assert "history.jsonl: 1 unreadable line skipped" in info.problems
    run.append_history({"epoch": 3, "loss": 0.3})  # must not glue onto the torn line
    assert [r.epoch for r in load_run(run.run_id, tmp_path).history] == [1, 2, 3]


def test_concurrent_history_appends(tmp_path: Path) -> None:
    run = make_run(tmp_path)

    def append(worker: int) -> None:
        for step in range(50):
            epoch = worker * 50 + step + 1  # history lines are epoch records
            run.append_history({"epoch": epoch, "worker": worker, "pad": "x" * 200})

    threads = [threading.Thread(target=append, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    info = load_run(run.run_id, tmp_path)
    assert len(info.history) == 200 and info.problems == ()
    assert sorted(record.epoch for record in info.history) == list(range(1, 201))


def test_weights_round_trip(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    shared = torch.randn(4, 3)
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    state = {
        "embed.weight": shared,
        "head.weight": shared,  # tied weights share storage
        "strided": base.t(),  # non-contiguous
        "view": base[1:3],  # a view into a larger storage
        "steps": torch.tensor(7, dtype=torch.int64),
        "empty": torch.empty(0),
    }
    run.save_weights(state)
    loaded = load_weights(run.run_id, tmp_path)
    assert loaded.keys() == state.keys()
    for key, tensor in state.items():
        assert torch.equal(loaded[key], tensor) and loaded[key].dtype == tensor.dtype
    assert load_run(run.run_id, tmp_path).has_weights
    assert load_weights(load_run(run.path), tmp_path).keys() == state.keys()


def test_metrics_merge(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.save_metrics({"val": {"accuracy": 0.9}, "epochs_run": 3})
    run.save_metrics({"train_seconds": 5.0, "epochs_run": 4})
    stored = json.loads((run.path / "metrics.json").read_text())
    assert stored == {"val": {"accuracy": 0.9}, "epochs_run": 4, "train_seconds": 5.0}
    metrics = load_run(run.run_id, tmp_path).metrics
    assert metrics.val.accuracy == 0.9 and metrics.epochs_run == 4
    assert metrics.train_seconds == 5.0


def test_failed_replace_keeps_old_metrics(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(tmp_path)
    run.save_metrics({"val": 1})
    before = (run.path / "metrics.json").read_bytes()

    def broken_replace(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        run.save_metrics({"val": 2, "test": 3})
    monkeypatch.undo()
    assert (run.path / "metrics.json").read_bytes() == before
    assert temp_files(tmp_path) == []


def test_list_runs_newest_first_and_skips_junk(tmp_path: Path) -> None:
    ids = []
    for day in (1, 3, 2):
        run_id = new_run_id("cnn", now=datetime(2024, 1, day, tzinfo=UTC))
        folder = tmp_path / run_id
        folder.mkdir()
        (folder / "config.json").write_text("{}")
        (folder / "status.json").write_text(json.dumps({"status": "completed"}))
        ids.append(run_id)
    (tmp_path / "notes").mkdir()  # neither config nor status
    (tmp_path / ".deleting-old").mkdir()
    (tmp_path / ".deleting-old" / "config.json").write_text("{}")
    (tmp_path / "stray.txt").write_text("x")
    assert [info.run_id for info in list_runs(tmp_path)] == [ids[1], ids[2], ids[0]]
    assert list_runs(tmp_path / "missing") == []


def test_damaged_runs_are_listed_not_raised(tmp_path: Path) -> None:
    garbage, no_status, truncated, no_weights = (make_run(tmp_path) for _ in range(4))
    (garbage.path / "config.json").write_text("{not json")
    (no_status.path / "status.json").unlink()
    truncated.save_weights({"w": torch.randn(64, 64)})
    data = (truncated.path / "model.safetensors").read_bytes()
    (truncated.path / "model.safetensors").write_bytes(data[: len(data) // 2])
    truncated.set_status("completed")
    no_weights.set_status("completed")

    infos = {info.run_id: info for info in list_runs(tmp_path)}
    assert len(infos) == 4 and all(info.damaged for info in infos.values())
    assert "config.json is not valid JSON" in infos[garbage.run_id].problems
    assert infos[garbage.run_id].status == "damaged" and infos[garbage.run_id].config is None
    assert "status.json is missing" in infos[no_status.run_id].problems
    assert infos[no_status.run_id].status == "damaged"
    assert "model.safetensors is truncated or corrupt" in infos[truncated.run_id].problems
    assert "model.safetensors is missing" in infos[no_weights.run_id].problems
    with pytest.raises(RunError, match="corrupt"):
        load_weights(truncated.run_id, tmp_path)
    with pytest.raises(RunError, match="missing"):
        load_weights(no_weights.run_id, tmp_path)


def test_interrupted_detection_and_marking(tmp_path: Path) -> None:
    dead, stale, live, queued_live, done = (make_run(tmp_path) for _ in range(5))
    for run in (dead, stale, live, done):
        run.set_status("running")
    write_status(dead, pid=dead_pid())
    old = datetime.now(UTC) - timedelta(seconds=HEARTBEAT_STALE_SECONDS + 30)
    write_status(stale, heartbeat=old.isoformat())
    done.set_status("completed")
    done.save_weights({"w": torch.zeros(1)})

    status = {info.run_id: info.status for info in list_runs(tmp_path)}
    assert status[dead.run_id] == "interrupted" and status[stale.run_id] == "interrupted"
    assert status[live.run_id] == "running" and status[queued_live.run_id] == "queued"
    assert status[done.run_id] == "completed"
    assert not is_process_alive(dead_pid()) and is_process_alive(os.getpid())

    assert sorted(mark_interrupted_runs(tmp_path)) == sorted([dead.run_id, stale.run_id])
    stored = load_run(dead.run_id, tmp_path).stored_status
    assert stored.status == "interrupted" and stored.finished_at
    assert load_run(live.run_id, tmp_path).stored_status.status == "running"
    assert mark_interrupted_runs(tmp_path) == []


def test_labels_round_trip_and_validation(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    run.set_status("running")
    rename_run(run.run_id, "  Baseline ResNet  ", tmp_path)
    set_tags(run.run_id, [" fast ", "fast", "bf16"], tmp_path)
    set_notes(run.run_id, "lr 1e-3\nno aug", tmp_path)
    run.heartbeat()  # the training thread's writes never clobber the labels
    info = load_run(run.run_id, tmp_path)
    assert info.name == "Baseline ResNet" and info.display_name == "Baseline ResNet"
    assert info.tags == ("fast", "bf16") and info.notes == "lr 1e-3\nno aug"
    for bad in ("", "   ", "x" * 81, "tab\there"):
        with pytest.raises(RunError):
            rename_run(run.run_id, bad, tmp_path)
    for bad_tags in (["ok", ""], ["y" * 31], "single-string"):
        with pytest.raises(RunError):
            set_tags(run.run_id, bad_tags, tmp_path)
    with pytest.raises(RunError, match="not found"):
        rename_run("20240101T000000Z_cnn_abcdef", "x", tmp_path)
    assert load_run(run.run_id, tmp_path).name == "Baseline ResNet"


def test_delete(tmp_path: Path) -> None:
    live, done = make_run(tmp_path), make_run(tmp_path)
    live.set_status("running")
    done.set_status("completed")
    with pytest.raises(RunError, match="running"):
        delete_run(live.run_id, tmp_path)
    delete_run(done.run_id, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.run_id]
    delete_run(live.run_id, tmp_path, allow_live=True)
    assert list(tmp_path.iterdir()) == []
    for bad in ("../x", "..", "a/b", "a\\b", ".deleting-x", ""):
        with pytest.raises(RunError):
            delete_run(bad, tmp_path)
    with pytest.raises(RunError):
        load_run("../" + tmp_path.name, tmp_path / "sub")


def test_default_root_is_checkpoints_root() -> None:
    run = RunWriter.create(CONFIG, model_name="tiny")
    assert run.path.parent == paths.checkpoints_root()
    assert run.run_id in {info.run_id for info in list_runs()}
    delete_run(run.run_id, allow_live=True)
