"""Warnings as error detectors: which score tells a user that a prediction may be wrong?

A warning is useful when the predictions it does *not* flag are right. Four scores are measured
on every shifted set the workbench has (the stress shifts at moderate severity, stored external
sets) and on the unshifted duplicate-free test:

- `familiarity`: today's warnings, the per-image intensity statistics outside the training
  range, or a top-class probability under 60% (a flag, not a ranking);
- `msp`: the top-class probability after temperature scaling fitted on validation;
- `energy`: the free energy's negative, T * logsumexp(logits / T) (Liu et al., 2020);
- `mahalanobis`: minus the smallest Mahalanobis distance of the penultimate features to a class
  mean, with one shared covariance (Lee et al., 2018) fitted on the run's training images with
  scikit-learn's Ledoit-Wolf shrinkage.

Higher means "trust it more". Each ranking score flags the images below the threshold that
flags `FLAG_SHARE` of the validation images, so no test or shifted image sets a threshold.
For each set and score: the share flagged, the accuracy of the unflagged and of the flagged
predictions, and the area under the risk-coverage curve (AURC: mean error rate over every
coverage; lower is better).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import special
from sklearn.covariance import LedoitWolf

from core.imaging.familiarity import unfamiliar_reasons
from core.inference.predictor import UNSURE_BELOW, WARNING_FLAG_SHARE, Predictor

SCORES = ("familiarity", "msp", "energy", "mahalanobis")
RANKED = ("msp", "energy", "mahalanobis")
FLAG_SHARE = WARNING_FLAG_SHARE  # of validation images each ranking score flags
BATCH = 64


def penultimate_layer(model: torch.nn.Module) -> torch.nn.Linear:
    """The model's last linear layer: its input is the penultimate feature vector."""
    linear = [module for module in model.modules() if isinstance(module, torch.nn.Linear)]
    if not linear:
        raise ValueError("the model has no linear classifier layer")
    return linear[-1]


@torch.no_grad()
def logits_and_features(
    predictor: Predictor, images: list[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """(N, classes) logits and (N, D) penultimate features of decoded images, in batches."""
    captured: list[torch.Tensor] = []
    layer = penultimate_layer(predictor.model)
    handle = layer.register_forward_hook(lambda _m, inputs, _o: captured.append(inputs[0]))
    logits = []
    try:
        for start in range(0, len(images), BATCH):
            logits.append(predictor.logits(images[start : start + BATCH]))
    finally:
        handle.remove()
    features = torch.cat([one.float().flatten(1).cpu() for one in captured]).numpy()
    return np.concatenate(logits), features


@dataclass(frozen=True)
class FeatureModel:
    """Class means and the shared precision matrix of the training images' features."""

    means: np.ndarray  # (classes, D)
    precision: np.ndarray  # (D, D)

    @classmethod
    def fit(cls, features: np.ndarray, labels: np.ndarray, classes: int) -> FeatureModel:
        means = np.stack(
            [
                features[labels == c].mean(axis=0)
                if (labels == c).any()
                else np.full(features.shape[1], np.inf)
                for c in range(classes)
            ]
        )
        centred = features - means[labels]
        return cls(means, LedoitWolf(assume_centered=True).fit(centred).precision_)

    def score(self, features: np.ndarray) -> np.ndarray:
        """Minus the smallest squared Mahalanobis distance to a class mean (higher: closer)."""
        distances = []
        for mean in self.means:
            if not np.isfinite(mean).all():
                continue
            centred = features - mean
            distances.append(np.einsum("nd,de,ne->n", centred, self.precision, centred))
        return -np.min(np.stack(distances), axis=0)


@dataclass(frozen=True)
class Scored:
    """One set's predictions and every score of each image."""

    correct: np.ndarray  # bool per image
    scores: dict[str, np.ndarray]  # RANKED name -> float per image (higher: trust more)
    familiar: np.ndarray  # bool per image: today's warnings stay silent


def score_images(
    predictor: Predictor,
    images: list[np.ndarray],
    labels: np.ndarray,
    temperature: float,
    features_model: FeatureModel,
) -> Scored:
    """Predictions of `images` with each detector's score."""
    logits, features = logits_and_features(predictor, images)
    return score_outputs(
        logits, features, images, labels, temperature, features_model, predictor.input_ranges
    )


def score_outputs(
    logits: np.ndarray,
    features: np.ndarray,
    images: list[np.ndarray],
    labels: np.ndarray,
    temperature: float,
    features_model: FeatureModel,
    ranges: dict[str, tuple[float, float]] | None,
) -> Scored:
    """Each detector's score from a model's outputs on `images`."""
    scaled = logits.astype(np.float64) / temperature
    probabilities = special.softmax(logits.astype(np.float64), axis=1)
    familiar = np.array([not unfamiliar_reasons(image, ranges) for image in images], dtype=bool) & (
        probabilities.max(axis=1) >= UNSURE_BELOW
    )
    return Scored(
        correct=logits.argmax(axis=1) == labels,
        scores={
            "msp": special.softmax(scaled, axis=1).max(axis=1),
            "energy": temperature * special.logsumexp(scaled, axis=1),
            "mahalanobis": features_model.score(features),
        },
        familiar=familiar,
    )


def aurc(correct: np.ndarray, score: np.ndarray) -> float:
    """Area under the risk-coverage curve: keep the most trusted first, average the error
    rate over every coverage (lower is better; ties broken by order)."""
    order = np.argsort(-score, kind="stable")
    errors = np.cumsum(~correct[order])
    return float(np.mean(errors / np.arange(1, len(order) + 1)))


def risk_coverage(
    correct: np.ndarray, score: np.ndarray, points: int = 50
) -> dict[str, list[float]]:
    """The risk-coverage curve, thinned to about `points` points: keeping the most trusted
    share `coverage` of the predictions, the error rate `risk` among them."""
    order = np.argsort(-score, kind="stable")
    kept = np.arange(1, len(order) + 1)
    risk = np.cumsum(~correct[order]) / kept
    chosen = np.unique(np.linspace(0, len(order) - 1, min(points, len(order))).round().astype(int))
    return {
        "coverage": [round(float(kept[i] / len(order)), 4) for i in chosen],
        "risk": [round(float(risk[i]), 5) for i in chosen],
    }


def flag_report(correct: np.ndarray, flagged: np.ndarray) -> dict[str, float | int | None]:
    """Share flagged and the accuracy of the unflagged and of the flagged predictions."""

    def accuracy(mask: np.ndarray) -> float | None:
        return float(correct[mask].mean()) if mask.any() else None

    return {
        "n": len(correct),
        "flagged_share": float(flagged.mean()),
        "unflagged_accuracy": accuracy(~flagged),
        "flagged_accuracy": accuracy(flagged),
        "accuracy": float(correct.mean()),
    }


def thresholds(validation: Scored) -> dict[str, float]:
    """Per ranking score: the value under which FLAG_SHARE of validation images fall."""
    return {name: float(np.quantile(validation.scores[name], FLAG_SHARE)) for name in RANKED}


def evaluate_set(scored: Scored, cutoffs: dict[str, float]) -> dict[str, dict]:
    """Every detector's flag report (and AURC for ranking scores) on one set."""
    reports: dict[str, dict] = {"familiarity": flag_report(scored.correct, ~scored.familiar)}
    for name in RANKED:
        flagged = scored.scores[name] < cutoffs[name]
        reports[name] = {
            **flag_report(scored.correct, flagged),
            "aurc": aurc(scored.correct, scored.scores[name]),
            "risk_coverage": risk_coverage(scored.correct, scored.scores[name]),
        }
    return reports
