"""`python -m core export`: a run as a deployable ONNX model, verified, with its model card."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def command_export(arguments: argparse.Namespace) -> int:
    """Export, verify against the eager model, then write the model card beside it."""
    from core.export.model_card import write_model_card
    from core.export.onnx_model import export_onnx
    from core.runs.registry import resolve_run

    result = export_onnx(
        arguments.run,
        Path(arguments.out) if arguments.out else None,
        images=arguments.images,
        tolerance=arguments.tolerance,
    )
    summary = result.to_json()
    if arguments.card:
        markdown, data = write_model_card(resolve_run(arguments.run), result)
        summary.update(card_markdown=str(markdown), card_json=str(data))
    if arguments.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"wrote {result.path} ({result.bytes / 1e6:.1f} MB) in {result.seconds:.1f} s")
    print(
        f"verified with {result.runtime} on {result.images_checked} official test images: "
        f"max probability difference {result.max_difference:.2e} (tolerance "
        f"{result.tolerance:.0e}), "
        + ("same predicted class for every image" if result.same_predictions else
           "SOME PREDICTED CLASSES DIFFER")
    )  # fmt: skip
    if arguments.card:
        print(f"model card: {summary['card_markdown']} and {summary['card_json']}")
    return 0


def add_export_commands(commands: argparse._SubParsersAction) -> None:
    """Register `export` on the CLI's subcommand parser."""
    from core.export import DEFAULT_CHECK_IMAGES, DEFAULT_TOLERANCE

    export = commands.add_parser(
        "export", help="a run as an ONNX model, checked against the run, with a model card"
    )
    export.add_argument("run", metavar="RUN_ID_OR_DIR")
    # TorchScript is deprecated upstream in favour of torch.export and ONNX: ONNX only.
    export.add_argument("--format", choices=["onnx"], default="onnx", help="(default onnx)")
    export.add_argument("--out", metavar="FILE", help="default: model.onnx in the run folder")
    export.add_argument(
        "--images", type=int, default=DEFAULT_CHECK_IMAGES,
        help=f"official test images to verify on (default {DEFAULT_CHECK_IMAGES})",
    )  # fmt: skip
    export.add_argument(
        "--tolerance", type=float, default=DEFAULT_TOLERANCE,
        help=f"largest allowed probability difference (default {DEFAULT_TOLERANCE:g})",
    )  # fmt: skip
    export.add_argument("--no-card", dest="card", action="store_false", help="no model card")
    export.add_argument("--json", action="store_true", help="print one JSON object")
    export.set_defaults(handler=command_export)
