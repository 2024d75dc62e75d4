"""Training one run with several processes (DDP under torchrun, gloo on the CPU).

The helpers are tested in this process; the real thing is launched with torchrun
(`python -m torch.distributed.run`): the DDP step against one process with BatchNorm frozen and
no dropout (equal to float precision), the `train` command end to end on the demo, a killed
process, and bad input.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch

from core import paths
from core.config import ModelConfig
from core.models.build import build_model
from core.runs.records import parse_config
from core.runs.registry import list_runs, load_run, load_weights
from core.runs.writer import RunWriter, SilentRunWriter
from core.training.distributed import (
    StopSignals,
    check_world_fits,
    is_lost_peer,
    process_seed,
    threads_per_process,
    torchrun_launch,
)
from core.training.frozen_cache import share_bounds
from core.training.loops import BatchShard, TrainingInterrupted

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKER_MARK = "BTW_TEST_DISTRIBUTED_MARK"


def test_torchrun_launch_reads_torchrun_variables() -> None:
    assert torchrun_launch({}) is None  # not under torchrun
    assert torchrun_launch({"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"}) is None
    launch = torchrun_launch(
        {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    )
    assert launch is not None
    assert (launch.rank, launch.local_rank, launch.world_size, launch.local_world_size) == (
        3, 1, 4, 2,
    )  # fmt: skip
    with pytest.raises(ValueError, match="not a number"):
        torchrun_launch({"WORLD_SIZE": "two"})
    with pytest.raises(ValueError, match="inconsistent"):
        torchrun_launch({"WORLD_SIZE": "2", "RANK": "2", "LOCAL_RANK": "0"})


def test_each_process_gets_its_share_of_the_cores() -> None:
    assert threads_per_process(2, 2) == 1  # this machine: two ranks do not oversubscribe
    assert threads_per_process(16, 8) == 2
    assert threads_per_process(16, 3) == 5
    assert threads_per_process(1, 4) == 1


@pytest.mark.parametrize(("batch", "world_size"), [(16, 2), (7, 2), (5, 3), (1, 2), (3, 8)])
def test_shards_partition_each_global_batch_and_average_to_its_mean(
    batch: int, world_size: int
) -> None:
    positions = np.random.default_rng(batch).permutation(100)[:batch]
    losses = np.random.default_rng(world_size).random(100)
    generator = torch.Generator()
    taken, scaled_mean = [], 0.0
    for rank in range(world_size):
        mine, scale = BatchShard(rank, world_size, generator).take(positions)
        assert len(mine) >= 1  # every rank steps, or DDP would wait for it
        if scale > 0:
            taken.extend(mine.tolist())
            scaled_mean += scale * losses[mine].mean() / world_size  # what DDP's average sees
        else:
            assert rank >= batch and mine.tolist() == positions[-1:].tolist()
    assert sorted(taken) == sorted(positions.tolist())  # each image once, none left out
    assert scaled_mean == pytest.approx(losses[positions].mean())


def test_feature_shares_cover_every_row_once() -> None:
    for count, world_size in [(10, 3), (2, 2), (4892, 8)]:
        bounds = [share_bounds(count, rank, world_size) for rank in range(world_size)]
        assert bounds[0][0] == 0 and bounds[-1][1] == count
        assert all(bounds[i][1] == bounds[i + 1][0] for i in range(world_size - 1))


def test_too_many_processes_for_the_images_is_one_line() -> None:
    check_world_fits(2, train_images=2, val_images=2, batch=2)
    for sizes, what in [
        ({"train_images": 3, "val_images": 9, "batch": 9}, "3 training images"),
        ({"train_images": 9, "val_images": 2, "batch": 9}, "2 validation images"),
        ({"train_images": 9, "val_images": 9, "batch": 1}, "1 images in a batch"),
    ]:
        with pytest.raises(ValueError, match=what) as raised:
            check_world_fits(4, **sizes)
        assert "\n" not in str(raised.value)


def test_process_seeds_differ_by_rank_and_repeat() -> None:
    seeds = [process_seed(42, rank) for rank in range(4)]
    assert len(set(seeds)) == 4 and seeds == [process_seed(42, rank) for rank in range(4)]
    assert process_seed(43, 0) not in seeds


def test_sigterm_interrupts_training_waits_while_finishing_and_exits_otherwise() -> None:
    signals = StopSignals()
    with pytest.raises(SystemExit):
        signals(signal.SIGTERM, None)  # preparing data: nothing to save
    with pytest.raises(TrainingInterrupted, match="SIGTERM"), signals.training():
        signals(signal.SIGTERM, None)
    signals(signal.SIGTERM, None)  # the terminal status is being written: no exception
    signals.finished()
    assert signals.received
    with pytest.raises(SystemExit):
        signals(signal.SIGTERM, None)


def test_a_lost_peer_is_recognised_by_what_gloo_says() -> None:
    gloo = RuntimeError(
        "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error "
        "[127.0.0.1]:33994: Connection reset by peer."
    )
    assert is_lost_peer(gloo)
    assert not is_lost_peer(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not is_lost_peer(ValueError("gloo"))


def test_the_silent_writer_of_other_ranks_writes_nothing(tmp_path: Path) -> None:
    writer = SilentRunWriter(tmp_path / "20261201T000000Z_cnn_fast_abcdef")
    assert isinstance(writer, RunWriter) and writer.run_id == "20261201T000000Z_cnn_fast_abcdef"
    writer.set_status("running", message="training")
    writer.heartbeat({"epoch": 1})
    writer.append_history({"epoch": 1})
    writer.save_weights({"w": torch.zeros(2)})
    writer.save_metrics({"best_epoch": 1})
    writer.save_metrics_entry("evaluation", "val", {})
    assert list(tmp_path.iterdir()) == []


def test_the_distributed_section_of_config_json_is_read() -> None:
    config = {
        "classes": ["a", "b"],
        "data": {"root": "/data", "image_size": 32},
        "model": {"name": "cnn_fast", "num_classes": 2},
        "preprocessing": {"image_size": 32, "channels": 1, "mean": [0.5], "std": [0.25]},
    }
    assert parse_config(config).distributed is None  # one process
    section = {"world_size": 2, "backend": "gloo", "batch": "global", "per_process_batch": 8.0}
    record = parse_config({**config, "distributed": section}).distributed
    assert record is not None and (record.world_size, record.backend) == (2, "gloo")
    assert record.batch == "global" and record.per_process_batch == 8.0


# --- launched with torchrun -------------------------------------------------------------


def _environment(checkpoints: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        paths.CACHE_DIR_ENV: os.environ[paths.CACHE_DIR_ENV],
        paths.CHECKPOINTS_ENV: str(checkpoints),
        "PYTHONPATH": str(PROJECT_ROOT),
        **extra,
    }


def _torchrun(processes: int, *arguments: str) -> list[str]:
    return [
        sys.executable, "-m", "torch.distributed.run", "--standalone",
        "--nproc-per-node", str(processes), *arguments,
    ]  # fmt: skip


def _run(command: list[str], checkpoints: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
        env=_environment(checkpoints),
    )  # fmt: skip


def test_the_ddp_step_equals_one_process_without_batchnorm_statistics_or_dropout(
    tmp_path: Path,
) -> None:
    """With BatchNorm's statistics frozen (eval mode) and no dropout, nothing depends on which
    process computes what: 3 epochs of cnn_fast on 2 processes give one process's weights, epoch
    statistics and validation logits to float precision. 13 images in batches of 6 leave a last
    batch of one image, so rank 1 steps on a stand-in image at loss scale 0."""
    result = _run(_torchrun(2, __file__, str(tmp_path / "step.json")), tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads((tmp_path / "step.json").read_text())
    assert found["movement"] > 0.5  # the weights did train
    assert found["weights_max_difference"] < 1e-4
    single, distributed = found["stats"]
    assert [images for _, _, images in distributed] == [13, 13, 13]  # summed, not doubled
    assert [accuracy for _, accuracy, _ in distributed] == [a for _, a, _ in single]
    assert [loss for loss, _, _ in distributed] == pytest.approx([loss for loss, _, _ in single])
    assert found["logits_max_difference"] < 1e-5


def _exactness_worker(output: Path) -> None:
    """Run under torchrun by the test above: the same training in one process and in DDP."""
    import copy

    from torch import nn

    from core.imaging.model_input import make_preprocessing
    from core.training.distributed import DistributedTraining, distributed_session
    from core.training.loops import StepSettings, evaluate, train_one_epoch

    launch = torchrun_launch()
    assert launch is not None
    with distributed_session(launch) as context:
        rng = np.random.default_rng(0)
        images = torch.from_numpy(rng.integers(0, 255, (13, 32, 32), dtype=np.uint8))
        labels = torch.from_numpy(rng.integers(0, 4, 13))
        torch.manual_seed(0)
        start, _ = build_model(ModelConfig("cnn_fast", 4, dropout=0.0))
        preprocessing = make_preprocessing(
            image_size=32, channels=1, pretrained=False, images=images.numpy()
        )
        settings = StepSettings(preprocessing, torch.device("cpu"))

        def training_mode(model: nn.Module) -> None:
            model.train()
            for module in model.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()  # running statistics: the same on every shard

        outcomes = {}
        for name in ("single", "distributed"):
            model = copy.deepcopy(start)
            options = {
                "optimizer": torch.optim.Adam(model.parameters(), lr=1e-3), "scheduler": None,
                "loss_function": nn.CrossEntropyLoss(), "settings": settings, "batch_size": 6,
                "generator": torch.Generator().manual_seed(0), "augment": None,
            }  # fmt: skip
            parallel = DistributedTraining(context, 0) if name == "distributed" else None
            stats = []
            for _ in range(3):
                training_mode(model)
                train = parallel.train_one_epoch if parallel else train_one_epoch
                stats.append(train(model, images, labels, **options))
            if parallel:
                validation = parallel.evaluate(
                    model, parallel.validation_shard(images), labels,
                    loss_function=nn.CrossEntropyLoss(), settings=settings,
                    should_stop=lambda: False,
                )  # fmt: skip
            else:
                validation = evaluate(
                    model, images, labels, loss_function=nn.CrossEntropyLoss(), settings=settings
                )
            weights = torch.cat([p.detach().flatten() for p in model.parameters()])
            outcomes[name] = (weights, [(s.loss, s.accuracy, s.images) for s in stats], validation)
        if context.is_main:
            initial = torch.cat([p.detach().flatten() for p in start.parameters()])
            (single, single_stats, single_val), (ddp, ddp_stats, ddp_val) = outcomes.values()
            report = {
                "weights_max_difference": float((single - ddp).abs().max()),
                "movement": float((single - initial).norm()),
                "stats": [single_stats, ddp_stats],
                "logits_max_difference": float(np.abs(single_val.logits - ddp_val.logits).max()),
            }
            output.write_text(json.dumps(report))


def _train_arguments(data: Path, *extra: str) -> list[str]:
    return [
        "-m", "core", "train", "--data", str(data), "--model", "cnn_fast", "--image-size", "32",
        "--subset", "16", "--batch-size", "16", "--no-augment", "--no-evaluate", "--json",
        *extra,
    ]  # fmt: skip


def _parameters(run_dir: str, names: list[str]) -> torch.Tensor:
    weights = load_weights(Path(run_dir))
    return torch.cat([weights[name].flatten().float() for name in names])


def test_two_processes_train_one_run_on_the_demo(demo_dataset_dir: Path, tmp_path: Path) -> None:
    """`torchrun --nproc-per-node 2 -m core train` against one process over the same global
    batches (no augmentation). Exact: one run folder, one history line per epoch, world size 2
    in config.json, validation counted once, status completed.

    The weights cannot be equal: cnn_fast's BatchNorm normalises each process's half batch by
    its own statistics (SyncBatchNorm works on GPUs only) and its dropout masks differ. Adam
    turns that noise into steps as large as the signal's (it divides by the gradient's size), so
    one epoch of the demo (4 steps) measured update directions with cosine 0.14 to one
    process's (dropout alone: 0.47; BatchNorm frozen, no dropout: equal, the test above), and
    0.002 for a run with another seed. So: the DDP update points the way of one process's
    update, much more than an unrelated run's; its weights are much nearer one process's than
    another seed's are; validation within two images. These bounds catch a run on other
    images or another start, not a wrong gradient average: the test above does (measured: with
    the DDP wrapper left out, its weights differed by 0.015, this test still passed).
    """
    ddp_root, single_root = tmp_path / "ddp", tmp_path / "single"
    arguments = _train_arguments(demo_dataset_dir, "--epochs", "1")
    ddp = _run(_torchrun(2, *arguments), ddp_root)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    single = _run([sys.executable, *arguments], single_root)
    other_seed = _run([sys.executable, *arguments, "--seed", "1"], single_root)
    assert single.returncode == 0 and other_seed.returncode == 0, single.stderr + other_seed.stderr
    ddp_result, single_result, other_result = (
        json.loads(result.stdout) for result in (ddp, single, other_seed)
    )

    runs = list_runs(ddp_root)
    assert len(runs) == 1 and [p.name for p in ddp_root.iterdir()] == [runs[0].run_id]
    run = runs[0]
    assert run.status == "completed" and not run.problems
    assert run.config.distributed is not None and run.config.distributed.world_size == 2
    assert run.config.distributed.backend == "gloo" and run.config.distributed.batch == "global"
    assert run.config.distributed.per_process_batch == 8.0
    assert [epoch.epoch for epoch in run.history] == [1]
    assert run.metrics.val.n == run.config.dataset.val_images == 12  # once, not per process
    assert sum(map(sum, run.metrics.val.confusion_matrix)) == 12
    assert ddp_result["status"] == "completed"

    torch.manual_seed(run.config.train.seed)  # fit()'s initialisation, rebuilt
    start, _ = build_model(run.config.model)
    names = [name for name, _ in start.named_parameters()]
    initial = torch.cat([p.detach().flatten() for _, p in start.named_parameters()])
    ddp_weights, single_weights, other_weights = (
        _parameters(result["run_dir"], names)
        for result in (ddp_result, single_result, other_result)
    )
    ddp_step, single_step = ddp_weights - initial, single_weights - initial
    cosine = float(ddp_step @ single_step / (ddp_step.norm() * single_step.norm()))
    assert cosine > 0.05, cosine  # unrelated directions of this size: about 0.002
    assert (ddp_weights - single_weights).norm() < 0.5 * (other_weights - single_weights).norm()
    assert abs(ddp_result["val_accuracy"] - single_result["val_accuracy"]) <= 2 / 12 + 1e-9


def _process_with(mark: str, rank: int) -> int | None:
    """The pid of the torchrun worker with this test's mark and RANK, from /proc."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            variables = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"{WORKER_MARK}={mark}".encode() in variables and f"RANK={rank}".encode() in variables:
            return int(entry.name)
    return None


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds workers in /proc")
def test_a_killed_process_ends_the_run_as_interrupted(
    demo_dataset_dir: Path, tmp_path: Path
) -> None:
    mark, checkpoints = uuid.uuid4().hex, tmp_path / "checkpoints"
    log = (tmp_path / "stderr.txt").open("w")  # a pipe left unread could fill and block
    launcher = subprocess.Popen(
        _torchrun(2, *_train_arguments(demo_dataset_dir, "--epochs", "500")),
        cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=log,
        env=_environment(checkpoints, **{WORKER_MARK: mark}),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and launcher.poll() is None:
            runs = list_runs(checkpoints) if checkpoints.exists() else []
            if runs and runs[0].history:
                break  # training is under way
            time.sleep(0.2)
        victim = _process_with(mark, 1)
        assert victim is not None and launcher.poll() is None, "training did not start"
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        launcher.wait(timeout=90)
        assert time.monotonic() - killed < 60  # torchrun's grace period is 30 s
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        log.close()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert launcher.returncode != 0
    (run,) = list_runs(checkpoints)
    # Rank 0 wrote the terminal status itself (lost peer, or torchrun's SIGTERM).
    assert run.stored_status.status == "interrupted", (run.stored_status, stderr[-2000:])
    assert run.stored_status.finished_at is not None and run.stored_status.message
    assert load_run(run.run_id, checkpoints).status == "interrupted"
    assert 1 <= len(run.history) < 500


def test_more_processes_than_a_batch_holds_is_one_line_and_writes_nothing(
    demo_dataset_dir: Path, tmp_path: Path
) -> None:
    arguments = [*_train_arguments(demo_dataset_dir, "--epochs", "1"), "--batch-size", "2"]
    result = _run(_torchrun(3, *arguments), tmp_path)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        "error: 3 training processes but only 2 images in a batch (the batch size is global): "
        "every process needs at least one; start fewer processes or use more images"
    ], result.stderr[-3000:]
    assert result.stdout == ""
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []  # no run, no staging folder


if __name__ == "__main__":  # under torchrun, by the exactness test
    _exactness_worker(Path(sys.argv[1]))
