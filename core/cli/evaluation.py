"""`python -m core evaluate`, `compare` and `stress`: honest metrics from a shell."""

from __future__ import annotations

import argparse
import json
from typing import Any

from core.imaging.shifts import SHIFTS

SPLIT_CHOICES = {"val": "val", "test": "test", "leak-free": "leak_free_test"}


def _percent_with_interval(summary: dict[str, Any] | None, key: str) -> str:
    if not summary or summary.get(key) is None:
        return "n/a"
    low, high = summary.get(f"{key}_ci") or (None, None)
    interval = f" [{low:.1%}, {high:.1%}]" if low is not None else ""
    return f"{summary[key]:.1%}{interval}"


def command_evaluate(arguments: argparse.Namespace) -> int:
    """Metrics of one run on validation, official test and leak-free test, side by side."""
    from core.cli.progress import progress_events
    from core.evaluation.evaluate import SPLIT_LABELS, SPLITS, evaluate_run, split_summary

    evaluation = evaluate_run(
        arguments.run, force=arguments.force, events=progress_events(not arguments.json)
    )
    wanted = SPLITS if arguments.split == "all" else (SPLIT_CHOICES[arguments.split],)
    summaries = {split: split_summary(evaluation, split) for split in wanted}
    if arguments.json:
        print(json.dumps(summaries, indent=2))
        return 0
    print(f"run {arguments.run} (audit threshold {evaluation.audit_threshold})")
    if not evaluation.split_matches_training:
        print("  warning: the dataset's split differs from the one the run trained with")
    for split, summary in summaries.items():
        if summary is None:
            print(f"  {SPLIT_LABELS[split]:>15}: no images")
            continue
        calibration = summary.get("temperature_scaled")
        scaled = (
            f", after temperature {calibration['temperature']:.2f}: {calibration['ece_after']:.3f}"
            if calibration
            else ""
        )
        print(
            f"  {SPLIT_LABELS[split]:>15}: n={summary['n']}  accuracy "
            f"{_percent_with_interval(summary, 'accuracy')}  macro-F1 "
            f"{_percent_with_interval(summary, 'macro_f1')}  MCC {summary['mcc']:.3f}  "
            f"ECE {summary['ece']:.3f}{scaled}"
        )
    return 0


def command_compare(arguments: argparse.Namespace) -> int:
    """Runs side by side on the same images, with McNemar's test for every pair."""
    from core.cli.progress import progress_events
    from core.evaluation.comparison import compare
    from core.evaluation.evaluate import SPLIT_LABELS, evaluate_run
    from core.runs.registry import resolve_run

    if len(arguments.runs) < 2:
        raise ValueError("compare needs at least two runs")
    for run in arguments.runs:
        evaluate_run(run, events=progress_events(not arguments.json))  # stored after the first
    infos = [resolve_run(run) for run in arguments.runs]
    result = compare(infos)
    if arguments.json:
        print(json.dumps(result, indent=2))
        return 0
    print("| run | model | test accuracy | leak-free test accuracy | train s | parameters |")
    print("|---|---|---|---|---:|---:|")
    for row in result["runs"]:
        seconds = f"{row['train_seconds']:.0f}" if row["train_seconds"] is not None else "?"
        parameters = f"{row['parameters']:,}" if row["parameters"] is not None else "?"
        print(
            f"| {row['run']} | {row['model']} | "
            f"{_percent_with_interval(row['test'], 'accuracy')} | "
            f"{_percent_with_interval(row['leak_free_test'], 'accuracy')} | "
            f"{seconds} | {parameters} |"
        )
    for test in result["paired_tests"]:
        print(
            f"McNemar, {SPLIT_LABELS[test['split']]}: {test['a']} vs {test['b']}: "
            f"A-only right {test['a_only']}, B-only right {test['b_only']}, "
            f"p = {test['p_value']:.3g} ({test['method']})"
        )
    return 0


def command_stress(arguments: argparse.Namespace) -> int:
    """Accuracy of one run on its duplicate-free test images under each shift and severity."""
    from dataclasses import asdict

    from core.cli.progress import progress_events
    from core.evaluation.stress import stress_run

    record = stress_run(
        arguments.run,
        shifts=arguments.shifts,
        force=arguments.force,
        events=progress_events(not arguments.json),
    )
    if arguments.json:
        print(json.dumps(asdict(record), indent=2))
        return 0
    print(
        f"run {arguments.run}: accuracy on {record.n} duplicate-free test images, "
        "per shift and severity (the first severity is the unshifted image)"
    )
    for name, points in record.shifts.items():
        if arguments.shifts and name not in arguments.shifts:
            continue
        scores = "  ".join(
            f"{point.severity:g}: {point.accuracy:.1%}" if point.accuracy is not None else "n/a"
            for point in points
        )
        print(f"  {name:>16}  {scores}")
    return 0


def add_evaluation_commands(commands: argparse._SubParsersAction) -> None:
    """Register `evaluate`, `compare` and `stress` on the CLI's subcommand parser."""
    evaluate = commands.add_parser(
        "evaluate", help="metrics on validation, official test and leak-free test"
    )
    evaluate.add_argument("run", metavar="RUN_ID_OR_DIR")
    evaluate.add_argument("--split", choices=[*SPLIT_CHOICES, "all"], default="all")
    evaluate.add_argument("--force", action="store_true", help="recompute a stored evaluation")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    evaluate.set_defaults(handler=command_evaluate)

    compare = commands.add_parser("compare", help="runs side by side, McNemar for every pair")
    compare.add_argument("runs", nargs="+", metavar="RUN_ID_OR_DIR")
    compare.add_argument("--json", action="store_true", help="print one JSON object")
    compare.set_defaults(handler=command_compare)

    stress = commands.add_parser(
        "stress", help="accuracy under scanner-like shifts (rotation, noise, blur, ...)"
    )
    stress.add_argument("run", metavar="RUN_ID_OR_DIR")
    stress.add_argument(
        "--shifts", nargs="+", choices=list(SHIFTS), metavar="SHIFT",
        help=f"shifts to test (default all): {' '.join(SHIFTS)}",
    )  # fmt: skip
    stress.add_argument("--force", action="store_true", help="recompute stored results")
    stress.add_argument("--json", action="store_true", help="print one JSON object")
    stress.set_defaults(handler=command_stress)
