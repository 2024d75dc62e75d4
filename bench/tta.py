"""Test-time augmentation (the image and its mirror, ttach): what it buys in accuracy and
costs in latency, per run.

    python -m bench.tta RUN [RUN...] [--repeats 20]

For each run: official, duplicate-free and unseen-scan test accuracy (with bootstrap 95%
intervals) of the plain model (its stored evaluation) and with TTA (computed, not stored), and
the median latency of one `predict` on a real test image with and without TTA, on this machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

from core.evaluation.evaluate import STRICTER_SPLITS, evaluate_run, load_predictions
from core.evaluation.run_selection import dataset_root
from core.imaging.reader import read_image
from core.inference.predictor import Predictor
from core.runs.registry import resolve_run

SPLITS = ("test", *STRICTER_SPLITS)


def latency_ms(predictor: Predictor, pixels, repeats: int) -> float:
    """Median milliseconds of one predict (a warm-up call first)."""
    predictor.predict(pixels)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predictor.predict(pixels)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--repeats", type=int, default=20)
    arguments = parser.parse_args()
    for run in arguments.runs:
        info = resolve_run(run)
        plain, flipped = evaluate_run(run), evaluate_run(run, tta=True)
        print(f"{info.run_id} ({info.model_name})")
        for split in SPLITS:
            a, b = plain.split(split), flipped.split(split)
            if a is None or b is None:
                continue
            print(
                f"  {split:>20}: n={a.n}  plain {a.accuracy:.1%} [{a.accuracy_ci[0]:.1%}, "
                f"{a.accuracy_ci[1]:.1%}]  TTA {b.accuracy:.1%} [{b.accuracy_ci[0]:.1%}, "
                f"{b.accuracy_ci[1]:.1%}]  ({(b.accuracy - a.accuracy) * 100:+.1f} points)"
            )
        predictions = load_predictions(info)
        path = predictions[predictions["in_test"].astype(bool)]["path"].iloc[0]
        pixels = read_image(dataset_root(info) / path).pixels
        plain_ms = latency_ms(Predictor.from_run(run), pixels, arguments.repeats)
        tta_ms = latency_ms(Predictor.from_run(run, tta=True), pixels, arguments.repeats)
        print(
            f"  latency of one predict: plain {plain_ms:.1f} ms, TTA {tta_ms:.1f} ms "
            f"({tta_ms / plain_ms:.2f}x)"
        )


if __name__ == "__main__":
    main()
