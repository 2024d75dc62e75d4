"""How the near-duplicate threshold was chosen: distances on a real dataset, and pairs to look at.

    python -m bench.audit_threshold DATA_DIR [--sheets DIR] [--quick]

Prints the histogram of each image's distance to its most similar other image, the audit's
counts at several thresholds, and (with --sheets) writes one contact sheet per distance band:
rows of `image | nearest image | absolute difference`, to judge by eye where "the same slice"
ends and "a neighbouring slice" begins. --quick uses the synthetic demo dataset.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from core import paths
from core.data import audit, synthetic
from core.data.index import Dataset, open_dataset
from core.imaging.pixels import resize_square
from core.imaging.reader import read_image

BANDS = [0.0, 1e-4, 0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 2.0]
THRESHOLDS = [0.0, 0.02, 0.03, 0.05, 0.075, 0.1]


def contact_sheet(dataset: Dataset, pairs: list[tuple[int, int, float]], path: Path) -> None:
    """Write rows of (image, its nearest neighbour, absolute difference) as one PNG."""
    rows = []
    for first, second, distance in pairs:
        left, right = (
            resize_square(
                read_image(dataset.root / dataset.frame["path"].iloc[position]).pixels, 160
            )
            for position in (first, second)
        )
        row = np.concatenate([left, right, cv2.absdiff(left, right)], axis=1)
        names = dataset.frame["path"].iloc[[first, second]].tolist()
        caption = f"{distance:.4f} {names[0]} | {names[1]}"
        rows.append(cv2.putText(row, caption[:70], (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.33, 255, 1))
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


def nearest_pairs(candidates: audit.AuditCandidates) -> dict[int, tuple[int, float]]:
    """Each image's closest candidate partner."""
    best: dict[int, tuple[int, float]] = {}
    for first, second, distance in zip(
        candidates.first, candidates.second, candidates.distance, strict=True
    ):
        for here, there in ((int(first), int(second)), (int(second), int(first))):
            if here not in best or distance < best[here][1]:
                best[here] = (there, float(distance))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", default=str(paths.real_dataset_dir()))
    parser.add_argument("--sheets", type=Path, help="folder for one contact sheet per band")
    parser.add_argument("--quick", action="store_true", help="use the synthetic demo dataset")
    arguments = parser.parse_args()
    root = (
        synthetic.generate_demo_dataset(paths.demo_dataset_dir())
        if arguments.quick
        else Path(arguments.data_dir)
    )
    dataset = open_dataset(root)
    candidates = audit.load_candidates(dataset)
    counts, _ = np.histogram(candidates.nearest_distance, bins=BANDS)
    print(f"{dataset.root}: {len(dataset.frame)} images")
    print("| nearest-neighbour distance | images |\n|---|---:|")
    for low, high, count in zip(BANDS[:-1], BANDS[1:], counts, strict=True):
        print(f"| {low:.4f} - {high:.4f} | {count} |")
    print("\n| threshold | exact copy in training | near copy | duplicate-free test |")
    print("|---:|---:|---:|---:|")
    for threshold in THRESHOLDS:
        summary = audit.summarize(dataset, audit.build_report(dataset, candidates, threshold))
        exact, near = summary["exact_cross_split"], summary["near_cross_split"]
        print(f"| {threshold} | {exact} | {near} | {summary['duplicate_free_test']} |")
    if arguments.sheets:
        arguments.sheets.mkdir(parents=True, exist_ok=True)
        best = nearest_pairs(candidates)
        generator = np.random.default_rng(0)
        for low, high in itertools.pairwise(BANDS[2:11]):
            members = [image for image, (_, distance) in best.items() if low <= distance < high]
            chosen = (
                generator.choice(members, min(8, len(members)), replace=False) if members else []
            )
            pairs = [(int(image), best[int(image)][0], best[int(image)][1]) for image in chosen]
            if pairs:
                contact_sheet(dataset, pairs, arguments.sheets / f"band_{low:.3f}-{high:.3f}.png")
        print(f"\ncontact sheets in {arguments.sheets}")


if __name__ == "__main__":
    main()
