"""Layer probes and the embedding projector of a run, computed once per run and dataset.

Probes: how much class information each stage already carries. Each stage's pooled features
of a stratified sample of the run's own training images are the reference; the probe is the
k-nearest-neighbour accuracy (cosine, k = 10, standardised features) and a logistic-regression
accuracy of the validation images from those features. Chance is 1 / classes.

Embedding: the last stage's pooled features (what the classifier sees) of a split, projected
to 2-D with PCA and t-SNE (scikit-learn), and UMAP where `umap-learn` is installed.
"""

from __future__ import annotations

import importlib.util
import io
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.manifold import TSNE
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from core.atomic_files import write_bytes_atomic
from core.data.training_data import nested_sample
from core.evaluation.evaluate import (
    EvaluationError,
    EvaluationSets,
    dataset_fingerprint,
    evaluation_sets,
)
from core.events import Events, report_progress
from core.inference.predictor import Predictor
from core.inspection.features import stage_features
from core.inspection.layers import stage_names
from core.inspection.store import read_section, write_section
from core.runs.registry import RunInfo, resolve_run

PROBE_NEIGHBOURS = 10
PROBE_TRAIN_PER_CLASS = 250  # reference images per class (fewer where a class has fewer)
EMBEDDING_SPLITS = ("val", "test", "duplicate_free_test", "unseen_scan_test")
PROBES = "probes"  # the progress stage name


def inspectable(run: str | Path) -> tuple[RunInfo, str]:
    """The run and its dataset's current fingerprint (what a stored result must match), before
    any image is loaded; EvaluationError for a run that cannot be inspected."""
    info = resolve_run(run)
    if info.config is None or not info.usable:
        problems = "; ".join(info.problems) or "it is not a completed run with weights"
        raise EvaluationError(f"run {info.run_id} cannot be inspected: {problems}")
    root = Path(info.config.data.root)
    if not root.is_dir():
        raise EvaluationError(f"the run's dataset {root} is not on this machine")
    return info, dataset_fingerprint(root)


def opened_run(info: RunInfo, events: Events | None) -> tuple[Predictor, EvaluationSets]:
    """The run's predictor and its evaluation sets (the images decoded): for computing."""
    assert info.config is not None  # checked by inspectable
    sets = evaluation_sets(info.config, events)
    return Predictor.from_run(info.path, purpose="evaluate"), sets


def _probe_scores(
    train: np.ndarray, train_labels: np.ndarray, val: np.ndarray, val_labels: np.ndarray
) -> tuple[float, float]:
    """kNN and logistic-regression accuracy of `val` from `train` (standardised features)."""
    scaler = StandardScaler().fit(train)
    train, val = scaler.transform(train), scaler.transform(val)
    knn = KNeighborsClassifier(n_neighbors=min(PROBE_NEIGHBOURS, len(train)), metric="cosine")
    knn_accuracy = float((knn.fit(train, train_labels).predict(val) == val_labels).mean())
    linear = LogisticRegression(max_iter=500, C=0.1).fit(train, train_labels)
    return knn_accuracy, float((linear.predict(val) == val_labels).mean())


def layer_probes(
    run: str | Path, *, force: bool = False, events: Events | None = None
) -> dict[str, Any]:
    """The run's probe accuracy per stage on its validation images (stored and reused)."""
    info, dataset = inspectable(run)
    stored = None if force else read_section(info.path, "probes", "val", dataset)
    if stored is not None:
        return stored
    predictor, sets = opened_run(info, events)
    started = time.perf_counter()
    labels = sets.data.labels.numpy()
    counts = np.bincount(labels[sets.data.train_positions])
    per_class = int(min(PROBE_TRAIN_PER_CLASS, counts[counts > 0].min()))
    reference = nested_sample(sets.data.train_positions, labels, per_class=per_class, seed=0)
    validation = sets.positions["val"]
    train = stage_features(predictor, sets.data.images[reference], events=events,
                           label="training sample")  # fmt: skip
    val = stage_features(predictor, sets.data.images[validation], events=events,
                         label="validation images")  # fmt: skip
    names = stage_names(predictor.model, predictor.spec.name)
    stages = []
    for index, (train_part, val_part) in enumerate(zip(train.stages, val.stages, strict=True)):
        report_progress(events, PROBES, index, len(names), f"Probing {names[index]}")
        knn, linear = _probe_scores(train_part, labels[reference], val_part, labels[validation])
        stages.append({
            "index": index + 1, "name": names[index], "channels": int(train_part.shape[1]),
            "knn_accuracy": knn, "linear_accuracy": linear,
        })  # fmt: skip
    report_progress(events, PROBES, len(names), len(names), "Probes done")
    return write_section(info.path, "probes", "val", {
        "dataset": dataset, "neighbours": PROBE_NEIGHBOURS, "train_images": len(reference),
        "val_images": len(validation), "chance": 1 / len(info.config.classes),
        "model_accuracy": float((val.logits.argmax(1) == labels[validation]).mean()),
        "stages": stages, "seconds": round(time.perf_counter() - started, 2),
    })  # fmt: skip


def embedding_path(run_dir: Path, split: str) -> Path:
    """Where a split's projected points are kept."""
    return run_dir / f"embedding-{split}.csv"


def embedding(
    run: str | Path, split: str = "val", *, force: bool = False, events: Events | None = None
) -> pd.DataFrame:
    """One row per image of `split`: path, label, predicted, correct, and its 2-D position under
    each projection (`pca_x`, `pca_y`, `tsne_x`, ...). Computed once per run, split and dataset."""
    if split not in EMBEDDING_SPLITS:
        raise ValueError(f"split {split!r} is not one of: {', '.join(EMBEDDING_SPLITS)}")
    info, dataset = inspectable(run)
    path = embedding_path(info.path, split)
    stored = None if force else read_section(info.path, "embeddings", split, dataset)
    if stored is not None and path.exists():
        return pd.read_csv(path)
    predictor, sets = opened_run(info, events)
    started = time.perf_counter()
    positions = sets.positions[split]
    if len(positions) < 5:
        raise EvaluationError(f"run {info.run_id}: {split} has too few images to project")
    features = stage_features(predictor, sets.data.images[positions], events=events,
                              label=f"{split} images")  # fmt: skip
    classes = info.config.classes
    labels = sets.data.labels.numpy()[positions]
    predicted = features.logits.argmax(1)
    frame = pd.DataFrame({
        "path": sets.data.dataset.frame["path"].iloc[positions].to_numpy(),
        "label": [classes[i] for i in labels], "predicted": [classes[i] for i in predicted],
        "correct": predicted == labels,
    })  # fmt: skip
    scaled = StandardScaler().fit_transform(features.penultimate)
    report_progress(events, "projection", 0, 3, "PCA")
    frame[["pca_x", "pca_y"]] = PCA(n_components=2, random_state=0).fit_transform(scaled)
    report_progress(events, "projection", 1, 3, "t-SNE")
    perplexity = float(min(30.0, (len(positions) - 1) / 3))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=0)
    frame[["tsne_x", "tsne_y"]] = tsne.fit_transform(scaled)
    methods = ["pca", "tsne"]
    if importlib.util.find_spec("umap") is not None:  # optional: umap-learn
        import umap

        report_progress(events, "projection", 2, 3, "UMAP")
        frame[["umap_x", "umap_y"]] = umap.UMAP(random_state=0).fit_transform(scaled)
        methods.append("umap")
    report_progress(events, "projection", 3, 3, "Projections done")
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    write_bytes_atomic(path, buffer.getvalue().encode("utf-8"))
    write_section(info.path, "embeddings", split, {
        "dataset": dataset, "file": path.name, "n": len(frame), "methods": methods,
        "accuracy": float(frame["correct"].mean()),
        "seconds": round(time.perf_counter() - started, 2),
    })  # fmt: skip
    return frame
