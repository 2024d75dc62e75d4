"""`python -m core report`: a self-contained HTML report of runs, to share."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def command_report(arguments: argparse.Namespace) -> int:
    """Write one HTML file (plotly.js and images inlined) about the runs, in the given order."""
    from core.reports.html import check_output, write_report
    from core.runs.registry import resolve_run

    # nargs="*" and this check, rather than argparse's "+": one `error:` line like the others.
    if not arguments.runs:
        raise ValueError("report needs at least one run (RUN_ID_OR_DIR ...)")
    out = Path(arguments.out)
    check_output(out)  # before loading anything: a bad path fails at once
    started = time.perf_counter()
    infos = [resolve_run(run) for run in dict.fromkeys(arguments.runs)]  # each run once
    written = write_report(infos, out)
    seconds = time.perf_counter() - started
    if arguments.json:
        summary = {
            "out": str(written.path),
            "bytes": written.size_bytes,
            "seconds": round(seconds, 2),
            "runs": list(written.run_ids),
        }
        print(json.dumps(summary, indent=2))
        return 0
    print(
        f"wrote the report of {len(infos)} run(s) to {written.path} "
        f"({written.size_bytes / 1e6:.1f} MB, {seconds:.1f} s)"
    )
    return 0


def add_report_commands(commands: argparse._SubParsersAction) -> None:
    """Register `report` on the CLI's subcommand parser."""
    report = commands.add_parser(
        "report",
        help="a self-contained HTML report of runs (configuration, scores, figures, CAMs)",
    )
    report.add_argument("runs", nargs="*", metavar="RUN_ID_OR_DIR")
    report.add_argument("--out", required=True, metavar="FILE.html", help="the file to write")
    report.add_argument("--json", action="store_true", help="print one JSON object")
    report.set_defaults(handler=command_report)
