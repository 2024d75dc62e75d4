"""Predictor from a run folder, and `python -m core predict`."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

from core.inference.predictor import Predictor
from core.runs.registry import load_run
from core.training.fit import fit
from tests.test_cli import run_cli
from tests.test_training import tiny_request


@pytest.fixture(scope="module")
def trained_run(demo_dataset_dir: Path) -> str:
    return fit(tiny_request(demo_dataset_dir, epochs=2)).run_id


@pytest.fixture(scope="module")
def demo_files(demo_dataset_dir: Path) -> list[Path]:
    return sorted((demo_dataset_dir / "Testing").rglob("*.png"))[:6]


def test_probabilities_sum_to_one_for_any_size(trained_run: str) -> None:
    predictor = Predictor.from_run(trained_run)
    generator = np.random.default_rng(0)
    images = [
        generator.integers(0, 256, (300, 180), dtype=np.uint8),
        generator.integers(0, 256, (40, 64, 3), dtype=np.uint8),
    ]
    probabilities = predictor.probabilities(images)
    assert probabilities.shape == (2, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_predict_file_reads_pngs_and_dicom(trained_run: str, demo_files: list[Path]) -> None:
    predictor = Predictor.from_run(trained_run)
    prediction = predictor.predict_file(demo_files[0])
    assert prediction.predicted in predictor.classes
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    dicom = predictor.predict_file(Path(get_testdata_file("MR_small.dcm")))
    assert dicom.predicted in predictor.classes


def test_concurrent_predictions_agree_with_sequential_ones(
    trained_run: str, demo_files: list[Path]
) -> None:
    predictor = Predictor.from_run(trained_run)
    sequential = [predictor.predict_file(path).probabilities for path in demo_files * 3]
    with ThreadPoolExecutor(max_workers=2) as pool:
        concurrent = list(
            pool.map(lambda p: predictor.predict_file(p).probabilities, demo_files * 3)
        )
    for one, other in zip(sequential, concurrent, strict=True):
        assert one == pytest.approx(other, abs=1e-6)


def test_cli_predict_json_with_good_and_bad_files(
    trained_run: str, demo_files: list[Path], tmp_path: Path
) -> None:
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "cut.png"
    truncated.write_bytes(demo_files[0].read_bytes()[:200])
    result = run_cli("predict", trained_run, str(demo_files[0]), str(text), str(empty),
                     str(truncated), "--json")  # fmt: skip
    assert result.returncode == 2
    entries = json.loads(result.stdout)
    assert [entry["file"] for entry in entries] == [
        str(demo_files[0]),
        str(text),
        str(empty),
        str(truncated),
    ]
    good = entries[0]
    assert good["error"] is None and good["cam_path"] is None
    assert sum(good["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert good["predicted"] == max(good["probabilities"], key=good["probabilities"].get)
    assert all(entry["error"] and entry["predicted"] is None for entry in entries[1:])
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("error: ") for line in errors)
    assert "Traceback" not in result.stderr


def test_a_run_without_weights_is_refused_in_one_line(trained_run: str, tmp_path: Path) -> None:
    copy = tmp_path / "broken-run"
    shutil.copytree(load_run(trained_run).path, copy)
    (copy / "model.safetensors").unlink()
    result = run_cli("predict", str(copy), "whatever.png")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "safetensors" in lines[0]


def test_cli_cam_out_writes_an_overlay_of_the_input_size(
    trained_run: str, demo_files: list[Path], tmp_path: Path
) -> None:
    from PIL import Image

    result = run_cli("predict", trained_run, str(demo_files[1]), "--cam", "gradcam++",
                     "--cam-out", str(tmp_path / "cams"), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)
    overlay_file = Path(entry["cam_path"])
    assert overlay_file.is_file() and overlay_file.parent == tmp_path / "cams"
    with Image.open(overlay_file) as drawn, Image.open(demo_files[1]) as original:
        assert drawn.size == original.size and drawn.mode == "RGB"
    refused = run_cli("predict", trained_run, str(demo_files[1]), "--cam", "magic")
    assert refused.returncode == 2 and "--cam must be one of" in refused.stderr


def test_cli_predicts_every_frame_of_a_multiframe_dicom(trained_run: str, tmp_path: Path) -> None:
    from tests.test_imaging import multiframe_dicom

    stack = tmp_path / "stack.dcm"
    stack.write_bytes(multiframe_dicom(3))
    result = run_cli("predict", trained_run, str(stack), "--cam-out", str(tmp_path / "cams"),
                     "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    frames = [(entry["file"], entry["frame"]) for entry in entries]
    assert frames == [(str(stack), n) for n in (1, 2, 3)]
    assert all(abs(sum(entry["probabilities"].values()) - 1) < 1e-5 for entry in entries)
    cams = sorted(path.name for path in (tmp_path / "cams").iterdir())
    assert cams == [f"stack_frame{n}_hirescam.png" for n in (1, 2, 3)]  # the default method
    plain = run_cli("predict", trained_run, str(stack))
    assert [line.split(":")[0] for line in plain.stdout.splitlines() if "|" in line] == [
        f"{stack} [{n}/3]" for n in (1, 2, 3)
    ]


def test_cli_predicts_every_image_in_a_folder(trained_run: str, demo_dataset_dir: Path) -> None:
    folder = demo_dataset_dir / "Testing" / "notumor"
    result = run_cli("predict", trained_run, str(folder), "--json")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    expected = sorted(
        str(path) for path in folder.iterdir() if path.suffix.lower() in {".png", ".jpg"}
    )
    assert [entry["file"] for entry in entries] == expected
    assert all(entry["error"] is None for entry in entries)
