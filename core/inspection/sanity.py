"""Are a run's explanations faithful? Three measurements per CAM method, on a fixed sample of
duplicate-free test images.

- **Model-parameter randomisation** (Adebayo et al., 2018, "Sanity Checks for Saliency Maps"):
  the model's stages are re-initialised from the top down, cascading (the classifier tail,
  then the last block, ...), and each method's maps are compared with the trained model's
  (Spearman rank correlation of the pixels, SSIM). A map that stays the same under random
  weights shows the image, not the model: the method *fails* when its mean rank correlation
  with the trained maps is still above `RANDOMISATION_LIMIT` once the top half of the blocks
  is random.
- **ROAD** (Rong et al., 2022; `pytorch_grad_cam.metrics.road`): how the predicted class's
  probability changes when the most relevant pixels are removed first (noisy linear
  imputation) against the least relevant first, averaged over removal percentiles; compared
  with grad-cam's `RandomCAM` at the same layer. Higher is more faithful.
- **Inside the head**: the share of each map's mass inside a head mask (Otsu threshold of the
  blurred slice, its largest component, holes filled); a map with most of its mass outside the
  head lights the background.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from pytorch_grad_cam.metrics.road import ROADCombined
from pytorch_grad_cam.random_cam import RandomCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget
from scipy import stats
from skimage.metrics import structural_similarity
from torch import nn

from core.evaluation.stress import STRESS_SUBSET
from core.events import Events, report_progress
from core.imaging.model_input import to_model_input
from core.inference.explain import CAM_METHODS, EXPLANATION_METHODS, activation_map
from core.inspection.probes import inspectable, opened_run
from core.inspection.store import read_section, write_section
from core.models.build import cam_layer
from core.models.registry import get_spec

RANDOMISATION_LIMIT = 0.5  # mean rank correlation with the trained maps, top half random
INSIDE_HEAD_LIMIT = 0.5  # share of a map's mass that must fall inside the head
ROAD_PERCENTILES = (20, 40, 60, 80)
SANITY_IMAGES = 12
SANITY = "sanity"  # the progress stage name
MapFunction = Callable[[nn.Module, torch.Tensor, int], np.ndarray]


def cam_function(method: str, layer_of: Callable[[nn.Module], nn.Module]) -> MapFunction:
    """(model, input (1, C, H, W), class) -> map in [0, 1] for a grad-cam method."""

    def compute(model: nn.Module, x: torch.Tensor, target: int) -> np.ndarray:
        return activation_map(model, layer_of(model), x, method=method, target_class=target)

    return compute


def edge_map(model: nn.Module, x: torch.Tensor, target: int) -> np.ndarray:
    """A planted 'explanation' that ignores the model: the input's edges (Sobel magnitude).
    The randomisation test must flag it; the tests use it as its negative control."""
    gray = x[0].float().mean(0).cpu().numpy()
    magnitude = np.hypot(cv2.Sobel(gray, cv2.CV_64F, 1, 0), cv2.Sobel(gray, cv2.CV_64F, 0, 1))
    span = magnitude.max() - magnitude.min()
    return ((magnitude - magnitude.min()) / span if span > 0 else magnitude).astype(np.float32)


def head_mask(image: np.ndarray) -> np.ndarray:
    """Boolean mask of the head in a grey uint8 slice: Otsu threshold of the blurred slice,
    the largest connected component, holes filled."""
    blurred = cv2.GaussianBlur(image, (5, 5), 0)
    _, binary = cv2.threshold(blurred, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    count, components, sizes, _ = cv2.connectedComponentsWithStats(binary)
    if count <= 1:
        return np.ones(image.shape, dtype=bool)
    largest = 1 + int(np.argmax(sizes[1:, cv2.CC_STAT_AREA]))
    head = (components == largest).astype(np.uint8)
    contours, _ = cv2.findContours(head, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(head)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)


def inside_share(cam: np.ndarray, mask: np.ndarray) -> float:
    """The share of the map's mass inside the mask (1.0 for an empty map)."""
    total = float(cam.sum())
    return float(cam[mask].sum() / total) if total > 0 else 1.0


def _similarity(first: np.ndarray, second: np.ndarray) -> tuple[float, float]:
    """Spearman rank correlation and SSIM of two maps in [0, 1]."""
    if first.std() == 0 or second.std() == 0:
        rank = 0.0
    else:
        rank = float(stats.spearmanr(first.ravel(), second.ravel()).statistic)
    return rank, float(structural_similarity(first, second, data_range=1.0))


def randomisation_steps(stages: int) -> list[int]:
    """How many top stages are random at each step: the tail, then a quarter, half, three
    quarters and all of the blocks (the tail counts as one stage)."""
    return sorted({1, *(_random_top(stages, share) for share in (0.25, 0.5, 0.75, 1.0))})


def _random_top(stages: int, share: float) -> int:
    """Stages random when `share` of the blocks are, counting the tail."""
    return 1 + max(1, round((stages - 1) * share))


def _randomised(model: nn.Module, model_name: str, top: int, seed: int) -> nn.Module:
    """A copy of `model` whose top `top` stages (the tail first) are re-initialised."""
    copied = copy.deepcopy(model)
    torch.manual_seed(seed)
    for stage in get_spec(model_name).stages(copied)[-top:]:
        for module in stage.modules():
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.reset_running_stats()
    return copied.eval()


@dataclass(frozen=True)
class MethodSanity:
    """One method's three measurements on the sample."""

    method: str
    randomisation: list[dict[str, float]]  # per step: random_stages, spearman, ssim
    passes_randomisation: bool
    road: float | None
    inside_head: float
    mostly_inside_head: bool


def randomisation_test(
    model: nn.Module, model_name: str, inputs: list[torch.Tensor], targets: list[int],
    compute: MapFunction, trained: list[np.ndarray],
) -> tuple[list[dict[str, float]], bool]:  # fmt: skip
    """Per cascade step, the mean similarity of the maps to the trained model's; and whether
    the method passes (rank correlation at or below the limit once half the blocks are
    random)."""
    stages = len(get_spec(model_name).stages(model))
    steps = randomisation_steps(stages)
    results = []
    for top in steps:
        random_model = _randomised(model, model_name, top, seed=top)
        similar = [
            _similarity(trained[i], compute(random_model, x, targets[i]))
            for i, x in enumerate(inputs)
        ]
        rank, ssim = (float(np.mean(values)) for values in zip(*similar, strict=True))
        results.append({"random_stages": top, "spearman": rank, "ssim": ssim})
    half = _random_top(stages, 0.5)
    at_half = next(step for step in results if step["random_stages"] == half)
    return results, at_half["spearman"] <= RANDOMISATION_LIMIT


def road_score(
    model: nn.Module, batch: torch.Tensor, cams: np.ndarray, targets: list[int]
) -> float:
    """ROADCombined (higher: removing what the map calls relevant hurts the prediction more
    than removing what it calls irrelevant), mean over the images."""
    scorer = ROADCombined(percentiles=list(ROAD_PERCENTILES))
    classes = [ClassifierOutputSoftmaxTarget(target) for target in targets]
    return float(np.mean(scorer(batch, cams, classes, model)))


def sanity_checks(
    run: str | Path,
    *,
    methods: Sequence[str] | None = None,
    images: int = SANITY_IMAGES,
    force: bool = False,
    events: Events | None = None,
) -> dict[str, Any]:
    """The three measurements for each CAM method (all by default) and a random baseline, on
    the first `images` duplicate-free test images of each class in turn (stored and reused)."""
    if images < 1:
        raise ValueError("the sanity checks need at least 1 image")
    chosen = list(methods) if methods else list(CAM_METHODS)  # occlusion on request: slow
    unknown = [method for method in chosen if method not in EXPLANATION_METHODS]
    if unknown:
        raise ValueError(
            f"CAM method {unknown[0]!r} is not one of: {', '.join(EXPLANATION_METHODS)}"
        )
    info, dataset = inspectable(run)
    key = f"{images}"
    stored = None if force else read_section(info.path, "sanity", key, dataset)
    if stored is not None and set(chosen) <= set(stored["methods"]):
        return stored
    predictor, sets = opened_run(info, events)
    started = time.perf_counter()
    positions = _sample(sets.positions[STRESS_SUBSET], sets.data.labels.numpy(), images)
    pixels = sets.data.images[positions]
    model = copy.deepcopy(predictor.model).float().cpu().eval()
    model.requires_grad_(True)
    batch = to_model_input(pixels, predictor.preprocessing)
    with torch.no_grad():
        targets = model(batch).argmax(1).tolist()
    inputs = [batch[i : i + 1] for i in range(len(batch))]
    spec = predictor.spec
    masks = [head_mask(image) for image in pixels.numpy()]
    results: dict[str, Any] = {}
    for number, method in enumerate(chosen):
        report_progress(events, SANITY, number, len(chosen) + 1, f"Sanity checks: {method}")
        compute = cam_function(method, lambda m: cam_layer(m, spec))
        results[method] = _method_sanity(method, model, spec.name, inputs, targets, compute, masks)
    report_progress(events, SANITY, len(chosen), len(chosen) + 1, "Sanity checks: random map")
    with RandomCAM(model=model, target_layers=[cam_layer(model, spec)]) as random_cam:
        torch.manual_seed(0)
        random_maps = np.stack([
            random_cam(input_tensor=x, targets=[ClassifierOutputSoftmaxTarget(t)])[0]
            for x, t in zip(inputs, targets, strict=True)
        ])  # fmt: skip
    report_progress(events, SANITY, len(chosen) + 1, len(chosen) + 1, "Sanity checks done")
    return write_section(info.path, "sanity", key, {
        "dataset": dataset, "images": len(positions), "subset": STRESS_SUBSET,
        "methods": chosen, "randomisation_limit": RANDOMISATION_LIMIT,
        "inside_head_limit": INSIDE_HEAD_LIMIT, "road_percentiles": list(ROAD_PERCENTILES),
        "random_road": road_score(model, batch, random_maps, targets),
        "results": {name: vars(result) for name, result in results.items()},
        "seconds": round(time.perf_counter() - started, 2),
    })  # fmt: skip


def _method_sanity(
    method: str, model: nn.Module, model_name: str, inputs: list[torch.Tensor],
    targets: list[int], compute: MapFunction, masks: list[np.ndarray],
) -> MethodSanity:  # fmt: skip
    trained = [compute(model, x, targets[i]) for i, x in enumerate(inputs)]
    steps, passes = randomisation_test(model, model_name, inputs, targets, compute, trained)
    height, width = masks[0].shape
    shares = [
        inside_share(cv2.resize(cam, (width, height)), mask)
        for cam, mask in zip(trained, masks, strict=True)
    ]
    inside = float(np.mean(shares))
    road = road_score(model, torch.cat(inputs), np.stack(trained), targets)
    return MethodSanity(method, steps, passes, road, inside, inside >= INSIDE_HEAD_LIMIT)


def _sample(positions: np.ndarray, labels: np.ndarray, count: int) -> np.ndarray:
    """Up to `count` positions, taking the classes in turn (first images of each)."""
    by_class = [positions[labels[positions] == label] for label in np.unique(labels[positions])]
    chosen = []
    for index in range(max((len(members) for members in by_class), default=0)):
        for members in by_class:
            if index < len(members) and len(chosen) < count:
                chosen.append(members[index])
    return np.array(sorted(chosen), dtype=np.int64)
