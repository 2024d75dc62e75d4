"""Dataset audit: exact and near-duplicate images, leakage across splits, conflicting labels.

Exact duplicates share decoded pixels (same pixel hash in the index). Near-duplicates are found
with a descriptor built to ignore what re-encoding, re-windowing, shifting and rescaling change,
and to keep what tells two slices apart:

1. crop the slice to its bounding box (removes shifts and borders, normalises scale);
2. resize to 64 x 64 and equalise the histogram (removes contrast and brightness changes);
3. z-normalise; distance = 1 - Pearson correlation (0 = same picture, ~1 = unrelated).

The threshold was tuned by looking at pairs of the real Kaggle dataset in distance bands
(docs/audit.md): up to ~0.05 the pairs are the same slice re-encoded, re-windowed or shifted;
from ~0.06 neighbouring slices of the same scan appear, and those are not duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from core.atomic_files import write_bytes_atomic, write_with_atomic
from core.data.image_cache import load_images
from core.data.index import INDEX_IMAGE_SIZE, Dataset
from core.events import Events, report_progress

AUDIT_VERSION = 1
AUDIT_IMAGE_SIZE = INDEX_IMAGE_SIZE  # the thumbnails indexing saves: no second decode
DESCRIPTOR_SIZE = 64
DEFAULT_THRESHOLD = 0.05
# Candidates kept beyond the threshold so the page can move the threshold without recomputing.
CANDIDATE_RADIUS = 0.15
NEIGHBOURS_PER_IMAGE = 8
METHOD = (
    "exact: identical decoded pixels; near: 1 - Pearson correlation of 64x64 "
    "histogram-equalised, bounding-box-cropped grayscale thumbnails"
)


def crop_to_head(image: np.ndarray) -> np.ndarray:
    """The slice cropped to the bounding box of its bright part (the head): removes shifts,
    borders and the field of view's scale."""
    blurred = cv2.GaussianBlur(image, (5, 5), 0)
    foreground = blurred > max(10.0, 0.1 * float(np.percentile(blurred, 99)))
    rows, columns = np.nonzero(foreground)
    if len(rows) < 16:
        return image
    return image[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]


def slice_descriptor(image: np.ndarray) -> np.ndarray:
    """Unit-norm, zero-mean float32 descriptor of one grayscale slice (see module docstring)."""
    image = crop_to_head(image)
    small = cv2.resize(image, (DESCRIPTOR_SIZE, DESCRIPTOR_SIZE), interpolation=cv2.INTER_AREA)
    vector = cv2.equalizeHist(small).astype(np.float32).ravel()
    vector -= vector.mean()
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


@dataclass(frozen=True)
class AuditCandidates:
    """Every pair closer than CANDIDATE_RADIUS (at most a few per image), plus exact pairs."""

    first: np.ndarray
    second: np.ndarray
    distance: np.ndarray
    exact: np.ndarray
    nearest_distance: np.ndarray


def _exact_pairs(pixel_hashes: pd.Series) -> set[tuple[int, int]]:
    pairs: set[tuple[int, int]] = set()
    for members in pixel_hashes.groupby(pixel_hashes).indices.values():
        for position, first in enumerate(members):
            pairs.update((int(first), int(second)) for second in members[position + 1 :])
    return pairs


def _neighbour_pairs(
    descriptors: np.ndarray, events: Events | None
) -> tuple[dict[tuple[int, int], float], np.ndarray]:
    """Close pairs (i < j) and each image's nearest-neighbour distance, by blocked matmul."""
    count = len(descriptors)
    nearest = np.full(count, 2.0, dtype=np.float32)
    pairs: dict[tuple[int, int], float] = {}
    block = 512
    neighbours = min(NEIGHBOURS_PER_IMAGE, count - 1)
    for start in range(0, count, block):
        stop = min(start + block, count)
        distances = 1.0 - descriptors[start:stop] @ descriptors.T
        distances[np.arange(stop - start), np.arange(start, stop)] = np.inf
        closest = np.argpartition(distances, neighbours - 1, axis=1)[:, :neighbours]
        for row, columns in enumerate(closest):
            nearest[start + row] = distances[row].min()
            for column in columns:
                value = float(distances[row, column])
                if value <= CANDIDATE_RADIUS:
                    pair = (min(start + row, int(column)), max(start + row, int(column)))
                    pairs[pair] = value
        report_progress(events, "audit", stop, count, f"Comparing images: {stop}/{count}")
    return pairs, np.clip(nearest, 0.0, 2.0)


def describe_images(images: np.ndarray, events: Events | None = None) -> np.ndarray:
    """(N, DESCRIPTOR_SIZE**2) float32 descriptors of (N, H, W) uint8 grayscale images."""
    descriptors = np.empty((len(images), DESCRIPTOR_SIZE * DESCRIPTOR_SIZE), dtype=np.float32)
    for position, image in enumerate(images):
        descriptors[position] = slice_descriptor(image)
        if (position + 1) % 500 == 0:
            done = position + 1
            message = f"Describing images: {done}/{len(images)}"
            report_progress(events, "audit", done, len(images), message)
    return descriptors


def _descriptors_path(dataset: Dataset) -> Path:
    return dataset.cache_dir() / f"descriptors-v{AUDIT_VERSION}-{dataset.fingerprint}.npy"


def _save_descriptors(dataset: Dataset, descriptors: np.ndarray) -> None:
    # float16 halves the file (57 MB for the 7,019 real images); distances move by < 1e-3.
    compact = descriptors.astype(np.float16)
    write_with_atomic(_descriptors_path(dataset), lambda handle: np.save(handle, compact))


def dataset_descriptors(dataset: Dataset, events: Events | None = None) -> np.ndarray:
    """The descriptor of every indexed image of `dataset` (index order), float32: kept on disk
    by the audit (which computes them anyway), else computed from the thumbnails and kept."""
    try:
        stored = np.load(_descriptors_path(dataset), allow_pickle=False)
        if stored.shape == (len(dataset.frame), DESCRIPTOR_SIZE * DESCRIPTOR_SIZE):
            return stored.astype(np.float32)
    except (OSError, ValueError):
        pass  # missing or damaged: recompute
    descriptors = describe_images(load_images(dataset, AUDIT_IMAGE_SIZE, events), events)
    _save_descriptors(dataset, descriptors)
    return descriptors


def nearest_matches(
    queries: np.ndarray, references: np.ndarray, block: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """For each query descriptor, the position of its nearest reference and the distance."""
    nearest = np.zeros(len(queries), dtype=np.int64)
    distance = np.full(len(queries), 2.0, dtype=np.float32)
    if len(references) == 0:
        return nearest, distance
    for start in range(0, len(queries), block):
        similarity = queries[start : start + block] @ references.T
        best = similarity.argmax(axis=1)
        nearest[start : start + block] = best
        distance[start : start + block] = 1.0 - similarity[np.arange(len(best)), best]
    return nearest, np.clip(distance, 0.0, 2.0)


def find_candidates(
    dataset: Dataset, images: np.ndarray, events: Events | None = None
) -> AuditCandidates:
    """Compute descriptors of `images` (index order) and collect candidate duplicate pairs."""
    descriptors = describe_images(images, events)
    _save_descriptors(dataset, descriptors)  # for scan-level checks and copy lookups
    close, nearest = _neighbour_pairs(descriptors, events)
    exact = _exact_pairs(dataset.frame["pixel_hash"])
    for pair in exact:
        close[pair] = 0.0
    nearest[[position for pair in exact for position in pair]] = 0.0
    ordered = sorted(close)
    return AuditCandidates(
        first=np.array([pair[0] for pair in ordered], dtype=np.int64),
        second=np.array([pair[1] for pair in ordered], dtype=np.int64),
        distance=np.array([close[pair] for pair in ordered], dtype=np.float32),
        exact=np.array([pair in exact for pair in ordered], dtype=bool),
        nearest_distance=nearest,
    )


def _cache_path(dataset: Dataset) -> Path:
    return dataset.cache_dir() / f"audit-v{AUDIT_VERSION}-{dataset.fingerprint}.npz"


def candidates_are_cached(dataset: Dataset) -> bool:
    """Whether the audit of this dataset content has been computed before."""
    return _cache_path(dataset).is_file()


def load_candidates(dataset: Dataset, events: Events | None = None) -> AuditCandidates:
    """Audit candidates from the cache, or computed once (under a minute for 7,000 images)."""
    path = _cache_path(dataset)
    try:
        with np.load(path, allow_pickle=False) as stored:
            candidates = AuditCandidates(**{name: stored[name] for name in stored.files})
        if len(candidates.nearest_distance) == len(dataset.frame):
            return candidates
    except (OSError, ValueError, TypeError, KeyError):
        pass  # missing or damaged: recompute
    images = load_images(dataset, AUDIT_IMAGE_SIZE, events)
    candidates = find_candidates(dataset, images, events)
    write_with_atomic(
        path, lambda handle: np.savez(handle, **candidates.__dict__, allow_pickle=False)
    )
    return candidates


@dataclass(frozen=True)
class AuditReport:
    """The audit at one threshold: annotated pairs, per-test-image leakage, duplicate groups."""

    threshold: float
    pairs: pd.DataFrame = field(repr=False)
    test_leakage: pd.DataFrame = field(repr=False)
    groups: np.ndarray = field(repr=False)
    nearest_distance: np.ndarray = field(repr=False)

    @property
    def duplicate_free_test(self) -> pd.DataFrame:
        """Test images with no exact or near-duplicate anywhere in the training part."""
        clean = self.test_leakage[self.test_leakage["leakage"] == "none"]
        return clean[["path", "label"]].reset_index(drop=True)


def _annotate_pairs(
    dataset: Dataset, candidates: AuditCandidates, threshold: float
) -> pd.DataFrame:
    keep = candidates.exact | (candidates.distance <= threshold)
    frame = dataset.frame
    first, second = candidates.first[keep], candidates.second[keep]
    pairs = pd.DataFrame(
        {
            "a": first,
            "b": second,
            "a_path": frame["path"].to_numpy()[first],
            "b_path": frame["path"].to_numpy()[second],
            "a_label": frame["label"].to_numpy()[first],
            "b_label": frame["label"].to_numpy()[second],
            "a_split": frame["split"].to_numpy()[first],
            "b_split": frame["split"].to_numpy()[second],
            "distance": candidates.distance[keep],
            "kind": np.where(candidates.exact[keep], "exact", "near"),
        }
    )
    pairs["scope"] = np.where(pairs["a_split"] == pairs["b_split"], "within split", "cross-split")
    pairs["conflicting_labels"] = pairs["a_label"] != pairs["b_label"]
    return pairs.sort_values(["distance", "a", "b"], ignore_index=True)


def _test_leakage(dataset: Dataset, pairs: pd.DataFrame) -> pd.DataFrame:
    """For each test image: 'exact', 'near' or 'none' duplicate in the training part."""
    splits = dataset.frame["split"].to_numpy()
    worst: dict[int, str] = {}
    for row in pairs.itertuples(index=False):
        for test_side, other in ((row.a, row.b), (row.b, row.a)):
            crosses = splits[test_side] == "test" and splits[other] != "test"
            # An exact duplicate outranks a near one: never downgrade it.
            if crosses and (row.kind == "exact" or worst.get(test_side) != "exact"):
                worst[test_side] = row.kind
    test_positions = np.flatnonzero(splits == "test")
    return pd.DataFrame(
        {
            "position": test_positions,
            "path": dataset.frame["path"].to_numpy()[test_positions],
            "label": dataset.frame["label"].to_numpy()[test_positions],
            "leakage": [worst.get(int(position), "none") for position in test_positions],
        }
    )


def _duplicate_groups(count: int, pairs: pd.DataFrame) -> np.ndarray:
    graph = coo_matrix((np.ones(len(pairs)), (pairs["a"], pairs["b"])), shape=(count, count))
    _, labels = connected_components(graph, directed=False)
    return labels


def build_report(
    dataset: Dataset, candidates: AuditCandidates, threshold: float = DEFAULT_THRESHOLD
) -> AuditReport:
    """Apply a near-duplicate threshold to the cached candidates."""
    if not 0.0 <= threshold <= CANDIDATE_RADIUS:
        raise ValueError(f"threshold {threshold} is outside 0..{CANDIDATE_RADIUS}")
    pairs = _annotate_pairs(dataset, candidates, threshold)
    return AuditReport(
        threshold=threshold,
        pairs=pairs,
        test_leakage=_test_leakage(dataset, pairs),
        groups=_duplicate_groups(len(dataset.frame), pairs),
        nearest_distance=candidates.nearest_distance,
    )


def summarize(dataset: Dataset, report: AuditReport) -> dict[str, object]:
    """Counts for the CLI and the page: cross-split leakage, within-split duplicates, conflicts."""
    pairs, leakage = report.pairs, report.test_leakage["leakage"]
    within = pairs[pairs["scope"] == "within split"]
    return {
        "method": METHOD,
        "threshold": report.threshold,
        "images": len(dataset.frame),
        "test_images": len(leakage),
        "exact_cross_split": int((leakage == "exact").sum()),
        "near_cross_split": int((leakage == "near").sum()),
        "duplicate_free_test": int((leakage == "none").sum()),
        "exact_pairs": int((pairs["kind"] == "exact").sum()),
        "near_pairs": int((pairs["kind"] == "near").sum()),
        "cross_split_pairs": int((pairs["scope"] == "cross-split").sum()),
        "within_split_pairs": {
            split: int((within["a_split"] == split).sum()) for split in dataset.splits
        },
        "conflicting_labels": int(pairs["conflicting_labels"].sum()),
        "images_in_duplicate_groups": int(
            np.isin(report.groups, np.flatnonzero(np.bincount(report.groups) > 1)).sum()
        ),
    }


def order_pairs(pairs: pd.DataFrame, *, borderline_first: bool) -> pd.DataFrame:
    """Pairs by distance: borderline first (the largest distances under the threshold, the pairs
    worth a look, lead; exact pairs come last) or closest first."""
    ascending = [not borderline_first, True, True]
    return pairs.sort_values(["distance", "a", "b"], ascending=ascending, ignore_index=True)


def copies_of(report: AuditReport, position: int) -> pd.DataFrame:
    """The exact and near copies of the image at `position` (index order), closest first:
    position, path, label, split, kind and distance of each."""
    pairs = report.pairs
    as_first, as_second = pairs[pairs["a"] == position], pairs[pairs["b"] == position]

    def other_side(column: str) -> np.ndarray:
        return np.concatenate([as_first[f"b{column}"], as_second[f"a{column}"]])

    copies = pd.DataFrame(
        {
            "position": other_side(""),
            "path": other_side("_path"),
            "label": other_side("_label"),
            "split": other_side("_split"),
            "kind": np.concatenate([as_first["kind"], as_second["kind"]]),
            "distance": np.concatenate([as_first["distance"], as_second["distance"]]),
        }
    )
    return copies.sort_values(["distance", "position"], ignore_index=True)


def save_duplicate_free_manifest(dataset: Dataset, report: AuditReport) -> Path:
    """Write the duplicate-free test subset as a CSV manifest (path, label) for evaluation."""
    tag = f"{round(report.threshold * 1000):03d}"
    path = dataset.cache_dir() / f"duplicate-free-test-t{tag}-{dataset.fingerprint}.csv"
    write_bytes_atomic(
        path, report.duplicate_free_test.to_csv(index=False, lineterminator="\n").encode()
    )
    return path


def audit_report(
    dataset: Dataset,
    threshold: float = DEFAULT_THRESHOLD,
    events: Events | None = None,
) -> AuditReport:
    """The audit of `dataset` at `threshold`, from the cached candidates (computed once)."""
    return build_report(dataset, load_candidates(dataset, events), threshold)


def run_audit(
    dataset: Dataset,
    threshold: float = DEFAULT_THRESHOLD,
    events: Events | None = None,
) -> AuditReport:
    """Audit `dataset` (cached) at `threshold` and save the duplicate-free test manifest."""
    report = audit_report(dataset, threshold, events)
    save_duplicate_free_manifest(dataset, report)
    return report
