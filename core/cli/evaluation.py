"""`python -m core evaluate`, `compare` and `stress`: honest metrics from a shell."""

from __future__ import annotations

import argparse
import json
from typing import Any

from core.imaging.shifts import SHIFTS

SPLIT_CHOICES = {
    "val": "val",
    "test": "test",
    "duplicate-free": "duplicate_free_test",
    "unseen-scan": "unseen_scan_test",
}


def _percent_with_interval(summary: dict[str, Any] | None, key: str) -> str:
    if not summary or summary.get(key) is None:
        return "n/a"
    low, high = summary.get(f"{key}_ci") or (None, None)
    interval = f" [{low:.1%}, {high:.1%}]" if low is not None else ""
    return f"{summary[key]:.1%}{interval}"


def command_evaluate(arguments: argparse.Namespace) -> int:
    """Metrics of one run on validation, official test and duplicate-free test, side by side."""
    from core.cli.progress import progress_events
    from core.evaluation.evaluate import SPLIT_LABELS, SPLITS, evaluate_run, split_summary

    if arguments.external is not None:
        if arguments.tta:
            raise ValueError("--tta scores the run's own splits; it does not go with --external")
        return _evaluate_external(arguments)
    if arguments.name or arguments.class_map:
        raise ValueError("--name and --class-map go with --external DIR")
    evaluation = evaluate_run(
        arguments.run, force=arguments.force, events=progress_events(not arguments.json),
        tta=arguments.tta,
    )  # fmt: skip
    wanted = SPLITS if arguments.split == "all" else (SPLIT_CHOICES[arguments.split],)
    summaries = {split: split_summary(evaluation, split) for split in wanted}
    if arguments.json:
        print(json.dumps(summaries, indent=2))
        return 0
    tta = ", test-time augmentation: image and mirror, not stored" if arguments.tta else ""
    print(f"run {arguments.run} (audit threshold {evaluation.audit_threshold}{tta})")
    if not evaluation.split_matches_training:
        print("  warning: the dataset's split differs from the one the run trained with")
    for split, summary in summaries.items():
        if summary is None:
            print(f"  {SPLIT_LABELS[split]:>19}: no images")
            continue
        calibration = summary.get("temperature_scaled")
        scaled = (
            f", after temperature {calibration['temperature']:.2f}: {calibration['ece_after']:.3f}"
            if calibration
            else ""
        )
        print(
            f"  {SPLIT_LABELS[split]:>19}: n={summary['n']}  accuracy "
            f"{_percent_with_interval(summary, 'accuracy')}  balanced "
            f"{_percent_with_interval(summary, 'balanced_accuracy')}  macro-F1 "
            f"{_percent_with_interval(summary, 'macro_f1')}  MCC {summary['mcc']:.3f}  "
            f"ECE {summary['ece']:.3f}{scaled}"
        )
    return 0


def _evaluate_external(arguments: argparse.Namespace) -> int:
    """`evaluate RUN --external DIR`: the run's scores on a labelled folder from elsewhere."""
    from core.cli.progress import progress_events
    from core.evaluation.external import evaluate_external, external_summary, parse_class_map

    record = evaluate_external(
        arguments.run,
        arguments.external,
        name=arguments.name,
        class_map=parse_class_map(arguments.class_map or []),
        force=arguments.force,
        events=progress_events(not arguments.json),
    )
    summary = external_summary(record)
    if arguments.json:
        print(json.dumps(summary, indent=2))
        return 0
    mapped = ", ".join(f"{a}->{b}" if a != b else a for a, b in record.class_map.items())
    print(f"run {arguments.run} on external set {record.name!r} ({record.root})")
    print(f"  classes: {mapped}")
    for label, count in record.unknown_classes.items():
        print(f"  not scored: class {label!r} ({count} images) is not one of the run's classes")
    for item in record.unreadable:
        print(f"  unreadable: {item['path']}: {item['reason']}")
    if record.copies_checked:
        print(
            f"  {len(record.copies)} of {record.images} images copy an image the run trained "
            f"or validated on (audit distance <= {record.audit_threshold}); left out"
        )
    else:
        print("  warning: the run's dataset is not here, so copies of it were not looked for")
    if summary["n"]:
        print(
            f"  external: n={summary['n']}  accuracy "
            f"{_percent_with_interval(summary, 'accuracy')}  macro-F1 "
            f"{_percent_with_interval(summary, 'macro_f1')}"
        )
        for label, scores in summary["per_class"].items():
            if scores["support"]:
                print(f"    {label:>12}: sensitivity {scores['recall']:.1%}  n={scores['support']}")
    else:
        print("  no external images left to score once copies were excluded")
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
    print(
        "| run | model | test accuracy | duplicate-free test accuracy | unseen-scan test accuracy "
        "| train s | parameters |"
    )
    print("|---|---|---|---|---|---:|---:|")
    for row in result["runs"]:
        seconds = f"{row['train_seconds']:.0f}" if row["train_seconds"] is not None else "?"
        parameters = f"{row['parameters']:,}" if row["parameters"] is not None else "?"
        print(
            f"| {row['run']} | {row['model']} | "
            f"{_percent_with_interval(row['test'], 'accuracy')} | "
            f"{_percent_with_interval(row['duplicate_free_test'], 'accuracy')} | "
            f"{_percent_with_interval(row['unseen_scan_test'], 'accuracy')} | "
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


def command_warnings(arguments: argparse.Namespace) -> int:
    """How well each warning score tells wrong predictions from right ones, per set."""
    from core.cli.progress import progress_events
    from core.evaluation.detector_study import study_run, summary_over_shifts

    payload = study_run(arguments.run, events=progress_events(not arguments.json))
    if arguments.json:
        print(json.dumps(payload, indent=2))
        return 0
    share = payload["flag_share_on_validation"]
    print(
        f"run {arguments.run}: each ranking score flags what falls below the value that flags "
        f"{share:.0%} of validation images (temperature {payload['temperature']:.2f})"
    )
    print("| set | detector | flagged | unflagged accuracy | flagged accuracy | AURC |")
    print("|---|---|---:|---:|---:|---:|")

    def percent(value: float | None) -> str:
        return f"{value:.1%}" if value is not None else "-"

    for key, reports in payload["sets"].items():
        for name, report in reports.items():
            aurc = f"{report['aurc']:.4f}" if report.get("aurc") is not None else "-"
            print(
                f"| {key} | {name} | {percent(report['flagged_share'])} | "
                f"{percent(report['unflagged_accuracy'])} | "
                f"{percent(report['flagged_accuracy'])} | {aurc} |"
            )
    print("\nmean over the shifted sets:")
    for name, summary in summary_over_shifts(payload).items():
        aurc = f", AURC {summary['aurc']:.4f}" if summary["aurc"] is not None else ""
        print(
            f"  {name:>12}: flags {summary['flagged_share']:.1%}, unflagged accuracy "
            f"{summary['unflagged_accuracy']:.1%} "
            f"(lowest {summary['worst_unflagged_accuracy']:.1%}){aurc}"
        )
    return 0


def add_evaluation_commands(commands: argparse._SubParsersAction) -> None:
    """Register `evaluate`, `compare` and `stress` on the CLI's subcommand parser."""
    evaluate = commands.add_parser(
        "evaluate", help="metrics on validation, the official test and its stricter subsets"
    )
    evaluate.add_argument("run", metavar="RUN_ID_OR_DIR")
    evaluate.add_argument("--split", choices=[*SPLIT_CHOICES, "all"], default="all")
    evaluate.add_argument("--force", action="store_true", help="recompute a stored evaluation")
    evaluate.add_argument(
        "--tta", action="store_true",
        help="test-time augmentation: mean over each image and its mirror (computed, not stored)",
    )  # fmt: skip
    evaluate.add_argument(
        "--external", metavar="DIR",
        help="score the run on this labelled folder (class folders) instead",
    )  # fmt: skip
    evaluate.add_argument("--name", help="the external set's name (default: the folder's)")
    evaluate.add_argument(
        "--class-map", nargs="+", metavar="FOLDER_CLASS=RUN_CLASS",
        help="match folder classes whose names differ from the run's",
    )  # fmt: skip
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

    warnings = commands.add_parser(
        "warnings", help="measure the warning scores as detectors of wrong predictions"
    )
    warnings.add_argument("run", metavar="RUN_ID_OR_DIR")
    warnings.add_argument("--json", action="store_true", help="print one JSON object")
    warnings.set_defaults(handler=command_warnings)
