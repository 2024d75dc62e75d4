"""Record what each recipe measured, for the Train page to show before a launch.

    python -m bench.recipe_records RUN [RUN...]      # runs of one or more unchanged recipes
    python -m bench.recipe_records --show            # print the stored records

Groups the runs by the recipe their config.json names (a run that changed an option of its
recipe is refused), then writes each recipe's record into core/training/recipe_records.json:
official, duplicate-free and unseen-scan test accuracy, accuracy under the worst moderate
stress shift, external sets where stored, and training time (several runs of one recipe, e.g.
a study's seeds: their mean and range). Evaluate (`python -m core evaluate`) and stress-test
(`python -m core stress`) the runs first.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

from core.runs.registry import RunError, resolve_run
from core.training.recipe_records import (
    RECORDS_PATH,
    RecipeMeasurement,
    load_recipe_records,
    measure_recipe,
    save_recipe_records,
)


def describe(record: RecipeMeasurement) -> str:
    """One line per recipe: its headline numbers."""
    scores = ", ".join(f"{split} {value.value:.1%}" for split, value in record.scores.items())
    worst = f"{record.worst_shift.value:.1%}" if record.worst_shift else "not stress-tested"
    return (
        f"{record.recipe}: {scores}; worst moderate shift {worst}; "
        f"{record.train_seconds.value:.0f} s; {record.seeds} run(s), {record.measured_on}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", help="run ids of unchanged recipes")
    parser.add_argument("--show", action="store_true", help="print the stored records")
    arguments = parser.parse_args()
    if arguments.show or not arguments.runs:
        for record in load_recipe_records().values():
            print(describe(record))
        return
    by_recipe = defaultdict(list)
    for run_id in arguments.runs:
        try:
            info = resolve_run(run_id)
        except RunError as error:
            parser.error(str(error))
        by_recipe[info.config.recipe.name if info.config else None].append(info)
    try:
        measurements = [measure_recipe(infos) for infos in by_recipe.values()]
    except ValueError as error:
        parser.error(str(error))
    save_recipe_records(measurements)
    for record in measurements:
        print(describe(record))
    print(f"written to {RECORDS_PATH}")


if __name__ == "__main__":
    main()
