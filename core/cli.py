"""Command line: the same engine as the app, headless (`python -m core <command> ...`).

Every command prints human-readable text, or one JSON document with --json. Any expected
failure (a bad folder, an unreadable file, a bad option) ends with a one-line `error: ...` on
stderr and exit status 2; nothing prints a traceback for bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from core import audit, data
from core.cli_evaluation import add_evaluation_commands
from core.cli_inference import add_inference_commands
from core.cli_training import add_training_commands
from core.imaging import ImageReadError

EXIT_USAGE_ERROR = 2
# Failures a user can cause and fix; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    data.DatasetError,
    ImageReadError,
    ValueError,
    OSError,
)


class StderrProgress:
    """Progress reporter for long steps: rewrites one stderr line, at most a few times a second."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._last_print = 0.0

    def __call__(self, done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last_print < 0.25 and done < total):
            return
        self._last_print = now
        end = "\n" if done >= total else ""
        print(f"\r{message}", end=end, file=sys.stderr, flush=True)


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2))


def command_dataset(arguments: argparse.Namespace) -> int:
    """Describe a dataset folder: layout, classes, counts per split, skipped files."""
    dataset = data.open_dataset(Path(arguments.data_dir), progress=StderrProgress())
    summary = {
        "root": str(dataset.root),
        "layout": dataset.layout,
        "synthetic": dataset.synthetic,
        "classes": list(dataset.classes),
        "counts": dataset.counts(),
        "images": len(dataset.frame),
        "fingerprint": dataset.fingerprint,
        "skipped": [{"path": item.path, "reason": item.reason} for item in dataset.skipped],
    }
    if arguments.json:
        _print_json(summary)
        return 0
    kind = "synthetic demo" if dataset.synthetic else "real"
    print(f"{dataset.root} ({kind}, {dataset.layout} layout, {len(dataset.frame)} images)")
    for split, counts in summary["counts"].items():
        listed = ", ".join(f"{label} {count}" for label, count in counts.items())
        print(f"  {split:5s}: {listed}")
    print(f"  skipped: {len(dataset.skipped)} files")
    for item in dataset.skipped[:20]:
        print(f"    {item.path}: {item.reason}")
    return 0


def command_audit(arguments: argparse.Namespace) -> int:
    """Find exact and near-duplicates, within and across splits, and the leak-free test subset."""
    dataset = data.open_dataset(Path(arguments.data_dir), progress=StderrProgress())
    report = audit.run_audit(dataset, arguments.threshold, progress=StderrProgress())
    summary = audit.summarize(dataset, report)
    summary["leak_free_manifest"] = str(audit.save_leak_free_manifest(dataset, report))
    if arguments.pairs_csv:
        report.pairs.to_csv(arguments.pairs_csv, index=False)
    if arguments.json:
        _print_json(summary)
        return 0
    print(f"{dataset.root}: {summary['images']} images, threshold {report.threshold}")
    print(
        f"  test images: {summary['test_images']}: {summary['exact_cross_split']} with an exact "
        f"duplicate in training, {summary['near_cross_split']} with a near-duplicate, "
        f"{summary['leak_free_test']} leak-free"
    )
    print(f"  pairs: {summary['exact_pairs']} exact, {summary['near_pairs']} near")
    print(f"  conflicting labels: {summary['conflicting_labels']} pairs")
    print(f"  leak-free test manifest: {summary['leak_free_manifest']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    dataset_parser = commands.add_parser("dataset", help="describe a dataset folder")
    dataset_parser.add_argument("data_dir", metavar="DATA_DIR")
    dataset_parser.add_argument("--json", action="store_true", help="print one JSON object")
    dataset_parser.set_defaults(handler=command_dataset)

    audit_parser = commands.add_parser("audit", help="find duplicates and train/test leakage")
    audit_parser.add_argument("data_dir", metavar="DATA_DIR")
    audit_parser.add_argument(
        "--threshold",
        type=float,
        default=audit.DEFAULT_THRESHOLD,
        help=f"near-duplicate distance threshold (default {audit.DEFAULT_THRESHOLD})",
    )
    audit_parser.add_argument("--pairs-csv", metavar="FILE", help="also write every pair as CSV")
    audit_parser.add_argument("--json", action="store_true", help="print one JSON object")
    audit_parser.set_defaults(handler=command_audit)

    add_training_commands(commands)
    add_inference_commands(commands)
    add_evaluation_commands(commands)
    return parser


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the process exit status."""
    arguments = build_parser().parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = arguments.handler
    try:
        return handler(arguments)
    except EXPECTED_ERRORS as error:
        print(f"error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE_ERROR
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
