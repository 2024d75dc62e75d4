"""Which runs the Compare view lists, filters and picks by default, and how it labels them.

Plain pandas over run records: every function tolerates damaged runs (they are left out or
shown as such, never raised).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from core.evaluation.evaluate import SPLIT_LABELS, stored_evaluation
from core.evaluation.external import stored_externals
from core.runs.metrics_records import SplitReport
from core.runs.registry import RunInfo


def short_label(info: RunInfo) -> str:
    """The user's name for the run, else what it is and when: 'cnn_fast robust · 12-01 12:16'
    (a timestamp id such as 20261201T121611Z_cnn_fast_7f76a7 crowds every legend)."""
    if info.name or info.config is None or info.created_at is None:
        return info.display_name
    recipe = info.config.recipe
    kind = info.config.model.name
    if recipe.name and recipe.name.endswith("_robust"):
        kind += " robust"
    if recipe.name is None or set(recipe.changed) - {"seed", "split_seed", "subset_per_class"}:
        kind += " custom"
    if info.config.study is not None:
        kind += f" seed {info.config.train.seed}" if info.config.train else ""
    return f"{kind} · {info.created_at:%m-%d %H:%M}"


def run_labels(infos: Sequence[RunInfo]) -> dict[str, str]:
    """A short, unique label per run id (`short_label`), with the id's tail when labels clash."""
    labels = [short_label(info) for info in infos]
    return {
        info.run_id: label if labels.count(label) == 1 else f"{label} [{info.run_id[-6:]}]"
        for info, label in zip(infos, labels, strict=True)
    }


EXTERNAL_PREFIX = "external:"
"""Scores on external set NAME go by the split key 'external:NAME' beside the run's own splits."""


def report_of(info: RunInfo, split: str) -> SplitReport | None:
    """The run's scores on `split` (or 'external:NAME'), or None when it has none there."""
    if split.startswith(EXTERNAL_PREFIX):
        record = stored_externals(info).get(split.removeprefix(EXTERNAL_PREFIX))
        return record.report if record else None
    evaluation = stored_evaluation(info)
    return evaluation.split(split) if evaluation else None


def split_label(split: str) -> str:
    """'official test', 'duplicate-free test', ... or 'external: NAME'."""
    if split.startswith(EXTERNAL_PREFIX):
        return f"external: {split.removeprefix(EXTERNAL_PREFIX)}"
    return SPLIT_LABELS.get(split, split)


def external_splits(infos: Iterable[RunInfo]) -> list[str]:
    """The 'external:NAME' keys of every external set any of the runs was scored on."""
    names = {name for info in infos for name in stored_externals(info)}
    return [EXTERNAL_PREFIX + name for name in sorted(names)]


def class_names(info: RunInfo) -> list[str]:
    """The run's classes, in label order."""
    evaluation = stored_evaluation(info)
    if evaluation and evaluation.classes:
        return list(evaluation.classes)
    return list(info.config.classes) if info.config else []


def filter_options(table: pd.DataFrame, column: str) -> list[str]:
    """The distinct values a filter offers (tags are split on commas)."""
    if column == "tags":
        values = {tag.strip() for text in table["tags"].dropna() for tag in str(text).split(",")}
    else:
        values = {str(value) for value in table[column].dropna()}
    return sorted(value for value in values if value)


def filter_runs(
    table: pd.DataFrame,
    *,
    models: Iterable[str] = (),
    statuses: Iterable[str] = (),
    tags: Iterable[str] = (),
) -> pd.DataFrame:
    """Rows matching every non-empty filter (a run matches a tag filter by any of its tags)."""
    models, statuses, tags = set(models), set(statuses), set(tags)
    keep = pd.Series(True, index=table.index)
    if models:
        keep &= table["model"].astype(str).isin(models)
    if statuses:
        keep &= table["status"].astype(str).isin(statuses)
    if tags:
        run_tags = table["tags"].fillna("").map(lambda text: {t.strip() for t in text.split(",")})
        keep &= run_tags.map(lambda owned: bool(owned & tags))
    return table[keep]


def comparable_runs(infos: Sequence[RunInfo]) -> list[str]:
    """Ids of the runs with something to plot: a training history or an evaluation."""
    return [
        info.run_id
        for info in infos
        if info.config is not None and (info.history or stored_evaluation(info) is not None)
    ]


def default_selection(table: pd.DataFrame, choices: Sequence[str], count: int = 2) -> list[str]:
    """Up to `count` best runs: by official test accuracy when evaluated, else best validation."""
    rows = table[table["run"].isin(choices)]
    tested = rows.dropna(subset=["test_accuracy"])
    ranked = list(tested.sort_values("test_accuracy", ascending=False, kind="stable")["run"])
    rest = rows[~rows["run"].isin(ranked)].dropna(subset=["best_val_accuracy"])
    ranked += list(rest.sort_values("best_val_accuracy", ascending=False, kind="stable")["run"])
    return ranked[:count]


def evaluated_ids(infos: Sequence[RunInfo]) -> list[str]:
    """Ids of the runs with a stored evaluation."""
    return [info.run_id for info in infos if stored_evaluation(info) is not None]


def pair_defaults(selected: Sequence[str], evaluated: Sequence[str]) -> tuple[int, int]:
    """Positions in `evaluated` of the default runs A and B (the first selected, else the top)."""
    picks = [run_id for run_id in selected if run_id in evaluated][:2]
    picks += [run_id for run_id in evaluated if run_id not in picks][: 2 - len(picks)]
    return evaluated.index(picks[0]), evaluated.index(picks[-1])


def evaluation_candidates(infos: Sequence[RunInfo]) -> list[RunInfo]:
    """Completed, undamaged runs with weights that have no stored evaluation yet."""
    return [info for info in infos if info.usable and stored_evaluation(info) is None]


def dataset_root(info: RunInfo) -> Path | None:
    """The run's dataset folder when it is on this machine."""
    root = Path(info.config.data.root) if info.config else None
    return root if root is not None and root.is_dir() else None
