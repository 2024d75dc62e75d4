"""Inside the model: stages and receptive fields from the registry for every model, filters,
the embedding and probes stored and reused, and the saliency sanity checks against a planted
explanation that ignores the model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from core.cli.main import main as cli_main
from core.config import ModelConfig
from core.inference.predictor import Predictor
from core.inspection import probes
from core.inspection.layers import filter_grid, receptive_fields, stage_names, stage_outputs
from core.inspection.render import GAP, TILE, map_tiles, wrap_tiles
from core.inspection.sanity import (
    RANDOMISATION_LIMIT,
    cam_function,
    edge_map,
    head_mask,
    inside_share,
    randomisation_test,
)
from core.inspection.store import preferred_method, write_section
from core.models.build import build_model, cam_layer
from core.models.registry import list_models
from core.training.fit import fit
from tests.test_training import tiny_request


@pytest.mark.parametrize("spec", list_models(), ids=lambda spec: spec.name)
def test_every_model_has_named_stages_with_measured_receptive_fields(spec) -> None:
    torch.manual_seed(0)
    model, _ = build_model(ModelConfig(spec.name, 4, in_channels=spec.default_channels))
    model.eval()
    size = 64
    outputs = stage_outputs(model, spec.name, torch.rand(1, spec.default_channels, size, size))
    infos = receptive_fields(model, spec.name, spec.default_channels, size)
    names = stage_names(model, spec.name)
    assert len(outputs) == len(infos) == len(names) >= 3
    for output, info in zip(outputs, infos, strict=True):
        assert output.shape[1] == info.channels and output.shape[2] == info.height
    strides = [info.stride for info in infos]
    fields = [info.receptive_field for info in infos]
    assert strides == sorted(strides)
    assert 1 <= fields[0] < size and max(fields) <= size
    if not any("SqueezeExcitation" in type(m).__name__ for m in model.modules()):
        assert fields == sorted(fields)  # deeper sees more (global pooling inside SE aside)
    grid = filter_grid(model)
    assert grid.shape[0] == spec.default_channels
    assert np.nanmin(grid) >= 0 and np.nanmax(grid) <= 1


@pytest.fixture(scope="module")
def trained(demo_dataset_dir: Path) -> str:
    """A cnn_fast that has learned the demo classes (well above chance)."""
    request = tiny_request(demo_dataset_dir, epochs=20, subset_per_class=None)
    result = fit(request)
    assert result.val_accuracy is not None and result.val_accuracy > 0.5  # chance: 0.25
    return result.run_id


def test_probes_rise_with_depth_and_are_stored(
    trained: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = probes.layer_probes(trained)
    stages = result["stages"]
    assert [stage["index"] for stage in stages] == list(range(1, len(stages) + 1))
    assert stages[-1]["knn_accuracy"] > result["chance"] + 0.15
    assert max(s["linear_accuracy"] for s in stages) >= stages[0]["linear_accuracy"]
    monkeypatch.setattr(probes, "stage_features", lambda *a, **k: pytest.fail("recomputed"))
    assert probes.layer_probes(trained) == result  # reused from inspection.json


def test_the_embedding_is_projected_once_and_reused(
    trained: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    frame = probes.embedding(trained, "val")
    assert {"path", "label", "predicted", "correct", "pca_x", "tsne_y"} <= set(frame.columns)
    assert frame[["pca_x", "pca_y", "tsne_x", "tsne_y"]].notna().all().all()
    monkeypatch.setattr(probes, "stage_features", lambda *a, **k: pytest.fail("recomputed"))
    again = probes.embedding(trained, "val")
    pd.testing.assert_frame_equal(
        again[["path", "tsne_x"]], frame[["path", "tsne_x"]], check_dtype=False
    )
    with pytest.raises(ValueError, match="split 'train'"):
        probes.embedding(trained, "train")


def test_randomisation_flags_an_edge_map_and_passes_a_trained_gradcam(trained: str) -> None:
    predictor = Predictor.from_run(trained)
    model = predictor.model.float().cpu().eval()
    images = torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        targets = model(images).argmax(1).tolist()
    inputs = [images[i : i + 1] for i in range(4)]
    planted = [edge_map(model, x, 0) for x in inputs]
    steps, passes = randomisation_test(model, "cnn_fast", inputs, targets, edge_map, planted)
    assert not passes and all(step["spearman"] > 0.99 for step in steps)  # it ignores weights
    gradcam = cam_function("gradcam", lambda m: cam_layer(m, predictor.spec))
    trained_maps = [gradcam(model, x, targets[i]) for i, x in enumerate(inputs)]
    steps, passes = randomisation_test(model, "cnn_fast", inputs, targets, gradcam, trained_maps)
    assert passes and steps[-1]["spearman"] <= RANDOMISATION_LIMIT


def test_the_head_mask_holds_a_bright_disc_and_counts_map_mass() -> None:
    image = np.zeros((64, 64), dtype=np.uint8)
    yy, xx = np.mgrid[:64, :64]
    disc = (yy - 32) ** 2 + (xx - 32) ** 2 < 20**2
    image[disc] = 180
    image[30:34, 30:34] = 20  # a dark lesion inside: a hole the mask must fill
    mask = head_mask(image)
    assert mask[32, 32] and not mask[2, 2] and abs(int(mask.sum()) - int(disc.sum())) < 40
    outside = np.zeros((64, 64), dtype=np.float32)
    outside[:8, :8] = 1.0
    assert inside_share(outside, mask) == 0.0 and inside_share(disc.astype(np.float32), mask) == 1.0


def test_inspect_and_sanity_from_the_command_line(
    trained: str, demo_dataset_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = next((demo_dataset_dir / "Testing" / "glioma").iterdir())
    out = tmp_path / "inspect"
    arguments = ["inspect", trained, "--image", str(image), "--probes", "--out", str(out)]
    assert cli_main([*arguments, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (
        len(summary["stages"]) == len(summary["feature_maps"]) == len(summary["probes"]["stages"])
    )
    assert {path.name for path in out.iterdir()} == {
        "filters.png",
        "feature-maps.png",
        "probes.csv",
    }
    assert cv2.imread(str(out / "feature-maps.png")) is not None
    assert cli_main(["sanity", trained, "--methods", "gradcam", "eigencam", "--images", "3"]) == 0
    printed = capsys.readouterr().out
    assert "gradcam" in printed and "eigencam" in printed and "ROAD" in printed
    for bad, message in (
        (["sanity", trained, "--images", "0"], "at least 1 image"),
        (["sanity", trained, "--methods", "sobel"], "CAM method 'sobel'"),
        (["inspect", trained, "--embedding", "train"], "split 'train'"),
        (["inspect", trained, "--image", str(tmp_path / "missing.png")], "missing.png"),
    ):
        assert cli_main(bad) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("error: ") and message in error and len(error.splitlines()) == 1


def test_the_preferred_method_follows_the_stored_sanity_checks(tmp_path: Path) -> None:
    assert preferred_method(tmp_path, "layercam") == "layercam"  # nothing measured
    results = {
        "gradcam": {"passes_randomisation": True, "mostly_inside_head": True, "road": 0.10},
        "hirescam": {"passes_randomisation": True, "mostly_inside_head": True, "road": 0.20},
        "eigencam": {"passes_randomisation": False, "mostly_inside_head": True, "road": 0.50},
        "layercam": {"passes_randomisation": True, "mostly_inside_head": False, "road": 0.40},
        "occlusion": {"passes_randomisation": True, "mostly_inside_head": True, "road": 0.90},
    }
    write_section(tmp_path, "sanity", "8", {"dataset": "x", "images": 8, "results": results})
    assert preferred_method(tmp_path, "layercam") == "hirescam"  # occlusion: the reference only
    failing = {name: {**scores, "passes_randomisation": False} for name, scores in results.items()}
    write_section(tmp_path, "sanity", "12", {"dataset": "x", "images": 12, "results": failing})
    assert preferred_method(tmp_path, "layercam") == "layercam"  # the larger sample counts


def test_the_classify_note_says_when_a_method_fails(tmp_path: Path) -> None:
    from core.ui.classify import method_sanity_note

    assert method_sanity_note(tmp_path, "gradcam") is None  # nothing measured
    results = {
        "gradcam": {"passes_randomisation": True, "mostly_inside_head": True, "road": 0.1,
                    "inside_head": 0.8},
        "layercam": {"passes_randomisation": False, "mostly_inside_head": True, "road": 0.05,
                     "inside_head": 0.7},
    }  # fmt: skip
    stored = {"dataset": "x", "images": 12, "random_road": -0.02, "results": results}
    write_section(tmp_path, "sanity", "12", stored)
    passing, trusted = method_sanity_note(tmp_path, "gradcam")
    assert trusted and "passes the randomisation test; ROAD +0.100 against -0.020" in passing
    failing, trusted = method_sanity_note(tmp_path, "layercam")
    assert not trusted and "FAILS the randomisation test" in failing and "70% of the map" in failing
    assert method_sanity_note(tmp_path, "hirescam") is None


def test_a_long_strip_of_maps_wraps_into_rows_of_whole_maps() -> None:
    output = torch.arange(20 * 4 * 4, dtype=torch.float32).reshape(1, 20, 4, 4)
    strip = map_tiles(output, list(range(20)))
    assert strip.shape == (TILE, 20 * TILE + 19 * GAP, 3)
    wrapped = wrap_tiles(strip, per_row=8)
    rows = 3  # 8 + 8 + 4 maps, a white gap between rows
    assert wrapped.shape[0] == rows * TILE + (rows - 1) * 4
    assert wrapped.shape[1] == 8 * (TILE + GAP)  # the widest row, with its trailing gap
    assert (wrapped[:TILE, : 8 * (TILE + GAP)] == strip[:, : 8 * (TILE + GAP)]).all()
    assert (wrapped[-TILE:, 4 * (TILE + GAP) :] == 255).all()  # the short last row padded white
