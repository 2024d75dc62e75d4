"""The duplicate / leakage audit on planted exact and near-duplicates."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from core.data import audit
from core.data.index import Dataset, open_dataset
from core.data.synthetic import DEMO_CLASSES, render_slice


def save(path: Path, pixels: np.ndarray, *, jpeg_quality: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if jpeg_quality is None:
        Image.fromarray(pixels).save(path.with_suffix(".png"))
    else:
        Image.fromarray(pixels).save(path.with_suffix(".jpg"), quality=jpeg_quality)


def shifted(pixels: np.ndarray, dx: int, dy: int) -> np.ndarray:
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(pixels, matrix, pixels.shape[::-1], borderValue=0)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dataset, dict[str, str]]:
    """12 distinct slices per class in training; test holds distinct slices plus planted copies."""
    root = tmp_path_factory.mktemp("planted")
    generator = np.random.default_rng(42)
    training: dict[str, list[np.ndarray]] = {}
    for label in DEMO_CLASSES:
        training[label] = [render_slice(label, generator, 160) for _ in range(12)]
        for number, pixels in enumerate(training[label]):
            save(root / "Training" / label / f"{label}_{number:02d}", pixels)
        for number in range(3):
            save(root / "Testing" / label / f"fresh_{number}", render_slice(label, generator, 160))
    source = training["glioma"]
    save(root / "Testing" / "glioma" / "exact_copy", source[0])
    save(root / "Testing" / "glioma" / "shifted_jpeg", shifted(source[1], 4, -3), jpeg_quality=80)
    brighter = np.clip(source[2].astype(np.float32) * 1.2 + 10, 0, 255).astype(np.uint8)
    save(root / "Testing" / "glioma" / "rewindowed", brighter)
    larger = cv2.resize(source[3], (224, 224), interpolation=cv2.INTER_CUBIC)
    save(root / "Testing" / "glioma" / "rescaled", larger, jpeg_quality=90)
    save(root / "Training" / "meningioma" / "mislabelled_copy", training["pituitary"][5])
    names = {
        "exact": "Testing/glioma/exact_copy.png",
        "shifted": "Testing/glioma/shifted_jpeg.jpg",
        "rewindowed": "Testing/glioma/rewindowed.png",
        "rescaled": "Testing/glioma/rescaled.jpg",
    }
    return open_dataset(root), names


def test_planted_copies_are_found_and_fresh_slices_are_not(planted) -> None:
    dataset, names = planted
    report = audit.run_audit(dataset)
    leakage = report.test_leakage.set_index("path")["leakage"]
    assert leakage[names["exact"]] == "exact"
    for kind in ("shifted", "rewindowed", "rescaled"):
        assert leakage[names[kind]] == "near", kind
    fresh = leakage[leakage.index.str.contains("fresh_")]
    assert (fresh == "none").all(), fresh[fresh != "none"]
    assert set(report.duplicate_free_test["path"]) == set(fresh.index)


def test_conflicting_labels_and_summary_counts(planted) -> None:
    dataset, _ = planted
    report = audit.run_audit(dataset)
    summary = audit.summarize(dataset, report)
    assert summary["exact_cross_split"] == 1
    assert summary["near_cross_split"] == 3
    assert summary["duplicate_free_test"] == 12
    assert summary["test_images"] == 16
    assert summary["conflicting_labels"] == 1
    conflict = report.pairs[report.pairs["conflicting_labels"]].iloc[0]
    assert {conflict["a_label"], conflict["b_label"]} == {"meningioma", "pituitary"}
    assert conflict["kind"] == "exact" and conflict["scope"] == "within split"


def test_threshold_zero_keeps_only_exact_pairs(planted) -> None:
    dataset, names = planted
    report = audit.build_report(dataset, audit.load_candidates(dataset), threshold=0.0)
    leakage = report.test_leakage.set_index("path")["leakage"]
    assert leakage[names["exact"]] == "exact"
    assert leakage[names["shifted"]] == "none"
    assert set(report.pairs["kind"]) == {"exact"}


def test_duplicate_groups_join_copies(planted) -> None:
    dataset, names = planted
    report = audit.run_audit(dataset)
    paths = dataset.frame["path"].tolist()
    original = paths.index("Training/glioma/glioma_00.png")
    assert report.groups[original] == report.groups[paths.index(names["exact"])]
    assert report.groups[original] != report.groups[paths.index("Training/glioma/glioma_05.png")]


def test_audit_is_cached_on_disk(planted, monkeypatch: pytest.MonkeyPatch) -> None:
    dataset, _ = planted
    audit.load_candidates(dataset)
    assert audit.candidates_are_cached(dataset)
    monkeypatch.setattr(audit, "find_candidates", lambda *a, **k: pytest.fail("recomputed"))
    assert len(audit.load_candidates(dataset).nearest_distance) == len(dataset.frame)


def test_duplicate_free_manifest_is_written(planted) -> None:
    dataset, _ = planted
    report = audit.run_audit(dataset)
    path = audit.save_duplicate_free_manifest(dataset, report)
    text = path.read_text()
    assert text.splitlines()[0] == "path,label"
    assert len(text.splitlines()) == 1 + len(report.duplicate_free_test)


def test_descriptor_ignores_shift_and_contrast_but_not_content() -> None:
    generator = np.random.default_rng(7)
    first = render_slice("meningioma", generator, 128)
    second = render_slice("meningioma", generator, 128)
    encoded = io.BytesIO()
    Image.fromarray(shifted(first, 3, 2)).save(encoded, format="JPEG", quality=75)
    recoded = np.asarray(Image.open(encoded))
    same = 1 - float(audit.slice_descriptor(first) @ audit.slice_descriptor(recoded))
    different = 1 - float(audit.slice_descriptor(first) @ audit.slice_descriptor(second))
    assert same < audit.DEFAULT_THRESHOLD < different


def test_order_pairs_puts_borderline_or_closest_first(planted) -> None:
    dataset, _ = planted
    pairs = audit.run_audit(dataset).pairs
    borderline = audit.order_pairs(pairs, borderline_first=True)
    closest = audit.order_pairs(pairs, borderline_first=False)
    assert borderline["distance"].is_monotonic_decreasing
    assert closest["distance"].is_monotonic_increasing
    assert borderline["distance"].iloc[0] > 0 and borderline["kind"].iloc[-1] == "exact"
    assert len(borderline) == len(closest) == len(pairs)


def test_copies_of_an_image_from_either_side_of_its_pairs(planted) -> None:
    dataset, names = planted
    report = audit.run_audit(dataset)
    paths = dataset.frame["path"].tolist()
    original = paths.index("Training/glioma/glioma_00.png")
    copies = audit.copies_of(report, original)
    assert copies.loc[0, "path"] == names["exact"]
    assert (copies.loc[0, "kind"], copies.loc[0, "split"]) == ("exact", "test")
    assert original not in set(copies["position"])
    # The same pair seen from its other side.
    back = audit.copies_of(report, paths.index(names["exact"]))
    assert original in set(back["position"])
    assert copies["distance"].is_monotonic_increasing and back["distance"].is_monotonic_increasing
    fresh = paths.index("Testing/glioma/fresh_0.png")
    assert audit.copies_of(report, fresh).empty
    assert list(audit.copies_of(report, fresh).columns) == list(copies.columns)
