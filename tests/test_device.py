"""The one compute policy: device, precision and memory format for every purpose."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from core import device
from core.data.training_data import prepare_training_data
from core.device import CPU_BF16_MODELS, ComputePolicy, compute_policy, detect_device
from core.models.registry import get_spec
from core.training.run_record import build_run_config, choose_step_settings
from tests.test_training import tiny_request


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch reports a usable GPU; nothing is ever allocated on it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Fake GPU")


def test_this_cpu_machine_trains_on_the_cpu_in_fp32_unless_amx() -> None:
    amx = detect_device().bf16_matrix_units
    for name in ("cnn_fast", "mobilenet_v2", "resnet18"):
        policy = compute_policy(name)
        assert policy.device == torch.device("cpu")
        assert policy.bf16 == (amx and name in CPU_BF16_MODELS)
        assert policy.channels_last


def test_evaluation_and_prediction_are_fp32_on_the_cpu() -> None:
    evaluation = compute_policy(purpose="evaluate")
    prediction = compute_policy("resnet18", purpose="predict")
    assert evaluation == ComputePolicy(torch.device("cpu"), bf16=False, channels_last=True)
    assert prediction == ComputePolicy(torch.device("cpu"), bf16=False, channels_last=False)
    assert evaluation.precision == "fp32"


def test_cpu_bf16_only_with_amx_and_only_for_the_listed_models() -> None:
    amx = device.DeviceInfo("cpu", "CPU", 2, bf16_matrix_units=True)
    avx2 = dataclasses.replace(amx, bf16_matrix_units=False)
    assert compute_policy("resnet50", device_info=amx).bf16
    assert not compute_policy("mobilenet_v2", device_info=amx).bf16
    assert not compute_policy("resnet50", device_info=avx2).bf16
    assert not compute_policy("resnet50", device_info=amx, purpose="evaluate").bf16


def test_a_gpu_trains_in_bf16_and_evaluates_in_fp32(fake_gpu: None) -> None:
    training = compute_policy("cnn_fast")
    assert training == ComputePolicy(torch.device("cuda"), bf16=True, channels_last=True)
    assert training.precision == "bf16"
    evaluation = compute_policy(purpose="evaluate")
    assert evaluation == ComputePolicy(torch.device("cuda"), bf16=False, channels_last=True)
    prediction = compute_policy("cnn_fast", purpose="predict")
    assert prediction.device.type == "cuda" and not prediction.bf16
    assert detect_device().describe() == "CUDA GPU: Fake GPU"


def test_explicit_choices_win(fake_gpu: None) -> None:
    policy = compute_policy("cnn_fast", precision="fp32", channels_last=False)
    assert policy == ComputePolicy(torch.device("cuda"), bf16=False, channels_last=False)
    assert compute_policy(precision="bf16", purpose="evaluate").bf16


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="precision"):
        compute_policy("cnn_fast", precision="fp16")
    with pytest.raises(ValueError, match="purpose"):
        compute_policy("cnn_fast", purpose="serve")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):
        compute_policy(purpose="train")


def test_training_settings_and_config_json_follow_the_policy(
    fake_gpu: None, demo_dataset_dir: Path
) -> None:
    request = tiny_request(demo_dataset_dir)
    data = prepare_training_data(request.data)
    request = dataclasses.replace(
        request, model=dataclasses.replace(request.model, num_classes=len(data.classes))
    )
    spec = get_spec(request.model.name)
    settings = choose_step_settings(spec, request, data)
    assert settings.device == torch.device("cuda") and settings.bf16 and settings.channels_last
    config = build_run_config(request, data, spec, None, settings)
    assert config["device"] == {
        "kind": "cuda",
        "name": "CUDA GPU: Fake GPU",
        "precision": "bf16",
        "channels_last": True,
    }
