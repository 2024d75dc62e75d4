"""`python -m core inspect` and `sanity`: inside a model, and whether its CAMs mean something."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def command_inspect(arguments: argparse.Namespace) -> int:
    """Stages with sizes and receptive fields, the filters (PNG); with --image its feature maps
    (PNG), with --embedding a split's projection (CSV), with --probes the layer probes (CSV)."""
    from dataclasses import asdict

    import pandas as pd

    from core.cli.progress import progress_events
    from core.imaging.reader import read_image
    from core.inference.predictor import Predictor
    from core.inspection.layers import architecture_fields, filter_grid
    from core.inspection.maps import feature_maps, feature_strip
    from core.inspection.probes import embedding, layer_probes
    from core.inspection.render import filter_image, stack_rows, write_png

    predictor = Predictor.from_run(arguments.run)
    preprocessing = predictor.preprocessing
    fields = architecture_fields(
        predictor.spec.name, preprocessing.channels, preprocessing.image_size
    )
    out = Path(arguments.out) if arguments.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    events = progress_events(not arguments.json)
    summary: dict[str, Any] = {"run": predictor.run_id, "model": predictor.spec.name,
                               "stages": [asdict(info) for info in fields]}  # fmt: skip
    grid = filter_grid(predictor.model)
    if out is not None:
        rows = [filter_image(channel) for channel in grid]
        write_png(out / "filters.png", stack_rows([row[..., None].repeat(3, 2) for row in rows]))
        summary["filters_png"] = str(out / "filters.png")
    if arguments.image:
        maps = feature_maps(predictor, read_image(Path(arguments.image)).pixels)
        summary["feature_maps"] = [{"stage": m.info.index, "channels": m.channels} for m in maps]
        if out is not None:
            write_png(out / "feature-maps.png", feature_strip(maps))
            summary["feature_maps_png"] = str(out / "feature-maps.png")
    if arguments.embedding:
        frame = embedding(arguments.run, arguments.embedding, events=events)
        summary["embedding"] = {"split": arguments.embedding, "n": len(frame),
                                "accuracy": float(frame["correct"].mean())}  # fmt: skip
        if out is not None:
            frame.to_csv(out / f"embedding-{arguments.embedding}.csv", index=False)
    if arguments.probes:
        probes = layer_probes(arguments.run, events=events)
        summary["probes"] = probes
        if out is not None:
            pd.DataFrame(probes["stages"]).to_csv(out / "probes.csv", index=False)
    if arguments.json:
        print(json.dumps(summary, indent=2))
        return 0
    print(f"run {predictor.run_id} ({predictor.spec.name})")
    print(f"{'stage':<28} {'channels':>8} {'size':>9} {'stride':>6} {'sees':>9}")
    for info in fields:
        print(
            f"{info.index:>3} {info.name:<24} {info.channels:>8} {info.height:>4} x "
            f"{info.width:<3} {info.stride:>6} {info.receptive_field:>4} px"
        )
    if "probes" in summary:
        probes = summary["probes"]
        print(
            f"layer probes on {probes['val_images']} validation images (chance "
            f"{probes['chance']:.0%}, the model itself {probes['model_accuracy']:.1%}):"
        )
        for stage in probes["stages"]:
            print(f"{stage['index']:>3} {stage['name']:<24} kNN {stage['knn_accuracy']:.1%}  "
                  f"linear {stage['linear_accuracy']:.1%}")  # fmt: skip
    if "embedding" in summary:
        print(f"embedding of {summary['embedding']['n']} {arguments.embedding} images stored")
    if out is not None:
        print(f"outputs in {out}")
    return 0


def command_sanity(arguments: argparse.Namespace) -> int:
    """Randomisation test, ROAD and share inside the head for each CAM method."""
    from core.cli.progress import progress_events
    from core.inspection.sanity import sanity_checks

    result = sanity_checks(
        arguments.run, methods=arguments.methods, images=arguments.images,
        force=arguments.force, events=progress_events(not arguments.json),
    )  # fmt: skip
    if arguments.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{result['images']} duplicate-free test images; ROAD of a random map: "
        f"{result['random_road']:+.3f}"
    )
    print(f"{'method':<10} {'randomisation':<34} {'ROAD':>7} {'inside head':>12}")
    for method, scores in result["results"].items():
        half = [step["spearman"] for step in scores["randomisation"]]
        verdict = (
            "passes" if scores["passes_randomisation"] else "FAILS: map survives random weights"
        )
        print(
            f"{method:<10} {verdict:<34} {scores['road']:>+7.3f} {scores['inside_head']:>11.0%}"
            + ("" if scores["mostly_inside_head"] else "  mostly outside the head")
            + f"   (rank correlation as stages turn random: {' '.join(f'{v:.2f}' for v in half)})"
        )
    return 0


def add_inspection_commands(commands: argparse._SubParsersAction) -> None:
    """Register `inspect` and `sanity` on the CLI's subcommand parser."""
    inspect = commands.add_parser(
        "inspect", help="inside a model: stages, filters, feature maps, embedding, layer probes"
    )
    inspect.add_argument("run", metavar="RUN_ID_OR_DIR")
    inspect.add_argument("--image", metavar="FILE", help="feature maps of this image")
    inspect.add_argument(
        "--embedding", metavar="SPLIT",
        help="project this split: val, test, duplicate_free_test or unseen_scan_test",
    )  # fmt: skip
    inspect.add_argument("--probes", action="store_true", help="layer probes on validation")
    inspect.add_argument("--out", metavar="DIR", help="write PNG and CSV outputs here")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.set_defaults(handler=command_inspect)

    sanity = commands.add_parser("sanity", help="are the CAM explanations faithful?")
    sanity.add_argument("run", metavar="RUN_ID_OR_DIR")
    sanity.add_argument("--methods", nargs="+", metavar="METHOD", help="CAM methods (default all)")
    sanity.add_argument("--images", type=int, default=12, help="test images (default 12)")
    sanity.add_argument("--force", action="store_true", help="recompute stored results")
    sanity.add_argument("--json", action="store_true", help="print one JSON object")
    sanity.set_defaults(handler=command_sanity)
