"""Scan-level leakage: test images whose scan (patient) also gave training images.

The audit's near-duplicate search finds the *same slice* re-encoded or re-windowed. A patient
contributes more than one slice, though: neighbouring slices of one scan, and the same slice in
another MRI sequence (T1 / T2 / FLAIR), whose histogram-equalised descriptors differ but whose
head outline and layout agree. A test image with such a relative in training says little about
a new patient. Found here with a perceptual hash (imagehash's DCT pHash) of the head's bounding
box: a small Hamming distance between two slices' hashes means the same outline and layout.
The threshold was chosen by looking at real pairs in distance bands (docs/audit.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
import pandas as pd
from PIL import Image

from core.atomic_files import write_with_atomic
from core.data.audit import (
    AUDIT_IMAGE_SIZE,
    AuditReport,
    crop_to_head,
    dataset_descriptors,
    nearest_matches,
)
from core.data.image_cache import load_images
from core.data.index import Dataset
from core.events import Events, report_progress

HASH_BITS = 64


def perceptual_hash(image: np.ndarray) -> np.uint64:
    """The 64-bit pHash of a grayscale slice's head bounding box."""
    bits = imagehash.phash(Image.fromarray(crop_to_head(image))).hash.flatten()
    return np.packbits(bits).view(">u8")[0].astype(np.uint64)


def perceptual_hashes(images: np.ndarray) -> np.ndarray:
    """(N,) uint64 pHashes of (N, H, W) uint8 slices."""
    return np.array([perceptual_hash(image) for image in images], dtype=np.uint64)


def nearest_hashes(
    queries: np.ndarray, references: np.ndarray, block: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """For each query hash, the position of the closest reference hash and the Hamming
    distance (HASH_BITS + 1 when there are no references)."""
    nearest = np.zeros(len(queries), dtype=np.int64)
    distance = np.full(len(queries), HASH_BITS + 1, dtype=np.int64)
    if len(references) == 0:
        return nearest, distance
    for start in range(0, len(queries), block):
        differing = np.bitwise_count(queries[start : start + block, None] ^ references[None, :])
        nearest[start : start + block] = differing.argmin(axis=1)
        distance[start : start + block] = differing.min(axis=1)
    return nearest, distance


# Chosen by looking at real pairs (docs/audit.md, `python -m bench.scan_level`): the closest
# training image of a duplicate-free test image looked like the same patient in 8 of 8 pairs
# with a hash distance of 4-7 and in 16 of 16 with a descriptor distance of 0.10-0.20; in those
# bands 94% and 99% of the pairs share the class, against 24% for random pairs.
SCAN_HASH_THRESHOLD = 7
SCAN_DESCRIPTOR_THRESHOLD = 0.20
SCAN_LEVEL_VERSION = 1
METHOD = (
    f"a test image is from a scan seen in training when a training image is within "
    f"{SCAN_DESCRIPTOR_THRESHOLD} of it by the audit's descriptor (neighbouring slices) or "
    f"within {SCAN_HASH_THRESHOLD} bits by a perceptual hash of the head (the same slice in "
    "another sequence)"
)


@dataclass(frozen=True)
class ScanNeighbours:
    """Per official test image: its closest training image by descriptor and by hash."""

    positions: np.ndarray  # dataset positions of the test images
    descriptor_match: np.ndarray  # dataset position of the closest training image
    descriptor_distance: np.ndarray
    hash_match: np.ndarray
    hash_distance: np.ndarray

    def related(self) -> np.ndarray:
        """Whether each test image plausibly shares its scan with a training image."""
        return (self.descriptor_distance <= SCAN_DESCRIPTOR_THRESHOLD) | (
            self.hash_distance <= SCAN_HASH_THRESHOLD
        )


def _cache_path(dataset: Dataset) -> Path:
    return dataset.cache_dir() / f"scan-level-v{SCAN_LEVEL_VERSION}-{dataset.fingerprint}.npz"


def scan_neighbours(dataset: Dataset, events: Events | None = None) -> ScanNeighbours:
    """Each test image's closest training images: cached per dataset content (about 30 s
    for the 7,000 images of the real dataset on 2 cores, then instant)."""
    path = _cache_path(dataset)
    try:
        with np.load(path, allow_pickle=False) as stored:
            return ScanNeighbours(**{name: stored[name] for name in stored.files})
    except (OSError, ValueError, TypeError, KeyError):
        pass  # missing or damaged: recompute
    splits = dataset.frame["split"].to_numpy()
    tests, training = np.flatnonzero(splits == "test"), np.flatnonzero(splits != "test")
    images = load_images(dataset, AUDIT_IMAGE_SIZE, events)
    report_progress(events, "audit", 0, 1, "Looking for slices of the same scans")
    descriptors = dataset_descriptors(dataset, events)
    hashes = perceptual_hashes(images)
    descriptor_match, descriptor_distance = nearest_matches(
        descriptors[tests], descriptors[training]
    )
    hash_match, hash_distance = nearest_hashes(hashes[tests], hashes[training])
    empty = len(training) == 0
    neighbours = ScanNeighbours(
        positions=tests,
        descriptor_match=descriptor_match if empty else training[descriptor_match],
        descriptor_distance=descriptor_distance,
        hash_match=hash_match if empty else training[hash_match],
        hash_distance=hash_distance,
    )
    write_with_atomic(
        path, lambda handle: np.savez(handle, **neighbours.__dict__, allow_pickle=False)
    )
    report_progress(events, "audit", 1, 1, "Scan-level check done")
    return neighbours


def unseen_scan_test(
    dataset: Dataset, report: AuditReport, events: Events | None = None
) -> pd.DataFrame:
    """The duplicate-free test images whose scan gave no training image (position, path,
    label): the strictest test subset."""
    neighbours = scan_neighbours(dataset, events)
    duplicate_free = set(
        report.test_leakage.loc[report.test_leakage["leakage"] == "none", "position"]
    )
    keep = ~neighbours.related() & np.isin(neighbours.positions, list(duplicate_free))
    positions = neighbours.positions[keep]
    return pd.DataFrame(
        {
            "position": positions,
            "path": dataset.frame["path"].to_numpy()[positions],
            "label": dataset.frame["label"].to_numpy()[positions],
        }
    )


def subset_counts(
    dataset: Dataset, report: AuditReport, events: Events | None = None
) -> dict[str, dict[str, int]]:
    """Images per class of the official test and of each stricter subset: the stricter ones
    are unbalanced (few `notumor` images survive), which their accuracy alone hides."""
    test = report.test_leakage
    subsets = {
        "test": test["label"],
        "duplicate_free_test": test.loc[test["leakage"] == "none", "label"],
        "unseen_scan_test": unseen_scan_test(dataset, report, events)["label"],
    }
    return {
        name: {label: int((labels == label).sum()) for label in dataset.classes}
        for name, labels in subsets.items()
    }


def is_computed(dataset: Dataset) -> bool:
    """Whether the scan-level check of this dataset content is cached."""
    return _cache_path(dataset).is_file()
