"""Grad-CAM family: planted signals, shapes, hook release, overlays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core.inference.explain import CAM_METHODS, EXPLANATION_METHODS, activation_map, overlay
from core.inference.predictor import Predictor
from core.training.fit import fit
from tests.test_training import tiny_request


class SpotDetector(nn.Module):
    """Class 1 fires on bright pixels anywhere: its CAM must light up where they are."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.classifier = nn.Linear(4, 2)
        with torch.no_grad():
            self.features[0].weight.fill_(1 / 9)
            self.features[0].bias.fill_(-0.5)
            self.classifier.weight.copy_(torch.tensor([[-1.0] * 4, [1.0] * 4]))
            self.classifier.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "hirescam", "layercam", "occlusion"])
def test_cam_of_a_planted_signal_lands_on_it(method: str) -> None:
    model = SpotDetector().eval()
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 4:10, 20:26] = 1.0  # the planted bright square, top right
    cam = activation_map(model, model.features, x, method=method, target_class=1)
    assert cam.shape == (32, 32)
    inside = cam[4:10, 20:26].mean()
    outside = np.delete(
        cam.ravel(), np.ravel_multi_index(np.mgrid[4:10, 20:26].reshape(2, -1), (32, 32))
    ).mean()
    assert inside > 0.5 and inside > 4 * outside
    peak = np.unravel_index(cam.argmax(), cam.shape)
    assert 3 <= peak[0] <= 10 and 19 <= peak[1] <= 26


def test_hooks_are_released_after_many_calls() -> None:
    model = SpotDetector().eval()
    x = torch.rand(1, 1, 16, 16)
    for method in CAM_METHODS:
        for _ in range(5):
            activation_map(model, model.features, x, method=method, target_class=1)
    hooks = [
        len(module._forward_hooks) + len(module._backward_hooks) + len(module._forward_pre_hooks)
        for module in model.modules()
    ]
    assert sum(hooks) == 0


def test_unknown_method_is_refused() -> None:
    model = SpotDetector().eval()
    with pytest.raises(ValueError, match="gradcam"):
        activation_map(
            model, model.features, torch.rand(1, 1, 8, 8), method="magic", target_class=0
        )


def test_predictor_cam_has_the_input_size_for_every_method(demo_dataset_dir: Path) -> None:
    predictor = Predictor.from_run(fit(tiny_request(demo_dataset_dir, epochs=1)).run_id)
    image = np.random.default_rng(0).integers(0, 256, (90, 130), dtype=np.uint8)
    for method in EXPLANATION_METHODS:
        explanation = predictor.explain(image, method=method, target_class=2)
        assert explanation.cam.shape == (90, 130)
        assert explanation.target_class == 2
        assert explanation.cam.min() >= 0.0 and explanation.cam.max() <= 1.0
    drawn = overlay(image, explanation.cam, opacity=0.5)
    assert drawn.shape == (90, 130, 3) and drawn.dtype == np.uint8
    with pytest.raises(ValueError, match="target class"):
        predictor.explain(image, target_class=7)
