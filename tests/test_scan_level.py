"""The scan-level subset: test images with a neighbouring slice of their scan in training are
left out of the unseen-scan test, though they are duplicate-free."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.data import audit, scan_level
from core.data.index import Dataset, open_dataset
from core.data.synthetic import DEMO_CLASSES, render_slice
from tests.test_audit import save
from tests.test_cli import run_cli

SIZE = 160
NEIGHBOUR_SEEDS = (1, 2, 4, 5)


def neighbouring_slice(seed: int, label: str) -> np.ndarray:
    """The same synthetic head as training image `seed` with another lesion, a little blurred:
    like the next slice of one scan (same outline and anatomy, different content)."""
    return cv2.GaussianBlur(render_slice(label, np.random.default_rng(seed), SIZE), (0, 0), 2.0)


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> Dataset:
    root = tmp_path_factory.mktemp("scans")
    for label in DEMO_CLASSES:
        for seed in range(8):
            pixels = render_slice("glioma", np.random.default_rng(seed), SIZE)
            if label == "glioma":
                save(root / "Training" / label / f"seed_{seed}", pixels)
            else:  # other heads for the other classes
                other = render_slice(label, np.random.default_rng(100 + seed), SIZE)
                save(root / "Training" / label / f"seed_{seed}", other)
        for number in range(2):
            fresh = render_slice(label, np.random.default_rng(1000 + number), SIZE)
            save(root / "Testing" / label / f"fresh_{number}", fresh)
    for seed in NEIGHBOUR_SEEDS:
        save(
            root / "Testing" / "pituitary" / f"neighbour_{seed}",
            neighbouring_slice(seed, "pituitary"),
        )
    save(
        root / "Testing" / "glioma" / "copy", render_slice("glioma", np.random.default_rng(3), SIZE)
    )
    return open_dataset(root)


def test_neighbouring_slices_are_duplicate_free_but_not_unseen_scan(scans: Dataset) -> None:
    report = audit.audit_report(scans)
    neighbours = scan_level.scan_neighbours(scans)
    by_path = dict(zip(scans.frame["path"].to_numpy()[neighbours.positions],
                       neighbours.descriptor_distance, strict=True))  # fmt: skip
    neighbour_paths = [f"Testing/pituitary/neighbour_{seed}.png" for seed in NEIGHBOUR_SEEDS]
    # The fixture is what it claims: further than a duplicate, within the scan-level distance.
    for path in neighbour_paths:
        assert audit.DEFAULT_THRESHOLD < by_path[path] <= scan_level.SCAN_DESCRIPTOR_THRESHOLD
    leakage = report.test_leakage.set_index("path")["leakage"]
    assert (leakage[neighbour_paths] == "none").all()  # not copies: in the duplicate-free test
    assert leakage["Testing/glioma/copy.png"] == "exact"
    unseen = set(scan_level.unseen_scan_test(scans, report)["path"])
    fresh = {path for path in leakage.index if "fresh_" in path}
    assert unseen == fresh  # neither the copy nor the neighbouring slices
    counts = scan_level.subset_counts(scans, report)
    assert counts["test"]["pituitary"] == 2 + len(NEIGHBOUR_SEEDS)
    assert counts["duplicate_free_test"]["pituitary"] == 2 + len(NEIGHBOUR_SEEDS)
    assert counts["unseen_scan_test"] == dict.fromkeys(DEMO_CLASSES, 2)


def test_the_scan_level_check_is_cached(scans: Dataset, monkeypatch: pytest.MonkeyPatch) -> None:
    first = scan_level.scan_neighbours(scans)
    assert scan_level.is_computed(scans)
    monkeypatch.setattr(scan_level, "perceptual_hashes", lambda *a, **k: pytest.fail("recomputed"))
    again = scan_level.scan_neighbours(scans)
    np.testing.assert_array_equal(first.descriptor_distance, again.descriptor_distance)


def test_hash_distances_count_differing_bits() -> None:
    queries = np.array([0b1011, 0], dtype=np.uint64)
    references = np.array([0b0011, 0b1111, np.uint64(2**64 - 1)], dtype=np.uint64)
    nearest, distance = scan_level.nearest_hashes(queries, references)
    assert nearest.tolist() == [0, 0] and distance.tolist() == [1, 2]
    _, none = scan_level.nearest_hashes(queries, np.array([], dtype=np.uint64))
    assert (none > scan_level.HASH_BITS).all()


def test_a_close_hash_alone_makes_an_image_scan_related() -> None:
    # Another sequence of the same slice: the descriptor differs, the head's layout does not.
    far, close = scan_level.SCAN_DESCRIPTOR_THRESHOLD + 0.1, scan_level.SCAN_HASH_THRESHOLD
    neighbours = scan_level.ScanNeighbours(
        positions=np.array([0, 1, 2]),
        descriptor_match=np.zeros(3, np.int64),
        descriptor_distance=np.array([far, far, 0.1]),
        hash_match=np.zeros(3, np.int64),
        hash_distance=np.array([close, close + 1, 40]),
    )
    assert neighbours.related().tolist() == [True, False, True]


def test_a_perceptual_hash_survives_rewindowing_but_not_another_head() -> None:
    slice_ = render_slice("glioma", np.random.default_rng(0), SIZE)
    brighter = np.clip(slice_.astype(np.float32) * 1.3, 0, 255).astype(np.uint8)
    other = render_slice("glioma", np.random.default_rng(7), SIZE)
    hashes = scan_level.perceptual_hashes(np.stack([slice_, brighter, other]))
    differing = [int(np.bitwise_count(hashes[0] ^ one)) for one in hashes[1:]]
    assert differing[0] <= scan_level.SCAN_HASH_THRESHOLD < differing[1]


def test_the_audit_cli_reports_each_subset_per_class(scans: Dataset) -> None:
    result = run_cli("audit", str(scans.root), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["unseen_scan_test"] == 2 * len(DEMO_CLASSES)
    assert summary["subset_counts"]["unseen_scan_test"]["notumor"] == 2
    assert Path(summary["duplicate_free_manifest"]).is_file()
