"""What each recipe was measured to give: the record the Train page shows before a launch.

A record is computed from runs of the recipe as it is (config.json names the recipe and no
changed option but the seeds), evaluated and stress-tested on the real dataset, by
`python -m bench.recipe_records RUN...`; it is kept in `recipe_records.json` beside this module
and read here. Nothing in it is typed by hand: change a recipe, train it, record it again.

With one run a score's range is its bootstrap 95% interval; with several (seeds) it is the
lowest and highest run, and the score their mean.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.atomic_files import read_json, write_json_atomic
from core.evaluation.external import stored_externals
from core.evaluation.run_selection import report_of
from core.evaluation.stress import moderate_shift_accuracies
from core.runs.registry import RunInfo

RECORDS_PATH = Path(__file__).with_name("recipe_records.json")
RECORD_SPLITS = ("test", "duplicate_free_test", "unseen_scan_test")
# A recipe run over several seeds (a study's cells) changes only these: still the recipe.
SEED_OPTIONS = {"seed", "split_seed"}


@dataclass(frozen=True)
class MeasuredValue:
    """One measured number and its range (bootstrap 95% interval, or lowest and highest run)."""

    value: float
    low: float | None = None
    high: float | None = None
    images: int | None = None  # test images behind an accuracy


@dataclass(frozen=True)
class RecipeMeasurement:
    """What runs of one unchanged recipe gave."""

    recipe: str
    model: str
    runs: tuple[str, ...]
    dataset: str  # the dataset folder's name
    dataset_fingerprint: str | None
    measured_on: str  # date the runs were made, YYYY-MM-DD
    device: str | None
    scores: dict[str, MeasuredValue]  # per split of RECORD_SPLITS that every run has
    worst_shift: MeasuredValue | None  # accuracy under its worst moderate stress shift
    worst_shift_names: tuple[str, ...]  # which shift that was, per run
    train_seconds: MeasuredValue
    external: dict[str, MeasuredValue] = field(default_factory=dict)  # empty: none measured

    @property
    def seeds(self) -> int:
        """How many runs (seeds) the record averages."""
        return len(self.runs)


def _over_runs(
    values: Sequence[float], interval: tuple[float, float] | None = None
) -> MeasuredValue:
    """The mean of `values`, with their range; one value keeps its own interval."""
    if len(values) == 1:
        low, high = interval or (None, None)
        return MeasuredValue(values[0], low, high)
    return MeasuredValue(statistics.fmean(values), min(values), max(values))


def _check_runs(infos: Sequence[RunInfo]) -> str:
    """The one recipe every run used unchanged; ValueError otherwise."""
    if not infos:
        raise ValueError("give at least one run of the recipe")
    recipes = set()
    for info in infos:
        config = info.config
        if config is None or info.status != "completed" or info.metrics is None:
            raise ValueError(f"run {info.run_id} is not a completed run")
        if config.recipe.name is None:
            raise ValueError(f"run {info.run_id} used no recipe (plain defaults)")
        changed = sorted(set(config.recipe.changed) - SEED_OPTIONS)
        if changed:
            raise ValueError(
                f"run {info.run_id} changed its recipe ({', '.join(changed)}): not the recipe"
            )
        if report_of(info, "test") is None:
            raise ValueError(f"run {info.run_id} is not evaluated (python -m core evaluate)")
        recipes.add(config.recipe.name)
    if len(recipes) > 1:
        raise ValueError(f"the runs used different recipes: {', '.join(sorted(recipes))}")
    fingerprints = {info.config.dataset.fingerprint for info in infos if info.config}
    if len(fingerprints) > 1:
        raise ValueError("the runs were trained on different datasets")
    return recipes.pop()


def measure_recipe(infos: Sequence[RunInfo]) -> RecipeMeasurement:
    """The record of the recipe the runs share (ValueError when they do not share one)."""
    recipe = _check_runs(infos)
    first = infos[0].config
    assert first is not None  # checked above
    scores = {}
    for split in RECORD_SPLITS:
        reports = [report_of(info, split) for info in infos]
        accuracies = [report.accuracy for report in reports if report and report.accuracy]
        if len(accuracies) == len(infos):
            single = reports[0].accuracy_ci if len(infos) == 1 and reports[0] else None
            measured = _over_runs(accuracies, single)
            scores[split] = MeasuredValue(
                measured.value, measured.low, measured.high, images=reports[0].n
            )
    shifted = [moderate_shift_accuracies(info) for info in infos]
    worst_names = tuple(min(scores_, key=scores_.__getitem__) for scores_ in shifted if scores_)
    worst = (
        _over_runs([min(scores_.values()) for scores_ in shifted])
        if len(worst_names) == len(infos)
        else None
    )
    external: dict[str, MeasuredValue] = {}
    for name in stored_externals(infos[0]):
        reports = [stored_externals(info).get(name) for info in infos]
        accuracies = [r.report.accuracy for r in reports if r and r.report and r.report.accuracy]
        if len(accuracies) == len(infos):
            external[name] = _over_runs(accuracies)
    seconds = [info.metrics.train_seconds for info in infos if info.metrics]
    return RecipeMeasurement(
        recipe=recipe,
        model=first.model.name,
        runs=tuple(info.run_id for info in infos),
        dataset=Path(first.dataset.root or first.data.root).name,
        dataset_fingerprint=first.dataset.fingerprint,
        measured_on=min(
            (info.created_at.date().isoformat() for info in infos if info.created_at), default="?"
        ),
        device=first.device.name,
        scores=scores,
        worst_shift=worst,
        worst_shift_names=worst_names,
        train_seconds=_over_runs([value for value in seconds if value is not None]),
        external=external,
    )


def _value(payload: Any) -> MeasuredValue | None:
    if not isinstance(payload, dict) or not isinstance(payload.get("value"), int | float):
        return None
    return MeasuredValue(
        float(payload["value"]), payload.get("low"), payload.get("high"), payload.get("images")
    )


def _measurement(payload: dict[str, Any]) -> RecipeMeasurement:
    scores = {split: _value(value) for split, value in (payload.get("scores") or {}).items()}
    external = {name: _value(value) for name, value in (payload.get("external") or {}).items()}
    train_seconds = _value(payload.get("train_seconds"))
    if train_seconds is None:
        raise ValueError("no training time")
    return RecipeMeasurement(
        recipe=str(payload["recipe"]),
        model=str(payload["model"]),
        runs=tuple(payload.get("runs") or ()),
        dataset=str(payload.get("dataset") or "?"),
        dataset_fingerprint=payload.get("dataset_fingerprint"),
        measured_on=str(payload.get("measured_on") or "?"),
        device=payload.get("device"),
        scores={split: value for split, value in scores.items() if value is not None},
        worst_shift=_value(payload.get("worst_shift")),
        worst_shift_names=tuple(payload.get("worst_shift_names") or ()),
        train_seconds=train_seconds,
        external={name: value for name, value in external.items() if value is not None},
    )


def load_recipe_records(path: Path | None = None) -> dict[str, RecipeMeasurement]:
    """Every recipe's record by recipe name (from RECORDS_PATH by default); a missing file or a
    damaged entry is left out (the Train page then says the recipe is not measured, never shows
    a made-up number)."""
    payload = read_json(path or RECORDS_PATH)
    records = {}
    for name, entry in (payload if isinstance(payload, dict) else {}).items():
        try:
            records[name] = _measurement(entry)
        except (KeyError, TypeError, ValueError):
            continue
    return records


def save_recipe_records(
    measurements: Sequence[RecipeMeasurement], path: Path | None = None
) -> dict[str, RecipeMeasurement]:
    """Store `measurements` over the records already there (one per recipe); all records."""
    records = load_recipe_records(path) | {item.recipe: item for item in measurements}
    payload = {name: asdict(records[name]) for name in sorted(records)}
    write_json_atomic(path or RECORDS_PATH, payload)
    return records
