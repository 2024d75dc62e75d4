"""How the scan-level threshold was chosen: perceptual-hash distances of test images to the
training part, and pairs to look at.

    python -m bench.scan_level DATA_DIR [--sheets DIR] [--quick]

For every official test image with no duplicate in training (the duplicate-free subset): the
Hamming distance of its perceptual hash (imagehash.phash of the head's bounding box) to the
closest training image, as a histogram; with --sheets, one contact sheet per distance band
(`image | closest training image | absolute difference`) to judge by eye where "the same scan"
(neighbouring slices, the same slice in another MRI sequence) ends and "another patient"
begins. --quick uses the synthetic demo dataset.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from bench.audit_threshold import contact_sheet
from core import paths
from core.data import audit, scan_level, synthetic
from core.data.image_cache import load_images
from core.data.index import open_dataset

BANDS = [0, 4, 8, 10, 12, 14, 16, 18, 20, 24, 32, 65]
DESCRIPTOR_BANDS = [0.0, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 2.0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=paths.real_dataset_dir())
    parser.add_argument("--sheets", type=Path, help="write one contact sheet per band here")
    parser.add_argument("--quick", action="store_true", help="the synthetic demo dataset")
    arguments = parser.parse_args()
    root = (
        synthetic.generate_demo_dataset(paths.demo_dataset_dir())
        if arguments.quick
        else arguments.data_dir
    )
    dataset = open_dataset(root)
    report = audit.audit_report(dataset)
    hashes = scan_level.perceptual_hashes(load_images(dataset, audit.AUDIT_IMAGE_SIZE))
    splits = dataset.frame["split"].to_numpy()
    training = np.flatnonzero(splits != "test")
    clean = report.test_leakage.loc[report.test_leakage["leakage"] == "none", "position"]
    clean = clean.to_numpy()
    nearest, distance = scan_level.nearest_hashes(hashes[clean], hashes[training])
    descriptors = audit.describe_images(load_images(dataset, audit.AUDIT_IMAGE_SIZE))
    closest, descriptor_distance = audit.nearest_matches(descriptors[clean], descriptors[training])
    labels = dataset.frame["label"].to_numpy()
    # A pair of another class cannot be one patient's scan: the share of such pairs in a band,
    # against the share among random pairs, bounds how many pairs there are unrelated.
    other_by_hash = labels[clean] != labels[training[nearest]]
    other_by_descriptor = labels[clean] != labels[training[closest]]
    generator = np.random.default_rng(0)
    random_pairs = labels[generator.choice(clean, 5000)] != labels[generator.choice(training, 5000)]
    print(f"{dataset.root}: {len(clean)} duplicate-free test images")
    print(f"random (test, training) pairs of another class: {random_pairs.mean():.1%}")
    print("\n| hash distance to the closest training image | images | cumulative | other class |")
    print("|---|---:|---:|---:|")
    counts, _ = np.histogram(distance, bins=BANDS)
    for low, high, count in zip(BANDS[:-1], BANDS[1:], np.cumsum(counts), strict=True):
        inside = (distance >= low) & (distance < high)
        share = f"{other_by_hash[inside].mean():.1%}" if inside.any() else "-"
        print(f"| {low} - {high - 1} | {int(inside.sum())} | {count} | {share} |")
    print("\n| descriptor distance to the closest training image | images | other class |")
    print("|---|---:|---:|")
    for low, high in itertools.pairwise(DESCRIPTOR_BANDS):
        inside = (descriptor_distance >= low) & (descriptor_distance < high)
        share = f"{other_by_descriptor[inside].mean():.1%}" if inside.any() else "-"
        print(f"| {low} - {high} | {int(inside.sum())} | {share} |")
    related = (distance <= scan_level.SCAN_HASH_THRESHOLD) | (
        descriptor_distance <= scan_level.SCAN_DESCRIPTOR_THRESHOLD
    )
    print(f"\nunseen-scan test at the chosen thresholds: {int((~related).sum())} images")
    if arguments.sheets:
        arguments.sheets.mkdir(parents=True, exist_ok=True)
        generator = np.random.default_rng(0)
        for low, high in itertools.pairwise(BANDS):
            members = np.flatnonzero((distance >= low) & (distance < high))
            if len(members) == 0:
                continue
            chosen = generator.choice(members, size=min(8, len(members)), replace=False)
            pairs = [(int(clean[i]), int(training[nearest[i]]), float(distance[i])) for i in chosen]
            contact_sheet(dataset, pairs, arguments.sheets / f"hash-{low:02d}-{high - 1:02d}.png")
        print(f"\ncontact sheets in {arguments.sheets}")


if __name__ == "__main__":
    main()
