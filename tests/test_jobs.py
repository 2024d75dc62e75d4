"""The background job manager: one job at a time, a visible queue, cancel, snapshots."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from core.jobs import JobManager
from core.runs.layout import RunError
from core.runs.registry import load_run
from tests.test_training import tiny_request


@pytest.fixture
def manager() -> JobManager:
    manager = JobManager()
    yield manager
    manager.cancel_all()
    assert manager.wait_idle(60)


def wait_for(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_job_trains_in_the_background_and_reports_progress(
    manager: JobManager, demo_dataset_dir: Path
) -> None:
    job = manager.submit(tiny_request(demo_dataset_dir, epochs=2))
    seen_states = set()
    wait_for(lambda: seen_states.add(job.snapshot().state) or not job.snapshot().active)
    snapshot = job.snapshot()
    assert snapshot.state == "completed", snapshot.error
    assert "running" in seen_states
    assert [record["epoch"] for record in snapshot.history] == [1, 2]
    assert snapshot.batch_losses and snapshot.fraction == pytest.approx(1.0)
    assert load_run(job.job_id).status == "completed"  # job id == run id on disk


def test_second_job_queues_visibly_and_a_queued_job_cancels_at_once(
    manager: JobManager, demo_dataset_dir: Path
) -> None:
    first = manager.submit(tiny_request(demo_dataset_dir, epochs=30))
    second = manager.submit(tiny_request(demo_dataset_dir, epochs=1))
    wait_for(lambda: first.snapshot().state == "running")
    positions = {snapshot.job_id: snapshot.queue_position for snapshot in manager.snapshots()}
    assert positions[second.job_id] == 1 and positions[first.job_id] is None
    assert manager.active().job_id == first.job_id
    second.cancel()
    assert second.snapshot().state == "cancelled"
    first.cancel()
    wait_for(lambda: not first.snapshot().active)
    assert first.snapshot().state == "cancelled"
    assert load_run(first.job_id).status == "cancelled"
    with pytest.raises(RunError):
        load_run(second.job_id)  # never started: no run folder


def test_a_failing_job_reports_its_error_and_the_worker_survives(
    manager: JobManager, demo_dataset_dir: Path, tmp_path: Path
) -> None:
    broken = tiny_request(demo_dataset_dir)
    broken = type(broken)(
        data=type(broken.data)(**{**broken.data.__dict__, "root": str(tmp_path / "gone")}),
        model=broken.model,
        train=broken.train,
    )
    failing = manager.submit(broken)
    wait_for(lambda: not failing.snapshot().active)
    assert failing.snapshot().state == "failed"
    assert "no such folder" in failing.snapshot().error
    fine = manager.submit(tiny_request(demo_dataset_dir, epochs=1))
    wait_for(lambda: not fine.snapshot().active)
    assert fine.snapshot().state == "completed"
