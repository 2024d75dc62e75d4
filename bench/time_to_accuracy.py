"""Time to accuracy of the fast CPU recipes, with official and duplicate-free test accuracy.

    python -m bench.time_to_accuracy [DATA_DIR] [--models cnn_fast mobilenet_v2]
        [--target 0.97] [--epochs N] [--set KEY=VALUE ...] [--quick]

Per model: its fast CPU recipe (`core.training.recipes.FAST_CPU_RECIPES`, the Train page's
default) is trained with `fit` exactly as the app does; printed are the wall time from launch (data
loading included) to the end of the first epoch whose validation accuracy reaches the target,
the training time, the best validation accuracy and, from the stored evaluation, the official
and duplicate-free test accuracy with their 95% intervals. Without DATA_DIR: the real dataset when
present, else the demo. --set overrides recipe options (`make_request`'s keyword arguments, e.g.
`--set freeze=none image_size=224 batch_size=128` for a GPU; `--set augment=flip+geometry`
names augmentation parts, `augment=none` none). --quick: demo data, 64 px, 1 epoch (CI smoke).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from core import paths
from core.config import AugmentConfig, augmentation
from core.data import synthetic
from core.evaluation.evaluate import evaluate_run, split_summary
from core.events import Events
from core.training.fit import fit
from core.training.recipes import AUTO, FAST_CPU_RECIPES
from core.training.request import make_request


def interval(summary: dict | None) -> str:
    """'97.1% [96.2, 97.9]' or 'n/a'."""
    if not summary:
        return "n/a"
    low, high = summary["accuracy_ci"]
    return f"{summary['accuracy']:.1%} [{low:.1%}, {high:.1%}]"


def parse_overrides(pairs: list[str]) -> dict[str, object]:
    """'image_size=224' -> {'image_size': 224}: ints, floats and booleans as such, else text."""
    overrides: dict[str, object] = {}
    for pair in pairs:
        key, separator, text = pair.partition("=")
        if not separator:
            raise SystemExit(f"error: --set takes KEY=VALUE, not {pair!r}")
        value: object = {"true": True, "false": False}.get(text.lower(), text)
        for kind in (int, float):
            try:
                value = kind(text)
                break
            except ValueError:
                continue
        overrides[key] = value
    return overrides


def describe(recipe: dict[str, object]) -> str:
    """'epochs 12, image_size 128, augment flip'."""
    shown = {
        key: value.label if isinstance(value, AugmentConfig) else value
        for key, value in recipe.items()
    }
    return ", ".join(f"{key} {value}" for key, value in shown.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path)
    parser.add_argument("--models", nargs="+", default=list(FAST_CPU_RECIPES))
    parser.add_argument("--target", type=float, help="validation accuracy (default 0.97)")
    parser.add_argument("--epochs", type=int, help="override the recipe's epochs")
    parser.add_argument(
        "--set", nargs="+", default=[], metavar="KEY=VALUE", help="override recipe options"
    )
    parser.add_argument("--quick", action="store_true", help="demo data, 64 px, 1 epoch")
    arguments = parser.parse_args()
    root = arguments.data_dir
    if arguments.quick:
        root = synthetic.generate_demo_dataset(paths.demo_dataset_dir())
        # Smoke runs must not land among the user's runs.
        os.environ[paths.CHECKPOINTS_ENV] = tempfile.mkdtemp(prefix="btw-bench-")
    elif root is None:
        real = paths.real_dataset_dir()
        root = real if (real / "Training").is_dir() else paths.demo_dataset_dir()
    print(f"data: {root}")
    print(
        "| model | recipe | target val | time to target s | training s | best val "
        "| official test [95% CI] | duplicate-free test [95% CI] |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    summaries = []
    for name in arguments.models:
        # Changes to the model's recipe (make_request starts from it with recipe="auto").
        recipe: dict = {}
        target = arguments.target or 0.97
        if arguments.epochs:
            recipe["epochs"] = arguments.epochs
        recipe.update(parse_overrides(arguments.set))
        if isinstance(recipe.get("augment"), str):
            parts = str(recipe["augment"])
            recipe["augment"] = augmentation([] if parts == "none" else parts.split("+"))
        if arguments.quick:
            recipe.update(epochs=1, image_size=64, subset_per_class=20)
        reached: list[float] = []
        events = Events()
        launched = time.perf_counter()

        def on_epoch(record: dict, reached: list[float] = reached, since: float = launched) -> None:
            if not reached and record["val_accuracy"] >= target:  # noqa: B023 - read at once
                reached.append(time.perf_counter() - since)

        events.add_callback("epoch", on_epoch)
        request = make_request(data_root=root, model=name, recipe=AUTO, **recipe)
        result = fit(request, events=events)
        evaluation = evaluate_run(result.run_id)
        test = split_summary(evaluation, "test")
        duplicate_free = split_summary(evaluation, "duplicate_free_test")
        to_target = f"{reached[0]:.0f}" if reached else "not reached"
        best = f"{result.val_accuracy:.1%}" if result.val_accuracy is not None else "n/a"
        options = describe({**FAST_CPU_RECIPES[name], **recipe})
        print(
            f"| {name} | {options} | {target:.0%} | {to_target} "
            f"| {result.train_seconds:.0f} | {best} | {interval(test)} "
            f"| {interval(duplicate_free)} |"
        )
        summaries.append(
            f"{name}: official test {interval(test)} after {result.train_seconds:.0f} s "
            f"of training (run {result.run_id})"
        )
    print("summary: " + "; ".join(summaries))


if __name__ == "__main__":
    main()
