"""Command line: the same engine as the app, headless (`python -m core <command> ...`).

Every command prints human-readable text, or one JSON document with --json. Any expected
failure (a bad folder, an unreadable file, a bad option) ends with a one-line `error: ...` on
stderr and exit status 2; nothing prints a traceback for bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from core.cli.dataset import add_dataset_commands
from core.cli.evaluation import add_evaluation_commands
from core.cli.export import add_export_commands
from core.cli.inference import add_inference_commands
from core.cli.inspection import add_inspection_commands
from core.cli.report import add_report_commands
from core.cli.studies import add_study_commands
from core.cli.training import add_training_commands
from core.data.discovery import DatasetError
from core.imaging.pixels import ImageReadError

EXIT_USAGE_ERROR = 2


# Failures a user can cause and fix; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (
    DatasetError,
    ImageReadError,
    ValueError,
    OSError,
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(prog="python -m core", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add_dataset_commands(commands)
    add_training_commands(commands)
    add_inference_commands(commands)
    add_evaluation_commands(commands)
    add_study_commands(commands)
    add_inspection_commands(commands)
    add_export_commands(commands)
    add_report_commands(commands)
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
