"""CLI commands `dataset` and `audit` (registered by core.cli.main)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from core.cli.progress import progress_events
from core.data import audit, scan_level
from core.data.index import open_dataset


def _print_json(payload: Any) -> None:
    print(json.dumps(payload, indent=2))


def command_dataset(arguments: argparse.Namespace) -> int:
    """Describe a dataset folder: layout, classes, counts per split, skipped files."""
    dataset = open_dataset(Path(arguments.data_dir), events=progress_events())
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
    """Find exact and near-duplicates, within and across splits, and the duplicate-free test
    subset."""
    events = progress_events()
    dataset = open_dataset(Path(arguments.data_dir), events=events)
    report = audit.run_audit(dataset, arguments.threshold, events=events)
    summary = audit.summarize(dataset, report)
    summary["duplicate_free_manifest"] = str(audit.save_duplicate_free_manifest(dataset, report))
    counts = scan_level.subset_counts(dataset, report, events)
    summary["unseen_scan_test"] = sum(counts["unseen_scan_test"].values())
    summary["scan_level_method"] = scan_level.METHOD
    summary["subset_counts"] = counts
    if arguments.pairs_csv:
        report.pairs.to_csv(arguments.pairs_csv, index=False)
    if arguments.json:
        _print_json(summary)
        return 0
    print(f"{dataset.root}: {summary['images']} images, threshold {report.threshold}")
    print(
        f"  test images: {summary['test_images']}: {summary['exact_cross_split']} with an exact "
        f"duplicate in training, {summary['near_cross_split']} with a near-duplicate, "
        f"{summary['duplicate_free_test']} duplicate-free, {summary['unseen_scan_test']} "
        "also from a scan unseen in training (unseen-scan)"
    )
    for name, per_class in counts.items():
        listed = ", ".join(f"{label} {count}" for label, count in per_class.items())
        print(f"    {name.replace('_', ' ')}: {listed}")
    print(f"  pairs: {summary['exact_pairs']} exact, {summary['near_pairs']} near")
    print(f"  conflicting labels: {summary['conflicting_labels']} pairs")
    print(f"  duplicate-free test manifest: {summary['duplicate_free_manifest']}")
    return 0


def add_dataset_commands(commands: argparse._SubParsersAction) -> None:
    """Register `dataset` and `audit` on the CLI's subcommand parser."""
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
