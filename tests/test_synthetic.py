"""Tests for the synthetic demo dataset generator (core.synthetic)."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from core.data.synthetic import (
    DEMO_CLASSES,
    GENERATOR_VERSION,
    MARKER_FILE,
    generate_demo_dataset,
    is_synthetic_dataset,
    read_marker,
    render_slice,
)

SMALL = {"train_per_class": 6, "test_per_class": 3, "image_size": 64}
SPLITS = ("Training", "Testing")


@pytest.fixture(scope="module")
def default_ds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "dataset"
    start = time.perf_counter()
    generate_demo_dataset(root)
    elapsed = time.perf_counter() - start
    print(f"\ndefault demo dataset (300 images, 128 px) generated in {elapsed:.2f} s")
    return root


def _images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".png", ".jpg"))


def _gray(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32)


def _feature(img: np.ndarray) -> np.ndarray:
    """Crop to the non-background bounding box, resize to 32x32, z-normalise."""
    smooth = cv2.GaussianBlur(img, (5, 5), 0)
    ys, xs = np.nonzero(smooth > 0.25 * smooth.max())  # blur first: noise must not grow the box
    crop = img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    f = cv2.resize(crop, (32, 32), interpolation=cv2.INTER_AREA).ravel()
    return (f - f.mean()) / f.std()


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(_feature(a) @ _feature(b) / 1024)


def _pairs(marker: dict, kind: str) -> list[list[str]]:
    return marker["planted"][kind]


def test_counts_layout_and_marker(default_ds: Path) -> None:
    marker = read_marker(default_ds)
    assert marker is not None
    assert marker["synthetic"] is True and marker["generator_version"] == GENERATOR_VERSION
    assert "Not medical data" in marker["note"] and marker["classes"] == list(DEMO_CLASSES)
    expected = {"Training": 60, "Testing": 15}
    for split, cls in itertools.product(SPLITS, DEMO_CLASSES):
        files = [p for p in (default_ds / split / cls).iterdir() if p.suffix in (".png", ".jpg")]
        assert len(files) == expected[split] == marker["counts"][split][cls]
        assert all(p.name.startswith(f"demo_{cls}_") for p in files)
    suffixes = [p.suffix for p in _images(default_ds)]
    assert 0 < suffixes.count(".jpg") < suffixes.count(".png")  # mostly PNG, a few JPEG
    png = next(p for p in _images(default_ds) if p.suffix == ".png")
    assert Image.open(png).mode == "L" and Image.open(png).size == (128, 128)


def test_is_synthetic_dataset(default_ds: Path, tmp_path: Path) -> None:
    assert is_synthetic_dataset(default_ds)
    assert not is_synthetic_dataset(tmp_path)
    assert not is_synthetic_dataset(tmp_path / "missing")
    (tmp_path / MARKER_FILE).write_text("not json")
    assert not is_synthetic_dataset(tmp_path) and read_marker(tmp_path) is None


def test_deterministic(tmp_path: Path) -> None:
    a = generate_demo_dataset(tmp_path / "a", **SMALL)
    b = generate_demo_dataset(tmp_path / "b", **SMALL)
    rel_a = [p.relative_to(a) for p in sorted(a.rglob("*")) if p.is_file()]
    rel_b = [p.relative_to(b) for p in sorted(b.rglob("*")) if p.is_file()]
    assert rel_a == rel_b and len(rel_a) == 4 * 9 + 1
    assert all((a / r).read_bytes() == (b / r).read_bytes() for r in rel_a)


def test_idempotent_and_regenerates_stale_demo(tmp_path: Path) -> None:
    root = generate_demo_dataset(tmp_path / "ds", **SMALL)
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    time.sleep(0.01)
    assert generate_demo_dataset(root, **SMALL) == root
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    generate_demo_dataset(root, **{**SMALL, "seed": 1})  # other params: replaced, not refused
    assert read_marker(root)["params"]["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # no temp or old folders left


def test_refuses_non_demo_folder(tmp_path: Path) -> None:
    root = tmp_path / "mine"
    root.mkdir()
    (root / "notes.txt").write_text("user data")
    with pytest.raises(ValueError, match="non-demo"):
        generate_demo_dataset(root, **SMALL)
    assert (root / "notes.txt").read_text() == "user data"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert is_synthetic_dataset(generate_demo_dataset(empty, **SMALL))


def test_concurrent_generation(tmp_path: Path) -> None:
    root, errors = tmp_path / "ds", []
    barrier = threading.Barrier(2)

    def work() -> None:
        barrier.wait()
        try:
            generate_demo_dataset(root, **SMALL)
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(_images(root)) == 4 * 9 and is_synthetic_dataset(root)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_planted_leakage(default_ds: Path) -> None:
    marker = read_marker(default_ds)
    exact, near = _pairs(marker, "exact_cross_split"), _pairs(marker, "near_cross_split")
    (conflict,) = _pairs(marker, "conflicting_labels")
    assert len(exact) == 3 and len(near) == 3
    for test_rel, train_rel in exact + near:
        assert test_rel.startswith("Testing/") and train_rel.startswith("Training/")
        assert Path(test_rel).parent.name == Path(train_rel).parent.name  # same class
    for test_rel, train_rel in exact:
        assert (default_ds / test_rel).read_bytes() == (default_ds / train_rel).read_bytes()
    for test_rel, train_rel in near:
        a, b = _gray(default_ds / test_rel), _gray(default_ds / train_rel)
        assert not np.array_equal(a, b) and _corr(a, b) > 0.98
    a, b = (default_ds / rel for rel in conflict)
    assert a.parts[-3] == b.parts[-3] == "Training" and a.parent.name != b.parent.name
    assert np.array_equal(_gray(a), _gray(b))


def test_ordinary_images_are_not_near_duplicates(default_ds: Path) -> None:
    marker = read_marker(default_ds)
    files = [p.relative_to(default_ds).as_posix() for p in _images(default_ds)]
    feats = np.stack([_feature(_gray(default_ds / f)) for f in files])
    corr = feats @ feats.T / feats.shape[1]
    np.fill_diagonal(corr, -1.0)
    index = {f: i for i, f in enumerate(files)}
    planted = [pair for pairs in marker["planted"].values() for pair in pairs]
    for a, b in planted:
        corr[index[a], index[b]] = corr[index[b], index[a]] = -1.0
    near = [
        _corr(_gray(default_ds / a), _gray(default_ds / b))
        for a, b in _pairs(marker, "near_cross_split")
    ]
    print(f"\nmax corr, non-planted pairs: {corr.max():.4f}; min, planted near: {min(near):.4f}")
    assert corr.max() < min(near) - 0.05


def test_same_rng_differs_only_by_lesion_in_its_zone() -> None:
    s = 128
    for seed in range(12):
        imgs = {
            c: render_slice(c, np.random.default_rng(seed), s).astype(int) for c in DEMO_CLASSES
        }
        assert imgs["notumor"].dtype == int and imgs["notumor"].shape == (s, s)
        centre = {}
        for cls in ("glioma", "meningioma", "pituitary"):
            ys, xs = np.nonzero(np.abs(imgs[cls] - imgs["notumor"]) > 10)
            assert len(ys) > 10, cls
            centre[cls] = (ys.mean() / s, xs.mean() / s)
        y, x = centre["pituitary"]
        assert y > 0.62 and abs(x - 0.5) < 0.12  # midline, skull base
        y, x = centre["meningioma"]
        assert np.hypot(y - 0.5, x - 0.5) > 0.2  # against the skull, away from the centre
        y, x = centre["glioma"]
        assert np.hypot(y - 0.5, x - 0.5) < 0.3 and abs(x - 0.5) > 0.03  # inside a hemisphere


def _zone_rate(root: Path, cls: str, op: int, kernel: int, thr: float, zone: np.ndarray) -> float:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (kernel, kernel))
    rates = []
    for path in sorted((root / "Training" / cls).iterdir()):
        img = _gray(path) / np.percentile(_gray(path), 99.5)  # undo per-image gain
        rates.append((cv2.morphologyEx(img, op, k)[zone] > thr).mean())
    return float(np.mean(rates))


def test_classes_differ_in_expected_regions(default_ds: Path) -> None:
    s = 128
    y, x = np.mgrid[0:s, 0:s] + 0.5
    rad = np.hypot(x - s / 2, y - s / 2) / s
    sella = (y > 0.6 * s) & (y < 0.84 * s) & (np.abs(x - s / 2) < 0.12 * s)
    # Opening keeps bright blobs wider than the skull ring; top-hat keeps thin bright rims.
    blob = {c: _zone_rate(default_ds, c, cv2.MORPH_OPEN, 5, 0.8, sella) for c in DEMO_CLASSES}
    edge = {c: _zone_rate(default_ds, c, cv2.MORPH_OPEN, 5, 0.8, rad > 0.25) for c in DEMO_CLASSES}
    rim = {c: _zone_rate(default_ds, c, cv2.MORPH_TOPHAT, 9, 0.3, rad < 0.3) for c in DEMO_CLASSES}
    print(f"\nsella blobs {blob}\nedge blobs {edge}\ncentral rims {rim}")
    assert blob["pituitary"] > 2 * blob["notumor"]
    assert edge["meningioma"] > 4 * edge["notumor"]
    assert rim["glioma"] > 2 * rim["notumor"]


def test_render_slice_rejects_unknown_label() -> None:
    with pytest.raises(ValueError):
        render_slice("astrocytoma", np.random.default_rng(0), 64)
