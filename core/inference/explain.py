"""Class activation maps (Grad-CAM family, from the maintained `grad-cam` package) and overlays.

The target layer comes from the model registry (`ModelSpec.cam_layer`). Every CAM object is
used as a context manager, so its hooks are removed after each call, even on errors.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from pytorch_grad_cam import EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from core.imaging.pixels import to_grayscale

CAM_METHODS = {
    "gradcam": GradCAM,
    "gradcam++": GradCAMPlusPlus,
    "hirescam": HiResCAM,
    "layercam": LayerCAM,
    "eigencam": EigenCAM,
}
# Chosen by the sanity checks of both fast recipes' runs on real data (docs/explanations.md):
# HiResCAM passed the randomisation test for both and had the highest ROAD score of the CAMs;
# LayerCAM, the default chosen by eye before, failed it for cnn_fast (its maps kept a rank
# correlation of 0.6 with the trained maps under all-random weights). A run's own stored
# checks override this (`core.inspection.store.preferred_method`).
DEFAULT_CAM_METHOD = "hirescam"
OCCLUSION = "occlusion"
EXPLANATION_METHODS = (*CAM_METHODS, OCCLUSION)
"""Every method Classify and `predict` offer: the CAMs, and occlusion sensitivity (captum) as a
model-agnostic reference that needs no target layer."""
CLASS_AGNOSTIC = frozenset({"eigencam"})
"""Methods whose map does not depend on the class asked for (EigenCAM: the first principal
component of the layer's activations)."""
METHOD_CAPTIONS = {
    "gradcam": "Grad-CAM: where the score of '{cls}' rose with the activations",
    "gradcam++": "Grad-CAM++: where the score of '{cls}' rose with the activations",
    "hirescam": "HiResCAM: where the score of '{cls}' rose with the activations",
    "layercam": "LayerCAM: where the score of '{cls}' rose with the activations",
    "eigencam": "EigenCAM: the layer's strongest activation pattern (the same for every class)",
    OCCLUSION: "Occlusion: where hiding a patch lowered the score of '{cls}' most",
}


@dataclass(frozen=True)
class Explanation:
    """Where the model looked: a map in [0, 1] the size of the input image."""

    method: str
    target_class: int
    cam: np.ndarray  # float32 (H, W), same height and width as the image explained


def activation_map(
    model: nn.Module, target_layer: nn.Module, x: torch.Tensor, *, method: str, target_class: int
) -> np.ndarray:
    """The map of one model input (1, C, H, W) for one class, at the input's size, in [0, 1]."""
    if method not in EXPLANATION_METHODS:
        raise ValueError(
            f"explanation method {method!r} is not one of: {', '.join(EXPLANATION_METHODS)}"
        )
    if method == OCCLUSION:
        return occlusion_map(model, x, target_class)
    with CAM_METHODS[method](model=model, target_layers=[target_layer]) as cam:
        result = cam(input_tensor=x, targets=[ClassifierOutputTarget(target_class)])
    return _unit_range(result[0])


def occlusion_map(model: nn.Module, x: torch.Tensor, target_class: int) -> np.ndarray:
    """Occlusion sensitivity (captum's `Occlusion`): how much the class's logit falls when a
    square of about a tenth of the image is set to the normalised input's zero (the training
    images' mean intensity), sliding by half a square; only the falls are kept."""
    from captum.attr import Occlusion  # imported on use: captum pulls in matplotlib

    channels, size = x.shape[1], x.shape[-1]
    window = max(4, size // 10)
    stride = max(2, window // 2)
    with torch.no_grad():
        attributions = Occlusion(model).attribute(
            x, target=target_class, baselines=0.0, perturbations_per_eval=32,
            sliding_window_shapes=(channels, window, window), strides=(channels, stride, stride),
        )  # fmt: skip
    return _unit_range(attributions[0].sum(0).clamp(min=0).float().cpu().numpy())


def _unit_range(heat: np.ndarray) -> np.ndarray:
    heat = np.nan_to_num(heat.astype(np.float32))
    span = float(heat.max() - heat.min())
    return (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)


def resize_map(cam: np.ndarray, height: int, width: int) -> np.ndarray:
    """A CAM stretched back to the original image's size (the inverse of the square resize)."""
    return cv2.resize(cam, (width, height), interpolation=cv2.INTER_LINEAR)


def overlay(image: np.ndarray, cam: np.ndarray, opacity: float = 0.45) -> np.ndarray:
    """RGB uint8 image with the CAM drawn over it as an OpenCV JET heat map.

    grad-cam's `show_cam_on_image` does the blend, (1 - opacity) * gray + opacity * heat, with
    image_weight = 1 - opacity. Unlike a plain blend it then divides by the blend's maximum, so
    the brightest pixel is always 255: a dim image (or opacity 0, the image alone) comes out
    brighter. An all-black image at opacity 0 stays black. opacity must be in [0, 1].
    """
    if not 0 <= opacity <= 1:
        raise ValueError(f"opacity must be in [0, 1], got {opacity}")
    gray = to_grayscale(image).astype(np.float32) / 255
    base = np.repeat(gray[..., None], 3, axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0: black image, opacity 0
        return show_cam_on_image(
            base, np.clip(cam, 0, 1), use_rgb=True, colormap=cv2.COLORMAP_JET,
            image_weight=1 - opacity,
        )  # fmt: skip
