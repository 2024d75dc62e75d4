"""A model card beside an export (Markdown for people, JSON for tools): the data, the recipe,
every stored evaluation with its interval, calibration, robustness, the export's own check,
and what the model is known not to do.

Everything comes from the run's stored files (the same facts as the HTML report); a score
that was never measured says so instead of being left out.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from core.atomic_files import write_text_atomic
from core.evaluation.evaluate import SPLITS, stored_evaluation
from core.evaluation.external import stored_externals
from core.evaluation.run_selection import report_of, split_label
from core.evaluation.stress import moderate_shift_accuracies
from core.export.onnx_model import ExportResult
from core.reports.facts import Table, evaluation_table, percent, run_settings
from core.runs.registry import RunInfo

CARD_VERSION = 1
KNOWN_LIMITS = (
    "It classifies one 2-D MRI slice into the classes it was trained on; it cannot say 'none "
    "of these' for another disease, another organ or a non-MRI image (the workbench's warnings "
    "flag some such inputs; this file does not).",
    "It was trained and tested on one collection. Where that collection's test split shares "
    "scans with training (the public brain-tumour set does), the duplicate-free and "
    "unseen-scan scores are the honest ones, and even they are same-source.",
    "Where the classes come from different source collections or scanners (again the public "
    "brain-tumour set), the model may partly have learned the source instead of the tumour.",
    "It is a research and teaching model, not a medical device: it was never validated on a "
    "clinical population and must not be used for diagnosis.",
)


def _split_scores(info: RunInfo) -> dict[str, Any]:
    scores = {}
    for split in (*SPLITS, *(f"external:{name}" for name in stored_externals(info))):
        report = report_of(info, split)
        if report is None:
            continue
        scores[split] = {
            "label": split_label(split),
            "images": report.n,
            "accuracy": report.accuracy,
            "accuracy_ci": report.accuracy_ci,
            "balanced_accuracy": report.balanced_accuracy,
            "macro_f1": report.macro_f1,
            "ece": report.ece,
        }
    return scores


def _calibration(info: RunInfo) -> dict[str, Any]:
    evaluation = stored_evaluation(info)
    if evaluation is None:
        return {}
    return {split: asdict(value) for split, value in evaluation.calibration.items()}


def card_payload(info: RunInfo, export: ExportResult) -> dict[str, Any]:
    """The card's facts as one JSON-ready object."""
    config = info.config
    assert config is not None
    shifted = moderate_shift_accuracies(info)
    worst = min(shifted, key=shifted.__getitem__) if shifted else None
    return {
        "card_version": CARD_VERSION,
        "run": run_settings(info),
        "classes": list(config.classes),
        "data": {
            "root": config.data.root,
            "fingerprint": config.dataset.fingerprint,
            "synthetic": config.dataset.synthetic,
            "train_images": config.dataset.train_images,
            "val_images": config.dataset.val_images,
        },
        "evaluation": _split_scores(info) or "not evaluated",
        "calibration": _calibration(info) or "not evaluated",
        "stress": {
            "moderate_shift_accuracy": shifted,
            "worst_shift": worst,
            "worst_accuracy": shifted[worst] if worst else None,
        }
        if shifted
        else "not stress-tested",
        "external": "none measured" if not stored_externals(info) else "in evaluation",
        "export": export.to_json(),
        "known_limits": list(KNOWN_LIMITS)
        + (
            ["Trained on the synthetic demo data: it means nothing medically."]
            if config.dataset.synthetic
            else []
        ),
    }


def _markdown_table(table: Table) -> list[str]:
    lines = ["| " + " | ".join(table.headers) + " |", "|" + "---|" * len(table.headers)]
    lines += [
        "| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in table.rows
    ]
    return lines


def card_markdown(info: RunInfo, payload: dict[str, Any]) -> str:
    """The card for people."""
    settings, export = payload["run"], payload["export"]
    lines = [f"# Model card: {info.display_name}", ""]
    lines += [f"- **{name}**: {value}" for name, value in settings.items()]
    lines += ["", f"Classes: {', '.join(payload['classes'])}.", ""]
    data = payload["data"]
    lines += [
        "## Data",
        "",
        f"{data['root']} (fingerprint {data['fingerprint']}"
        + (", synthetic demo data" if data["synthetic"] else "")
        + f"): {data['train_images']} training and {data['val_images']} validation images.",
        "",
        "## Evaluation",
        "",
        "Bootstrap 95% intervals. The official test shares scans with training; the "
        "duplicate-free test leaves out test images with a copy in training, the unseen-scan "
        "test also those whose scan gave a training image.",
        "",
    ]
    if stored_evaluation(info) is None:
        lines += ["Not evaluated (`python -m core evaluate RUN`)."]
    else:
        lines += _markdown_table(evaluation_table([info], {info.run_id: info.display_name}))
    lines += ["", "## Calibration", ""]
    calibration = payload["calibration"]
    if isinstance(calibration, dict):
        for split, scaled in calibration.items():
            lines.append(
                f"- {split_label(split)}: ECE {scaled.get('ece_before', float('nan')):.3f} before "
                f"and {scaled.get('ece_after', float('nan')):.3f} after temperature scaling "
                f"(T = {scaled.get('temperature', float('nan')):.2f}, fitted on validation)."
            )
    else:
        lines.append("Not evaluated.")
    lines += ["", "## Robustness and data from elsewhere", ""]
    stress = payload["stress"]
    if isinstance(stress, dict):
        lines.append(
            f"Duplicate-free test accuracy under each stress shift at moderate severity; worst: "
            f"{stress['worst_shift']} at {percent(stress['worst_accuracy'])}."
        )
        lines += [
            f"- {name}: {percent(value)}"
            for name, value in stress["moderate_shift_accuracy"].items()
        ]
    else:
        lines.append("Not stress-tested (`python -m core stress RUN`).")
    if not stored_externals(info):
        lines += [
            "",
            "No external test set was measured: accuracy on data from elsewhere is unknown.",
        ]
    lines += [
        "",
        "## Export",
        "",
        f"{export['format'].upper()} file `{Path(export['path']).name}` "
        f"({export['bytes']:,} bytes). "
        f"Checked against the run with {export['runtime']} on {export['images_checked']} official "
        f"test images: largest difference in a class probability {export['max_difference']:.1e} "
        f"(tolerance {export['tolerance']:.0e}); "
        + ("the same predicted class for every image." if export["same_predictions"] else
           "some predicted classes differ."),
        "",
        "Input: grey images stretched to the run's square size, divided by 255, float32 "
        "N x 1 x H x W; output: class probabilities (the model's metadata has the details).",
        "",
        "## Known limits",
        "",
        *(f"- {limit}" for limit in payload["known_limits"]),
        "",
    ]  # fmt: skip
    return "\n".join(lines)


def write_model_card(info: RunInfo, export: ExportResult) -> tuple[Path, Path]:
    """MODEL.card.md and MODEL.card.json beside the export; their paths."""
    payload = card_payload(info, export)
    base = Path(export.path)
    markdown, data = base.with_suffix(".card.md"), base.with_suffix(".card.json")
    write_text_atomic(data, json.dumps(payload, indent=2, default=str) + "\n")
    write_text_atomic(markdown, card_markdown(info, payload))
    return markdown, data
