"""The one-line answer at the top of Compare: which of the selected runs is better, on which
test split, by how many points, and whether McNemar's paired test says it is more than chance.

With more than two runs the line compares the best two by official test accuracy (every pair
is in the paired-tests table further down). The stress test's worst moderate shift is added
when both runs have one; it has no paired test, since only its accuracies are stored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from core.evaluation.comparison import PAIRED_SPLITS, SIGNIFICANCE, paired_test
from core.evaluation.evaluate import SPLIT_LABELS
from core.evaluation.run_selection import report_of
from core.evaluation.stress import moderate_shift_scores
from core.runs.registry import RunInfo


def _accuracy(info: RunInfo, split: str) -> float | None:
    report = report_of(info, split)
    return report.accuracy if report else None


def ranked_for_verdict(infos: Sequence[RunInfo]) -> list[RunInfo]:
    """The evaluated runs, best official test accuracy first."""
    scored = [info for info in infos if _accuracy(info, "test") is not None]
    return sorted(scored, key=lambda info: -(_accuracy(info, "test") or 0.0))


def _p_value(a: RunInfo, b: RunInfo, split: str) -> float | None:
    try:
        result = paired_test(a, b, split)
    except (KeyError, ValueError):  # a predictions.csv with missing or odd columns
        return None
    return result["p_value"] if result else None


def _clause(a: RunInfo, b: RunInfo, split: str) -> str | None:
    """'ahead on the official test by 1.3 points (99.2% vs 97.9%, McNemar p = 0.004)'."""
    first, second = _accuracy(a, split), _accuracy(b, split)
    if first is None or second is None:
        return None
    points = (first - second) * 100
    standing = "level" if round(points, 1) == 0 else "ahead" if points > 0 else "behind"
    p_value = _p_value(a, b, split)
    if p_value is None:
        test = "no paired test: different images"
    elif p_value < SIGNIFICANCE:
        test = f"McNemar p = {p_value:.2g}"
    else:
        test = f"McNemar p = {p_value:.2g}: could be chance"
    return (
        f"{standing} on the {SPLIT_LABELS[split]} by {abs(points):.1f} points "
        f"({first:.1%} vs {second:.1%}, {test})"
    )


def verdict_line(infos: Sequence[RunInfo], labels: Mapping[str, str]) -> str | None:
    """One line comparing the best two evaluated runs of `infos` (None: fewer than two)."""
    ranked = ranked_for_verdict(infos)
    if len(ranked) < 2:
        return None
    a, b = ranked[:2]
    clauses = [clause for split in PAIRED_SPLITS if (clause := _clause(a, b, split)) is not None]
    first = moderate_shift_scores(a)["stress_worst_accuracy"]
    second = moderate_shift_scores(b)["stress_worst_accuracy"]
    if first is not None and second is not None:
        clauses.append(f"{first:.1%} vs {second:.1%} under each one's worst moderate shift")
    lead = f"**{labels[a.run_id]}** against **{labels[b.run_id]}**: "
    if len(ranked) > 2:
        lead = f"Best two of {len(ranked)} evaluated runs: " + lead
    if not clauses:
        return None
    return lead + "; ".join(clauses) + "."
