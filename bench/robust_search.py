"""How the robust recipes were chosen: train a variant, then score it under the stress shifts
on the validation images (what the choice was made by) and on the duplicate-free test images
(what is reported).

    python -m bench.robust_search --model cnn_fast --epochs 18 --augment '{"share": 0.6, ...}'
    python -m bench.robust_search --model cnn_fast --recipe robust --image-size 112
    python -m bench.robust_search --run RUN_ID      # score a run that exists

--augment is a JSON object of `core.config.AugmentConfig` fields; the other options are the
model's fast recipe (`--recipe robust`: its robust one). Prints the validation accuracy
unshifted and under each shift at its moderate severity, the run's evaluation (official,
duplicate-free and unseen-scan test, with balanced accuracy), and its stress test at every
severity. Uses the real dataset
(`--data`, default ../shared/datasets/brain-tumor-mri).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from core.config import AugmentConfig
from core.evaluation.evaluate import STRICTER_SPLITS, evaluate_run, evaluation_sets, split_summary
from core.evaluation.stress import stress_run
from core.imaging.reader import read_image
from core.imaging.shifts import SHIFTS, apply_shift
from core.inference.predictor import Predictor
from core.runs.registry import resolve_run
from core.training.fit import fit
from core.training.request import make_request

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "brain-tumor-mri"
BATCH = 64


def validation_under_shifts(run_id: str) -> dict[str, float]:
    """Accuracy on the run's validation images, unshifted and under each shift at moderate
    severity (seeded per image, other seeds than the stress test's)."""
    info = resolve_run(run_id)
    assert info.config is not None
    sets = evaluation_sets(info.config)
    positions = sets.positions["val"]
    frame, root = sets.data.dataset.frame, sets.data.dataset.root
    images = [read_image(root / frame["path"].iat[int(p)]).pixels for p in positions]
    labels = sets.data.labels.numpy()[positions]
    predictor = Predictor.from_run(info.path, purpose="evaluate")

    def accuracy(batch: list[np.ndarray]) -> float:
        predicted = np.concatenate(
            [
                predictor.probabilities(batch[start : start + BATCH]).argmax(axis=1)
                for start in range(0, len(batch), BATCH)
            ]
        )
        return float((predicted == labels).mean())

    scores = {"unshifted": accuracy(images)}
    for name, shift in SHIFTS.items():
        shifted = [
            apply_shift(image, name, shift.moderate, seed=10_000 + index)
            for index, image in enumerate(images)
        ]
        scores[name] = accuracy(shifted)
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="score this run instead of training one")
    parser.add_argument("--model", default="cnn_fast")
    parser.add_argument("--epochs", type=int)
    parser.add_argument(
        "--augment", help="AugmentConfig fields as JSON (default: the recipe's augmentation)"
    )
    parser.add_argument("--recipe", default="auto", help="the recipe changed from: auto, robust")
    parser.add_argument("--image-size", type=int, help="default: the recipe's")
    parser.add_argument("--data", type=Path, default=REAL_DATA)
    arguments = parser.parse_args()
    run_id = arguments.run
    if run_id is None:
        changes: dict[str, object] = {}
        if arguments.augment is not None:
            changes["augment"] = AugmentConfig(**json.loads(arguments.augment))
        if arguments.epochs:
            changes["epochs"] = arguments.epochs
        if arguments.image_size:
            changes["image_size"] = arguments.image_size
        request = make_request(
            data_root=arguments.data, model=arguments.model, recipe=arguments.recipe, **changes
        )
        result = fit(request)
        run_id = result.run_id
        print(f"trained {run_id} ({result.status}) in {result.train_seconds:.0f} s")
    validation = validation_under_shifts(run_id)
    worst = min((name for name in SHIFTS), key=validation.__getitem__)
    print(
        "validation, moderate severity: "
        + ", ".join(f"{name} {value:.1%}" for name, value in validation.items())
        + f"; worst {worst} {validation[worst]:.1%}"
    )
    evaluation = evaluate_run(run_id)
    for split in ("test", *STRICTER_SPLITS):
        summary = split_summary(evaluation, split)
        if summary:
            low, high = summary["accuracy_ci"]
            print(
                f"{split}: n={summary['n']} accuracy {summary['accuracy']:.1%} "
                f"[{low:.1%}, {high:.1%}] balanced {summary['balanced_accuracy']:.1%}"
            )
    stress = stress_run(run_id, bootstrap_samples=0)
    moderate = {
        name: next(p.accuracy for p in points if p.severity == SHIFTS[name].moderate)
        for name, points in stress.shifts.items()
    }
    for name, points in stress.shifts.items():
        severities = "  ".join(f"{p.severity:g}: {p.accuracy:.1%}" for p in points)
        print(f"  {name:>16}  {severities}")
    worst_test = min(moderate, key=moderate.__getitem__)
    print(
        f"duplicate-free test, worst at moderate severity: {worst_test} {moderate[worst_test]:.1%}"
    )


if __name__ == "__main__":
    main()
