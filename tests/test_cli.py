"""`python -m core dataset|audit` end to end, on the demo, on bad input and on the real dataset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core import paths

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def run_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh process with the test session's cache folder."""
    return subprocess.run(
        [sys.executable, "-m", "core", *arguments],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, paths.CACHE_DIR_ENV: os.environ[paths.CACHE_DIR_ENV]},
    )


def test_dataset_json_on_the_demo(demo_dataset_dir: Path) -> None:
    result = run_cli("dataset", str(demo_dataset_dir), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["layout"] == "kaggle"
    assert summary["synthetic"] is True
    assert summary["classes"] == ["glioma", "meningioma", "notumor", "pituitary"]
    assert summary["counts"]["train"]["glioma"] == 60
    assert summary["counts"]["test"]["pituitary"] == 15
    assert any(item["path"] == "SYNTHETIC_DEMO.json" for item in summary["skipped"])


def test_audit_json_on_the_demo_finds_the_planted_leaks(demo_dataset_dir: Path) -> None:
    result = run_cli("audit", str(demo_dataset_dir), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    marker = json.loads((demo_dataset_dir / "SYNTHETIC_DEMO.json").read_text())
    planted = marker["planted"]
    assert summary["exact_cross_split"] == len(planted["exact_cross_split"])
    assert summary["near_cross_split"] == len(planted["near_cross_split"])
    assert summary["conflicting_labels"] == len(planted["conflicting_labels"])
    assert summary["duplicate_free_test"] == summary["test_images"] - 6
    assert Path(summary["duplicate_free_manifest"]).is_file()


@pytest.mark.parametrize("command", ["dataset", "audit"])
def test_bad_folders_exit_non_zero_with_one_line(tmp_path: Path, command: str) -> None:
    (tmp_path / "only_class").mkdir()
    (tmp_path / "only_class" / "x.png").write_bytes(b"not really a png")
    for folder in (tmp_path / "missing", tmp_path, tmp_path / "only_class"):
        result = run_cli(command, str(folder), "--json")
        assert result.returncode == 2
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.real_data
def test_dataset_json_on_the_real_dataset(real_dataset_dir: Path) -> None:
    result = run_cli("dataset", str(real_dataset_dir), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["synthetic"] is False
    assert summary["counts"] == {
        "train": {"glioma": 1321, "meningioma": 1339, "notumor": 1591, "pituitary": 1457},
        "test": {"glioma": 300, "meningioma": 306, "notumor": 405, "pituitary": 300},
    }
    assert [item["path"] for item in summary["skipped"]] == ["README.md"]


@pytest.mark.real_data
@pytest.mark.slow
def test_audit_json_on_the_real_dataset(real_dataset_dir: Path) -> None:
    result = run_cli("audit", str(real_dataset_dir), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["test_images"] == 1311
    total = (
        summary["exact_cross_split"] + summary["near_cross_split"] + summary["duplicate_free_test"]
    )
    assert total == 1311
    # Measured 2026-11-27: 216 exact, 270 near, 825 duplicate-free at threshold 0.05.
    assert 150 <= summary["exact_cross_split"] <= 300
    assert 150 <= summary["near_cross_split"] <= 400
    assert 700 <= summary["duplicate_free_test"] <= 950
    assert summary["threshold"] == 0.05
    assert "Pearson" in summary["method"]
    assert isinstance(summary["conflicting_labels"], int)


def test_models_json_lists_the_registry_with_weight_availability() -> None:
    result = run_cli("models", "--json")
    assert result.returncode == 0, result.stderr
    listing = {entry["name"]: entry for entry in json.loads(result.stdout)}
    assert {"cnn_classic", "cnn_fast", "mobilenet_v2", "resnet18", "efficientnet_b0"} <= set(
        listing
    )
    assert listing["mobilenet_v2"]["imagenet_weights_available"] is True  # the offline package
    assert listing["cnn_fast"]["supports_pretrained"] is False
    assert all(entry["parameters"] > 10_000 for entry in listing.values())


def test_train_json_on_the_demo(demo_dataset_dir: Path) -> None:
    result = run_cli(
        "train", "--data", str(demo_dataset_dir), "--model", "cnn_fast", "--epochs", "2",
        "--image-size", "64", "--subset", "20", "--augment", "flip", "intensity", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    augment = json.loads(Path(summary["run_dir"], "config.json").read_text())["train"]["augment"]
    assert augment["flip"] and augment["brightness"] > 0 and augment["rotate_degrees"] == 0
    for key in ("run_id", "run_dir", "status", "epochs", "train_seconds", "val_accuracy",
                "val_loss", "weights_source"):  # fmt: skip
        assert key in summary
    assert summary["status"] == "completed" and summary["epochs"] == 2
    assert Path(summary["run_dir"], "model.safetensors").is_file()
    assert "epoch 2:" in result.stderr  # progress went to stderr, JSON alone to stdout


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--model", "no_such_model"], "unknown model"),
        (["--model", "cnn_fast", "--pretrained"], "no pretrained weights"),
        (["--model", "resnet18", "--pretrained"], "no ImageNet weights"),
        (["--model", "mobilenet_v2", "--pretrained", "--freeze", "sideways"], "freeze policy"),
        (["--model", "mobilenet_v2", "--backbone-lr-scale", "2"], "learning-rate scale"),
    ],
)
def test_train_refuses_bad_options_in_one_line(
    demo_dataset_dir: Path, arguments: list[str], message: str
) -> None:
    result = run_cli("train", "--data", str(demo_dataset_dir), "--epochs", "1", *arguments)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


@pytest.mark.real_data
@pytest.mark.slow
def test_train_on_the_real_dataset_smoke(real_dataset_dir: Path) -> None:
    result = run_cli(
        "train", "--data", str(real_dataset_dir), "--model", "mobilenet_v2", "--pretrained",
        "--freeze", "head", "--epochs", "3", "--image-size", "96", "--subset", "40", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed"
    assert "offline" in summary["weights_source"] or "cache" in summary["weights_source"]
    # Pretrained features separate the classes at once (chance is 0.25); with the frozen
    # backbone cached, three epochs of the head take about 2 seconds.
    assert summary["val_accuracy"] > 0.45
    # Training ends with the evaluation on the whole official and duplicate-free test splits.
    test, duplicate_free = (
        summary["evaluation"]["test"],
        summary["evaluation"]["duplicate_free_test"],
    )
    assert (test["n"], duplicate_free["n"]) == (1311, 825)
    assert test["accuracy_ci"][0] <= test["accuracy"] <= test["accuracy_ci"][1]


def test_building_the_command_line_imports_no_heavy_library() -> None:
    # Each `python -m core` builds every command's parser first: a module-level import of torch
    # or onnx in one command's registration slowed every command (the export command did, by 9 s).
    heavy = ("torch", "onnx", "onnxruntime", "streamlit")
    code = (
        "import sys, core.cli.main as cli; cli.build_parser(); "
        f"print(sorted(m for m in {heavy!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, check=True
    )
    assert result.stdout.strip() == "[]"
