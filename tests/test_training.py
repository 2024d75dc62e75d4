"""fit() on the demo data: learning, determinism, cancel, crash safety, checkpoint round trip."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from core.config import ModelConfig
from core.data.training_data import prepare_training_data
from core.events import Events
from core.models.build import build_model, split_frozen
from core.models.registry import get_spec
from core.runs.registry import list_runs, load_run, load_weights, mark_interrupted_runs
from core.training.fit import fit
from core.training.loops import StepSettings, evaluate
from core.training.request import TrainingRequest, make_request

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def tiny_request(root: Path, **overrides: object) -> TrainingRequest:
    """A few seconds of cnn_fast on 64 px demo images."""
    options: dict[str, object] = {
        "data_root": root,
        "model": "cnn_fast",
        "epochs": 3,
        "image_size": 64,
        "batch_size": 32,
        "lr": 3e-3,
        "subset_per_class": 40,
        "patience": 0,
    }
    options.update(overrides)
    return make_request(**options)  # type: ignore[arg-type]


def test_fit_lowers_the_loss_and_stores_a_complete_run(demo_dataset_dir: Path) -> None:
    epochs_seen: list[dict] = []
    events = Events()
    events.add_callback("epoch", epochs_seen.append)
    result = fit(tiny_request(demo_dataset_dir, epochs=4), events=events)
    assert result.status == "completed"
    assert [record["epoch"] for record in epochs_seen] == [1, 2, 3, 4]
    assert epochs_seen[-1]["train_loss"] < epochs_seen[0]["train_loss"]
    run = load_run(result.run_id)
    assert run.status == "completed" and not run.problems
    assert run.has_weights and len(run.history) == 4
    assert run.metrics.best_epoch == result.best_epoch
    assert run.metrics.val.accuracy == pytest.approx(result.val_accuracy)
    config = run.config
    assert config.classes == ("glioma", "meningioma", "notumor", "pituitary")
    assert config.model.num_classes == 4
    assert config.weights_source.kind == "random-init" and not config.weights_source.pretrained
    assert Path(config.dataset.split_manifest).is_file()
    assert config.dataset.synthetic is True
    assert {"torch", "torchvision", "python"} <= set(config.versions)


def test_same_config_and_seed_give_the_same_history(demo_dataset_dir: Path) -> None:
    request = tiny_request(demo_dataset_dir, epochs=2)
    first = load_run(fit(request).run_id).history
    second = load_run(fit(request).run_id).history
    for one, other in zip(first, second, strict=True):
        for key in ("train_loss", "train_accuracy", "val_loss", "val_accuracy"):
            assert getattr(one, key) == getattr(other, key), key


def test_checkpoint_round_trip_gives_identical_logits(demo_dataset_dir: Path) -> None:
    result = fit(tiny_request(demo_dataset_dir, epochs=2))
    run = load_run(result.run_id)
    model_config = run.config.model
    model, source = build_model(model_config, state_dict=load_weights(run))
    assert source is None
    preprocessing = run.config.preprocessing
    data = prepare_training_data(tiny_request(demo_dataset_dir).data)
    images, labels = data.subset("val")
    settings = StepSettings(preprocessing, torch.device("cpu"))
    again = evaluate(model, images, labels, loss_function=nn.CrossEntropyLoss(), settings=settings)
    assert again.loss == pytest.approx(run.metrics.val.loss, abs=1e-6)
    assert again.accuracy == pytest.approx(run.metrics.val.accuracy)
    reloaded, _ = build_model(model_config, state_dict=load_weights(run))
    reloaded.eval()
    x = settings.prepare(images[:4])
    torch.testing.assert_close(model(x), reloaded(x), rtol=0, atol=0)


def test_cancel_stops_within_a_batch_and_leaves_a_cancelled_run(demo_dataset_dir: Path) -> None:
    cancel = threading.Event()
    batches: list[int] = []
    events = Events()

    def count(event: object) -> None:
        batches.append(1)
        if len(batches) == 5:
            cancel.set()

    events.add_callback("batch", count)
    result = fit(tiny_request(demo_dataset_dir, epochs=20), events=events, cancel=cancel)
    assert result.status == "cancelled"
    assert len(batches) == 5  # not one batch more
    run = load_run(result.run_id)
    assert run.status == "cancelled"
    assert run.stored_status.finished_at is not None
    assert not run.damaged


CRASHING_RUN = """
import sys
from pathlib import Path
from core.training.request import make_request
from core.training.fit import fit
from core.events import Events

events = Events()
events.add_callback("epoch", lambda record: print("EPOCH", record["epoch"], flush=True))
request = make_request(data_root=Path(sys.argv[1]), model="cnn_fast", epochs=200, image_size=64,
                       batch_size=32, subset_per_class=40, patience=0)
fit(request, events=events)
"""


def test_a_killed_training_process_leaves_an_interrupted_run(demo_dataset_dir: Path) -> None:
    root = Path(os.environ["BTW_CHECKPOINTS"])
    before = {run.run_id for run in list_runs(root)}
    process = subprocess.Popen(
        [sys.executable, "-c", CRASHING_RUN, str(demo_dataset_dir)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        epochs = 0
        deadline = time.monotonic() + 120
        while epochs < 2 and time.monotonic() < deadline:
            line = process.stdout.readline()
            epochs += line.startswith("EPOCH")
        assert epochs == 2
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    (new,) = [run for run in list_runs(root) if run.run_id not in before]
    assert new.status == "interrupted"
    assert len(new.history) >= 2
    assert not any("unreadable" in problem for problem in new.problems)
    assert json.loads((new.path / "config.json").read_text())["model"]["name"] == "cnn_fast"
    assert new.run_id in mark_interrupted_runs(root)
    assert load_run(new.run_id, root).stored_status.status == "interrupted"


def test_out_of_memory_halves_the_batch_and_tells_the_user(
    demo_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import core.training.fit as trainer_module

    real_epoch = trainer_module.train_one_epoch
    sizes: list[int] = []

    def epoch_that_needs_small_batches(*args: object, batch_size: int, **kwargs: object):
        sizes.append(batch_size)
        if batch_size > 16:
            raise torch.OutOfMemoryError("simulated: CUDA out of memory")
        return real_epoch(*args, batch_size=batch_size, **kwargs)

    monkeypatch.setattr(trainer_module, "train_one_epoch", epoch_that_needs_small_batches)
    messages: list[str] = []
    events = Events()
    events.add_callback("message", messages.append)
    result = fit(tiny_request(demo_dataset_dir, epochs=1, batch_size=64), events=events)
    assert result.status == "completed"
    assert sizes == [64, 32, 16]
    assert load_run(result.run_id).metrics.batch_size == 16
    assert any("batch size halved to 16" in message for message in messages)


def test_frozen_layer_cache_trains_only_the_top_and_matches_the_full_model(
    demo_dataset_dir: Path,
) -> None:
    from core.evaluation.evaluate import evaluate_run
    from core.models import pretrained

    if not pretrained.weights_available("mobilenet_v2"):
        pytest.skip("MobileNetV2 ImageNet weights are not installed")
    request = tiny_request(
        demo_dataset_dir, model="mobilenet_v2", use_pretrained=True, freeze="top-2",
        epochs=3, image_size=64, frozen_views=2,
    )  # fmt: skip
    events = Events()
    messages: list[str] = []
    events.add_callback("message", messages.append)
    result = fit(request, events=events)
    assert result.status == "completed"
    assert any("cached features" in message for message in messages)
    info = load_run(result.run_id)
    trained = load_weights(info)
    original, _ = build_model(
        ModelConfig("mobilenet_v2", num_classes=4, in_channels=3, pretrained=True)
    )
    spec = get_spec("mobilenet_v2")
    frozen, _ = split_frozen(original, spec, "top-2")
    assert frozen is not None and len(frozen) == 17
    frozen_names = {f"features.{index}." for index in range(17)}  # 19 blocks, top 2 train
    for name, value in original.state_dict().items():
        if any(name.startswith(prefix) for prefix in frozen_names):
            assert torch.equal(trained[name], value), name  # frozen blocks never changed
    top = "features.18.0.weight"
    assert not torch.equal(trained[top], original.state_dict()[top])  # the top did train
    # The cached-feature validation equals the full model's on the stored weights.
    recomputed = evaluate_run(result.run_id, bootstrap_samples=10).splits["val"].accuracy
    assert recomputed == pytest.approx(result.val_accuracy, abs=1e-6)


@pytest.mark.parametrize("steps", [1, 2, 3, 9, 10, 50])
def test_every_schedule_survives_any_number_of_steps(steps: int) -> None:
    from core.config import TrainConfig
    from core.training.optimization import make_schedule

    for schedule in ("cosine", "onecycle", "constant"):
        parameter = nn.Parameter(torch.zeros(1))
        optimizer = torch.optim.AdamW([parameter], lr=1e-3)
        scheduler = make_schedule(optimizer, TrainConfig(epochs=1, schedule=schedule), steps)
        rates = []
        for _ in range(steps):
            optimizer.step()
            scheduler.step()
            rates.append(optimizer.param_groups[0]["lr"])
        assert all(0 < rate <= 1e-3 * 1.0001 for rate in rates), (schedule, rates)


def test_estimate_of_a_cached_run_counts_the_one_time_caching(demo_dataset_dir: Path) -> None:
    from core.models import pretrained
    from core.training.estimate import estimate_epoch

    if not pretrained.weights_available("mobilenet_v2"):
        pytest.skip("MobileNetV2 ImageNet weights are not installed")
    common = {"model": "mobilenet_v2", "use_pretrained": True, "image_size": 64}
    cached = estimate_epoch(tiny_request(demo_dataset_dir, freeze="top-2", **common))
    assert cached.cache_seconds > 0
    assert cached.total_seconds(3) == pytest.approx(cached.cache_seconds + 3 * cached.epoch_seconds)
    uncached = estimate_epoch(
        tiny_request(demo_dataset_dir, freeze="top-2", cache_frozen=False, **common)
    )
    assert uncached.cache_seconds == 0
    # Training only the top two blocks on cached features beats running the whole network.
    assert cached.train_images_per_second > uncached.train_images_per_second
