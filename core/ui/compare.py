"""The Compare page's loaders, tables, galleries and run-management callbacks (its figures:
compare_charts.py).

Everything here tolerates damaged runs: a run whose files are unreadable is shown as such in
the table and left out of the charts, never raised.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from core import comparison, runs
from core.evaluation import SPLIT_LABELS, evaluate_run, stored_evaluation
from core.explain import overlay
from core.imaging import read_image
from core.run_writer import WEIGHTS
from core.ui.classify import load_predictor
from core.ui.compare_charts import reliability_chart, roc_chart, show_confusion_matrices, union_of
from core.ui.images import displayable

GALLERY_LIMIT = 12
GALLERY_COLUMNS = 4
PAIRED_SPLITS = comparison.PAIRED_SPLITS
SIGNIFICANCE = 0.05
FEEDBACK_KEY = "_compare_feedback"
EVALUATION_REPORT_KEY = "_compare_evaluation_report"
SELECTION_KEY = "compare_runs"

TABLE_COLUMNS = [
    "name", "status", "model", "family", "pretrained", "freeze", "image_size", "augmentation",
    "epochs", "parameters", "train_seconds", "images_per_second", "best_val_accuracy",
    "best_val_loss", "test_accuracy", "test_low", "test_high", "leak_free_test_accuracy",
    "leak_free_test_low", "leak_free_test_high", "test_macro_f1", "test_ece", "tags", "created",
    "run",
]  # fmt: skip


def _percent(label: str, help_text: str | None = None) -> Any:
    return st.column_config.NumberColumn(label, format="percent", help=help_text)


TABLE_CONFIG: dict[str, Any] = {
    "name": st.column_config.TextColumn("name"),
    "family": st.column_config.TextColumn("custom / transfer"),
    "pretrained": st.column_config.CheckboxColumn("ImageNet start"),
    "freeze": st.column_config.TextColumn("frozen", help="Layers kept frozen in training"),
    "image_size": st.column_config.NumberColumn("image px"),
    "augmentation": st.column_config.TextColumn(
        "augmentation",
        help="flip; geometry = rotation, zoom, shift; intensity = brightness, contrast",
    ),
    "parameters": st.column_config.NumberColumn("parameters", format="compact"),
    "train_seconds": st.column_config.NumberColumn("training s", format="%.0f"),
    "images_per_second": st.column_config.NumberColumn("images/s", format="%.0f"),
    "best_val_accuracy": _percent("best val accuracy"),
    "best_val_loss": st.column_config.NumberColumn("best val loss", format="%.4f"),
    "test_accuracy": _percent("test accuracy", "Official test split"),
    "test_low": _percent("test 95% low", "Bootstrap 95% interval, lower end"),
    "test_high": _percent("test 95% high", "Bootstrap 95% interval, upper end"),
    "leak_free_test_accuracy": _percent(
        "leak-free accuracy", "Test images with no exact or near copy in training"
    ),
    "leak_free_test_low": _percent("leak-free 95% low"),
    "leak_free_test_high": _percent("leak-free 95% high"),
    "test_macro_f1": st.column_config.NumberColumn("test macro F1", format="%.3f"),
    "test_ece": st.column_config.NumberColumn(
        "test ECE", format="%.3f", help="Expected calibration error (0 = perfectly calibrated)"
    ),
    "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
    "run": st.column_config.TextColumn("run id"),
}


# --- Loading ---------------------------------------------------------------------------------


def load_runs() -> list[runs.RunInfo]:
    """Every run on disk, newest first; read afresh because other sessions and the CLI write."""
    return runs.list_runs()


def runs_frame(infos: Sequence[runs.RunInfo]) -> pd.DataFrame:
    """The runs table; a run whose files hold nonsense gets a bare 'damaged' row."""
    rows = []
    for info in infos:
        try:
            rows.append(comparison.run_row(info))
        except (TypeError, ValueError, KeyError, AttributeError):  # any shape a damaged file has
            rows.append({"run": info.run_id, "name": info.display_name, "status": "damaged"})
    return pd.DataFrame(rows).reindex(columns=[*TABLE_COLUMNS, "evaluated"])


def run_labels(infos: Sequence[runs.RunInfo]) -> dict[str, str]:
    """A short, unique label per run id: its name, with the id's tail when names clash."""
    names = [info.display_name for info in infos]
    return {
        info.run_id: info.display_name
        if names.count(info.display_name) == 1
        else f"{info.display_name} [{info.run_id[-6:]}]"
        for info in infos
    }


def evaluation_of(info: runs.RunInfo) -> dict[str, Any] | None:
    """The run's stored evaluation when it has the expected shape, else None."""
    evaluation = stored_evaluation(info)
    if not evaluation or not isinstance(evaluation.get("splits"), dict):
        return None
    return evaluation


def report_of(info: runs.RunInfo, split: str) -> dict[str, Any] | None:
    """The run's classification report on `split`, or None when absent."""
    report = ((evaluation_of(info) or {}).get("splits") or {}).get(split)
    return report if isinstance(report, dict) else None


def class_names(info: runs.RunInfo) -> list[str]:
    """The run's classes, in label order."""
    classes = (evaluation_of(info) or {}).get("classes") or (info.config or {}).get("classes")
    return [str(name) for name in classes] if isinstance(classes, list) else []


# --- Table filters and selection ---------------------------------------------------------------


def filter_options(table: pd.DataFrame, column: str) -> list[str]:
    """The distinct values a filter offers (tags are split on commas)."""
    if column == "tags":
        values = {tag.strip() for text in table["tags"].dropna() for tag in str(text).split(",")}
    else:
        values = {str(value) for value in table[column].dropna()}
    return sorted(value for value in values if value)


def filter_runs(
    table: pd.DataFrame,
    *,
    models: Iterable[str] = (),
    statuses: Iterable[str] = (),
    tags: Iterable[str] = (),
) -> pd.DataFrame:
    """Rows matching every non-empty filter (a run matches a tag filter by any of its tags)."""
    models, statuses, tags = set(models), set(statuses), set(tags)
    keep = pd.Series(True, index=table.index)
    if models:
        keep &= table["model"].astype(str).isin(models)
    if statuses:
        keep &= table["status"].astype(str).isin(statuses)
    if tags:
        run_tags = table["tags"].fillna("").map(lambda text: {t.strip() for t in text.split(",")})
        keep &= run_tags.map(lambda owned: bool(owned & tags))
    return table[keep]


def comparable_runs(infos: Sequence[runs.RunInfo]) -> list[str]:
    """Ids of the runs with something to plot: a training history or an evaluation."""
    return [
        info.run_id
        for info in infos
        if info.config is not None and (info.history or evaluation_of(info) is not None)
    ]


def default_selection(table: pd.DataFrame, choices: Sequence[str], count: int = 2) -> list[str]:
    """Up to `count` best runs: by official test accuracy when evaluated, else best validation."""
    rows = table[table["run"].isin(choices)]
    tested = rows.dropna(subset=["test_accuracy"])
    ranked = list(tested.sort_values("test_accuracy", ascending=False, kind="stable")["run"])
    rest = rows[~rows["run"].isin(ranked)].dropna(subset=["best_val_accuracy"])
    ranked += list(rest.sort_values("best_val_accuracy", ascending=False, kind="stable")["run"])
    return ranked[:count]


def evaluated_ids(infos: Sequence[runs.RunInfo]) -> list[str]:
    """Ids of the runs with a stored evaluation."""
    return [info.run_id for info in infos if evaluation_of(info) is not None]


def pair_defaults(selected: Sequence[str], evaluated: Sequence[str]) -> tuple[int, int]:
    """Positions in `evaluated` of the default runs A and B (the first selected, else the top)."""
    picks = [run_id for run_id in selected if run_id in evaluated][:2]
    picks += [run_id for run_id in evaluated if run_id not in picks][: 2 - len(picks)]
    return evaluated.index(picks[0]), evaluated.index(picks[-1])


def plural(count: int, template: str) -> str:
    """'Evaluate 1 run', 'Evaluate 3 runs'."""
    return template.format(count) + ("" if count == 1 else "s")


# --- Evaluation ------------------------------------------------------------------------------


def evaluation_candidates(infos: Sequence[runs.RunInfo]) -> list[runs.RunInfo]:
    """Completed, undamaged runs with weights that have no stored evaluation yet."""
    return [
        info
        for info in infos
        if info.status == "completed"
        and info.has_weights
        and not info.damaged
        and evaluation_of(info) is None
    ]


def evaluate_with_progress(pending: Sequence[runs.RunInfo]) -> None:
    """Evaluate each run under a status box; one failure never stops the others. Reruns."""
    failures: list[str] = []
    with st.status(plural(len(pending), "Evaluating {} run") + "...", expanded=True) as box:
        bar = st.progress(0.0)
        for index, info in enumerate(pending):

            def progress(done: int, total: int, message: str, index: int = index) -> None:
                fraction = (index + (done / total if total else 0.0)) / len(pending)
                bar.progress(min(1.0, fraction), text=message)

            st.write(f"{info.display_name}: evaluating on validation, test and leak-free test")
            try:
                evaluate_run(info.run_id, progress=progress)
            # EvaluationError and RunError (both ValueErrors) for a run that cannot be
            # evaluated; ImageReadError and OSError for a dataset that changed under it.
            except (ValueError, OSError) as error:
                failures.append(f"{info.display_name}: {error}")
                st.error(failures[-1])
        box.update(
            label=f"Evaluated {len(pending) - len(failures)} of " + plural(len(pending), "{} run"),
            state="error" if failures else "complete",
        )
    st.session_state[EVALUATION_REPORT_KEY] = (len(pending) - len(failures), failures)
    st.rerun()  # the table above was drawn before the evaluations


def show_evaluation_report() -> None:
    """What the last Evaluate click did (shown once, after its rerun)."""
    report = st.session_state.pop(EVALUATION_REPORT_KEY, None)
    if report is None:
        return
    done, failures = report
    if done:
        st.success(plural(done, "Evaluated {} run") + ".")
    for failure in failures:
        st.error(f"Could not evaluate {failure}")


# --- Tables ----------------------------------------------------------------------------------

PER_CLASS_KEYS = ("precision", "recall", "specificity", "f1", "roc_auc", "support")


def per_class_table(reports: dict[str, dict]) -> pd.DataFrame:
    """Precision, recall, specificity, F1 and ROC-AUC per class and run."""
    rows = [
        {"run": label, "class": name, **{key: values.get(key) for key in PER_CLASS_KEYS}}
        for label, report in reports.items()
        for name, values in (report.get("per_class") or {}).items()
        if isinstance(values, dict)
    ]
    return pd.DataFrame(rows, columns=["run", "class", *PER_CLASS_KEYS])


def calibration_table(evaluations: dict[str, dict], split: str) -> pd.DataFrame:
    """Each run's ECE and NLL on `split`, before and after temperature scaling."""
    rows = []
    for label, evaluation in evaluations.items():
        report = (evaluation.get("splits") or {}).get(split) or {}
        scaled = (evaluation.get("calibration") or {}).get(split) or {}
        rows.append(
            {
                "run": label,
                "ECE": report.get("ece"),
                "NLL": report.get("nll"),
                "temperature": scaled.get("temperature"),
                "ECE before scaling": scaled.get("ece_before"),
                "ECE after scaling": scaled.get("ece_after"),
                "NLL before scaling": scaled.get("nll_before"),
                "NLL after scaling": scaled.get("nll_after"),
            }
        )
    return pd.DataFrame(rows)


def paired_tests(a: runs.RunInfo, b: runs.RunInfo) -> tuple[pd.DataFrame, str | None]:
    """McNemar's test of A against B on each test split, and a problem that prevents it."""
    fingerprint_a = (evaluation_of(a) or {}).get("dataset")
    fingerprint_b = (evaluation_of(b) or {}).get("dataset")
    if fingerprint_a != fingerprint_b:
        return pd.DataFrame(), "the two runs were evaluated on different datasets: not paired"
    rows = []
    for split in PAIRED_SPLITS:
        try:
            result = comparison.paired_test(a, b, split)
        except (KeyError, ValueError):  # a predictions.csv with missing or odd columns
            result = None
        if result is None:
            continue
        rows.append(
            {
                "split": SPLIT_LABELS[split],
                "images": result["n"],
                "only A right": result["a_only"],
                "only B right": result["b_only"],
                "both right": result["both"],
                "both wrong": result["neither"],
                "statistic": result["statistic"],
                "p-value": result["p_value"],
                "method": result["method"],
            }
        )
    if not rows:
        return pd.DataFrame(), "no per-image predictions to pair (evaluate both runs again)"
    return pd.DataFrame(rows), None


def paired_verdict(table: pd.DataFrame, label_a: str, label_b: str) -> str:
    """One sentence per split saying whether the accuracy difference is more than chance."""
    sentences = []
    for row in table.to_dict("records"):
        split, p_value = row["split"], row["p-value"]
        if p_value < SIGNIFICANCE:
            better = label_a if row["only A right"] > row["only B right"] else label_b
            sentences.append(
                f"On the {split} split {better} is better (p = {p_value:.3g} < {SIGNIFICANCE})."
            )
        else:
            sentences.append(
                f"On the {split} split the difference could be chance (p = {p_value:.3g})."
            )
    return " ".join(sentences)


def show_split_details(
    evaluated: Sequence[runs.RunInfo], labels: dict[str, str], split: str
) -> None:
    """Tabs of confusion matrices, per-class metrics, ROC curves and calibration on one split."""
    reports = {
        labels[info.run_id]: report
        for info in evaluated
        if (report := report_of(info, split)) is not None
    }
    if not reports:
        st.info(f"No selected run has results on the {SPLIT_LABELS[split]} split.")
        return
    classes = {labels[info.run_id]: class_names(info) for info in evaluated}
    confusion_tab, per_class_tab, roc_tab, calibration_tab = st.tabs(
        ["Confusion matrices", "Per-class metrics", "ROC curves", "Calibration"]
    )
    with confusion_tab:
        normalise = st.toggle("Row-normalised (share of each true class)", key="compare_normalise")
        show_confusion_matrices(reports, classes, normalise=normalise)
    with per_class_tab:
        st.dataframe(per_class_table(reports), hide_index=True, width="stretch")
    with roc_tab:
        st.plotly_chart(roc_chart(reports, union_of(classes)), width="stretch")
    with calibration_tab:
        st.plotly_chart(reliability_chart(reports), width="stretch")
        evaluations = {labels[info.run_id]: evaluation_of(info) or {} for info in evaluated}
        st.dataframe(calibration_table(evaluations, split), hide_index=True, width="stretch")
        st.caption(
            "Temperature scaling divides the logits by one number fitted on the validation "
            "split, so before/after is shown for the test splits only."
        )


# --- Galleries -------------------------------------------------------------------------------


@dataclass(frozen=True)
class GalleryItem:
    """One image of a gallery: its caption and pixels (None when it cannot be read)."""

    caption: str
    pixels: np.ndarray | None


def dataset_root(info: runs.RunInfo) -> Path | None:
    """The run's dataset folder when it is on this machine."""
    root = ((info.config or {}).get("data") or {}).get("root")
    return Path(root) if isinstance(root, str) and Path(root).is_dir() else None


def _weights_stamp(info: runs.RunInfo) -> int:
    try:
        return (info.path / WEIGHTS).stat().st_mtime_ns if info.has_weights else 0
    except (AttributeError, OSError):
        return 0


@st.cache_data(show_spinner=False, max_entries=512)
def _gallery_pixels(
    run_id: str, weights_stamp: int, image_path: str, target_class: int | None
) -> np.ndarray:
    """The image, or its CAM overlay for `target_class` (cached per run weights and image)."""
    pixels = read_image(image_path).pixels
    if target_class is None:
        return pixels
    explanation = load_predictor(run_id).explain(pixels, target_class=target_class)
    return overlay(pixels, explanation.cam)


def gallery_items(
    info: runs.RunInfo, rows: pd.DataFrame, caption: Callable[[Any], str], *, with_cam: bool
) -> list[GalleryItem]:
    """Up to GALLERY_LIMIT images of `rows` (path, predicted...), with the run's CAM if asked."""
    root = dataset_root(info)
    stamp = _weights_stamp(info)
    items = []
    for row in rows.head(GALLERY_LIMIT).itertuples(index=False):
        text, path = caption(row), str(root / row.path)
        target = int(row.predicted) if with_cam and info.has_weights else None
        try:
            pixels = _gallery_pixels(info.run_id, stamp, path, target)
        # RunError (a ValueError) for weights that do not load, RuntimeError from the model,
        # ImageReadError (a ValueError) and OSError for an image that changed on disk.
        except (ValueError, OSError, RuntimeError, KeyError):
            try:  # still show the image itself
                pixels = _gallery_pixels(info.run_id, stamp, path, None)
                text += " (no map: the model could not explain it)" if target is not None else ""
            except (ValueError, OSError):
                pixels = None
        items.append(GalleryItem(text, pixels))
    return items


def show_gallery(items: Sequence[GalleryItem]) -> None:
    """The images in a grid, with their captions."""
    for start in range(0, len(items), GALLERY_COLUMNS):
        columns = st.columns(GALLERY_COLUMNS)
        for column, item in zip(columns, items[start : start + GALLERY_COLUMNS], strict=False):
            if item.pixels is None:
                column.caption(f"{item.caption} (image unreadable)")
            else:
                column.image(displayable(item.pixels), caption=item.caption, width="stretch")


def _class_name(classes: Sequence[str], index: Any) -> str:
    try:
        return classes[int(index)]
    except (IndexError, TypeError, ValueError):
        return str(index)


def _show_images_of(
    info: runs.RunInfo, rows: pd.DataFrame, caption: Any, *, with_cam: bool
) -> None:
    """A gallery of `rows` (path, label, predicted) from the run's dataset, else the table."""
    if dataset_root(info) is None:
        st.info("The run's dataset is not on this machine, so its images cannot be shown.")
        st.dataframe(rows.head(GALLERY_LIMIT), hide_index=True, width="stretch")
        return
    show_gallery(gallery_items(info, rows, caption, with_cam=with_cam))


def show_misclassified(info: runs.RunInfo, split: str, *, with_cam: bool) -> None:
    """The run's most confident mistakes on `split`, each with where it looked."""
    try:
        wrong = comparison.misclassified(info, split)
    except (KeyError, ValueError):  # a predictions.csv with missing or odd columns
        st.warning("This run's per-image predictions are unreadable: evaluate it again.")
        return
    if wrong.empty:
        st.success(f"No misclassified image on the {SPLIT_LABELS[split]} split.")
        return
    st.caption(
        f"{len(wrong)} misclassified image(s) on the {SPLIT_LABELS[split]} split; the "
        f"{min(len(wrong), GALLERY_LIMIT)} most confident mistakes"
        + (", with the map of where the model looked for the class it chose." if with_cam else ".")
    )
    classes = class_names(info)

    def caption(row: Any) -> str:
        return (
            f"true {_class_name(classes, row.label)} → {_class_name(classes, row.predicted)} "
            f"({row.confidence:.0%})"
        )

    _show_images_of(info, wrong, caption, with_cam=with_cam)


def show_disagreements(
    a: runs.RunInfo, b: runs.RunInfo, split: str, labels: dict[str, str], *, with_cam: bool
) -> None:
    """Images of `split` that A gets right and B gets wrong, with B's CAM."""
    try:
        rows = comparison.disagreements(a, b, split)
    except (KeyError, ValueError):
        st.warning("Per-image predictions are unreadable: evaluate both runs again.")
        return
    label_a, label_b = labels[a.run_id], labels[b.run_id]
    if rows.empty:
        st.success(f"On the {SPLIT_LABELS[split]} split {label_b} gets every image {label_a} gets.")
        return
    st.caption(
        f"{len(rows)} image(s) of the {SPLIT_LABELS[split]} split that {label_a} gets right and "
        f"{label_b} gets wrong" + (f"; maps show where {label_b} looked." if with_cam else ".")
    )
    classes = class_names(b)

    def caption(row: Any) -> str:
        return (
            f"true {_class_name(classes, row.label)}; B said {_class_name(classes, row.predicted)}"
        )

    renamed = rows.rename(columns={"predicted_b": "predicted"})
    _show_images_of(b, renamed, caption, with_cam=with_cam)


def show_pair(
    a: runs.RunInfo, b: runs.RunInfo, labels: dict[str, str], split: str, *, with_cam: bool
) -> None:
    """McNemar's test of A against B on both test splits, and the images A gets and B misses."""
    if a.run_id == b.run_id:
        st.info("Pick two different runs.")
        return
    tests, problem = paired_tests(a, b)
    if problem:
        st.warning(problem)
    else:
        st.markdown("**McNemar's test** on the images both runs were evaluated on")
        st.dataframe(tests, hide_index=True, width="stretch")
        st.caption(paired_verdict(tests, labels[a.run_id], labels[b.run_id]))
    show_disagreements(a, b, split, labels, with_cam=with_cam)


# --- Managing runs ---------------------------------------------------------------------------


def name_key(run_id: str) -> str:
    """Session key of the name box of a run."""
    return f"manage_name_{run_id}"


def tags_key(run_id: str) -> str:
    """Session key of the tags box of a run."""
    return f"manage_tags_{run_id}"


def confirm_key(run_id: str) -> str:
    """Session key of the delete confirmation box of a run."""
    return f"manage_confirm_{run_id}"


def _feedback(kind: str, message: str) -> None:
    st.session_state[FEEDBACK_KEY] = (kind, message)


def rename_clicked(run_id: str) -> None:
    """Callback of Rename: store the name typed in the box."""
    try:
        runs.rename_run(run_id, st.session_state.get(name_key(run_id), ""))
    except runs.RunError as error:
        _feedback("error", str(error))
    else:
        _feedback("success", f"Renamed run {run_id}.")


def tags_clicked(run_id: str) -> None:
    """Callback of Save tags: the comma-separated tags typed in the box."""
    text = st.session_state.get(tags_key(run_id), "")
    try:
        runs.set_tags(run_id, [tag for tag in text.split(",") if tag.strip()])
    except runs.RunError as error:
        _feedback("error", str(error))
    else:
        _feedback("success", f"Saved the tags of run {run_id}.")


def delete_clicked(run_id: str) -> None:
    """Callback of Delete: deletes only once the confirmation box is ticked."""
    if not st.session_state.get(confirm_key(run_id)):
        _feedback("warning", "Tick the confirmation box first: deleting cannot be undone.")
        return
    try:
        runs.delete_run(run_id)
    except runs.RunError as error:
        _feedback("error", str(error))
        return
    selected = st.session_state.get(SELECTION_KEY)
    if isinstance(selected, list) and run_id in selected:
        st.session_state[SELECTION_KEY] = [other for other in selected if other != run_id]
    _feedback("success", f"Deleted run {run_id}.")


def show_feedback() -> None:
    """The result of the last rename, tag or delete (shown once)."""
    feedback = st.session_state.pop(FEEDBACK_KEY, None)
    if feedback is not None:
        kind, message = feedback
        {"success": st.success, "warning": st.warning, "error": st.error}[kind](message)


def run_summary(info: runs.RunInfo) -> str:
    """One line about a run for the management box."""
    model = ((info.config or {}).get("model") or {}).get("name", "?")
    status = "damaged" if info.damaged else info.status
    return f"`{info.run_id}` · {model} · **{status}**"
