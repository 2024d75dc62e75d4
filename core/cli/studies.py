"""`python -m core study run|list|show|resume`: training-set-size x seed studies from a shell."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

BUILT_IN_SIZES = ("50", "100", "200", "400", "all")
BUILT_IN_MODELS = ("cnn_fast", "mobilenet_v2")


def _percent(value: Any) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _print_summary(summary: dict[str, Any]) -> None:
    cells = summary["cells"]
    print(
        f"study {summary['study_id']} ({summary['state']}): {cells['completed']} of "
        f"{sum(cells.values())} cells completed"
    )
    header = (
        f"{'setting':<22} {'size':>5} {'n_train':>7} {'seeds':>5} {'official':>15} "
        f"{'duplicate-free':>15} {'unseen-scan':>15} {'worst shift':>12} {'train s':>8}"
    )
    print(header)
    for row in summary["rows"]:

        def spread(prefix: str, row: dict[str, Any] = row) -> str:
            mean, sd = row.get(f"{prefix}_mean"), row.get(f"{prefix}_sd")
            return _percent(mean) + ("" if sd is None else f" ±{sd * 100:.1f}")

        seconds = row.get("train_seconds_mean")
        print(
            f"{row['setting']:<22} {row['size']:>5} {row['n_train'] or 0:>7} {row['seeds']:>5} "
            f"{spread('accuracy'):>15} {spread('duplicate_free_accuracy'):>15} "
            f"{spread('unseen_scan_accuracy'):>15} "
            f"{_percent(row.get('stress_worst_accuracy_mean')):>12} "
            f"{'n/a' if seconds is None else f'{seconds:.0f}':>8}"
        )
    compared = [c for c in summary["comparisons"] if c["difference_mean"] is not None]
    for comparison in compared:
        print(f"- {comparison['verdict']}")
    if compared:
        print(f"({summary['comparison_test']})")


def _run(study_id: str, arguments: argparse.Namespace) -> int:
    from core.cli.progress import training_events
    from core.studies.plan import load_study
    from core.studies.runner import run_study
    from core.studies.summary import study_summary

    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        study = run_study(study_id, events=training_events(not arguments.quiet), cancel=cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
    summary = study_summary(load_study(study.study_id))
    if arguments.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
    return 0 if study.state == "finished" else 1


def command_study_run(arguments: argparse.Namespace) -> int:
    """Plan a study, say its estimated time, then run it."""
    from core.data.locate import resolve_dataset_dir
    from core.evaluation.external import default_name
    from core.studies.plan import ExternalSet, parse_setting, plan_study
    from core.studies.runner import estimate_study

    if arguments.seeds < 1:
        raise ValueError("a study needs at least 1 seed")
    changes = {} if arguments.epochs is None else {"epochs": arguments.epochs}
    settings = [parse_setting(text, changes) for text in arguments.models]
    externals = []
    for text in arguments.external or []:
        name, _, folder = text.rpartition("=")
        folder_path = Path(folder).expanduser().resolve()
        externals.append(ExternalSet(name or default_name(folder_path), str(folder_path)))
    study = plan_study(
        data_root=resolve_dataset_dir(arguments.data),
        settings=settings,
        sizes=list(arguments.sizes),
        seeds=arguments.seeds,
        name=arguments.name or "",
        min_steps=arguments.min_steps,
        stress=not arguments.no_stress,
        externals=externals,
    )
    estimate = estimate_study(study)
    study.save()
    print(
        f"study {study.study_id}: {len(study.cells)} cells, estimated "
        f"{estimate.total_seconds / 60:.0f} min on this machine",
        file=sys.stderr if arguments.json else sys.stdout,  # --json: stdout is one document
        flush=True,
    )
    return _run(study.study_id, arguments)


def command_study_resume(arguments: argparse.Namespace) -> int:
    """Continue a study: completed cells kept, the others trained again."""
    return _run(arguments.study, arguments)


def command_study_list(arguments: argparse.Namespace) -> int:
    """Every study, newest first."""
    from core.studies.plan import list_studies

    studies = list_studies()
    if arguments.json:
        print(json.dumps([
            {"study_id": s.study_id, "name": s.name, "state": s.state, "cells": s.counts()}
            for s in studies
        ], indent=2))  # fmt: skip
        return 0
    if not studies:
        print("no studies yet (python -m core study run ...)")
    for study in studies:
        counts = study.counts()
        settings = ", ".join(setting.name for setting in study.settings)
        print(
            f"{study.study_id}  {study.state:<10} {counts['completed']:>3}/{len(study.cells)} "
            f"cells  {settings}  sizes {' '.join(study.sizes)}  seeds {len(study.seeds)}"
            + (f"  ({study.name})" if study.name else "")
        )
    return 0


def command_study_show(arguments: argparse.Namespace) -> int:
    """The per-size table, the paired differences and the verdicts (and CSV files)."""
    from core.studies.plan import load_study
    from core.studies.summary import cell_results, size_table, study_summary

    study = load_study(arguments.study)
    summary = study_summary(study)
    if arguments.csv:
        folder = Path(arguments.csv)
        folder.mkdir(parents=True, exist_ok=True)
        frame = cell_results(study)
        frame.to_csv(folder / "cells.csv", index=False)
        size_table(study, frame).to_csv(folder / "sizes.csv", index=False)
    if arguments.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
    return 0


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON at the end")


def add_study_commands(commands: argparse._SubParsersAction) -> None:
    """Register `study run|list|show|resume` on the CLI's subcommand parser."""
    study = commands.add_parser(
        "study", help="model settings x training-set sizes x seeds: data-efficiency curves"
    )
    actions = study.add_subparsers(dest="action", required=True, metavar="ACTION")

    run = actions.add_parser("run", help="plan a study, estimate its time, run it")
    run.add_argument("--data", help="dataset folder (default: as `train`)")
    run.add_argument(
        "--models", nargs="+", default=list(BUILT_IN_MODELS), metavar="MODEL[:RECIPE]",
        help="model settings, each from its recipe (auto, robust, none); default: "
        + " ".join(BUILT_IN_MODELS),
    )  # fmt: skip
    run.add_argument(
        "--sizes", nargs="+", default=list(BUILT_IN_SIZES), metavar="SIZE",
        help="training-set sizes: images per class, a percentage of each class, or all; "
        f"default: {' '.join(BUILT_IN_SIZES)}",
    )  # fmt: skip
    run.add_argument("--seeds", type=int, default=3, help="seeds per cell (default 3)")
    run.add_argument("--epochs", type=int, help="every setting's epochs (default: its recipe's)")
    run.add_argument(
        "--min-steps", type=int, default=300,
        help="small training sets train at least this many optimizer steps (default 300)",
    )  # fmt: skip
    run.add_argument("--no-stress", action="store_true", help="skip the cells' stress tests")
    run.add_argument(
        "--external", nargs="+", metavar="[NAME=]DIR",
        help="labelled folders every cell is also scored on",
    )  # fmt: skip
    run.add_argument("--name", help="a name for the study")
    _add_output_options(run)
    run.set_defaults(handler=command_study_run)

    resume = actions.add_parser("resume", help="continue a study where it stopped")
    resume.add_argument("study", metavar="STUDY_ID")
    _add_output_options(resume)
    resume.set_defaults(handler=command_study_resume)

    listing = actions.add_parser("list", help="every study, newest first")
    listing.add_argument("--json", action="store_true", help="print one JSON list")
    listing.set_defaults(handler=command_study_list)

    show = actions.add_parser("show", help="the per-size table, paired differences, verdicts")
    show.add_argument("study", metavar="STUDY_ID")
    show.add_argument("--json", action="store_true", help="print one JSON object")
    show.add_argument("--csv", metavar="DIR", help="also write cells.csv and sizes.csv there")
    show.set_defaults(handler=command_study_show)
