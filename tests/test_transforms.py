"""Batch augmentation and the one preprocessing used by training and inference."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.nn import functional

from core.config import AUGMENT_PARTS, AugmentConfig, Preprocessing, augmentation
from core.imaging.model_input import make_preprocessing, prepare_images, to_model_input
from core.imaging.pixels import resize_square
from core.training.augment import _warp, augment_batch
from core.training.request import NO_AUGMENTATION


@pytest.fixture
def batch() -> torch.Tensor:
    generator = np.random.default_rng(0)
    images = generator.integers(0, 256, (8, 32, 32), dtype=np.uint8)
    images[:, :, :8] = 0  # an asymmetric dark band, so flips are visible
    return torch.from_numpy(images)


def test_no_augmentation_only_rescales(batch: torch.Tensor) -> None:
    out = augment_batch(batch, NO_AUGMENTATION, torch.Generator().manual_seed(0))
    assert out.shape == (8, 1, 32, 32)
    torch.testing.assert_close(out, batch.unsqueeze(1).float() / 255)


def test_flip_is_drawn_per_sample(batch: torch.Tensor) -> None:
    config = AugmentConfig(flip=True, rotate_degrees=0, scale=0, shift=0, brightness=0, contrast=0)
    out = augment_batch(batch, config, torch.Generator().manual_seed(3))
    original = batch.unsqueeze(1).float() / 255
    flipped = [bool(torch.equal(out[i], original[i].flip(-1))) for i in range(8)]
    unchanged = [bool(torch.equal(out[i], original[i])) for i in range(8)]
    assert all(f or u for f, u in zip(flipped, unchanged, strict=True))
    assert any(flipped) and any(unchanged)


def test_geometry_and_intensity_vary_per_sample_and_stay_in_range(batch: torch.Tensor) -> None:
    same = batch[:1].repeat(6, 1, 1)
    out = augment_batch(same, AugmentConfig(), torch.Generator().manual_seed(1))
    assert out.min() >= 0 and out.max() <= 1
    differences = [float((out[0] - out[i]).abs().mean()) for i in range(1, 6)]
    assert min(differences) > 1e-3  # each copy of the same image got its own parameters


def test_augmentation_is_reproducible_with_a_seed(batch: torch.Tensor) -> None:
    first = augment_batch(batch, AugmentConfig(), torch.Generator().manual_seed(7))
    second = augment_batch(batch, AugmentConfig(), torch.Generator().manual_seed(7))
    torch.testing.assert_close(first, second)


def test_model_input_normalises_and_repeats_gray_for_rgb_models(batch: torch.Tensor) -> None:
    rgb = make_preprocessing(image_size=32, channels=3, pretrained=True)
    x = to_model_input(batch, rgb)
    assert x.shape == (8, 3, 32, 32) and x.dtype == torch.float32
    pixel = float(batch[0, 5, 20]) / 255
    expected = [(pixel - mean) / std for mean, std in zip(rgb.mean, rgb.std, strict=True)]
    torch.testing.assert_close(x[0, :, 5, 20], torch.tensor(expected))
    gray = make_preprocessing(image_size=32, channels=1, pretrained=False, images=batch.numpy())
    normalised = to_model_input(batch, gray)
    assert normalised.shape == (8, 1, 32, 32)
    assert abs(float(normalised.mean())) < 0.05 and abs(float(normalised.std()) - 1) < 0.05


def test_inference_preparation_matches_training_preparation() -> None:
    image = np.random.default_rng(1).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    preprocessing = Preprocessing(64, 1, (0.3,), (0.2,))
    from_files = prepare_images([image], preprocessing)
    from_cache = to_model_input(torch.from_numpy(resize_square(image, 64)[None]), preprocessing)
    torch.testing.assert_close(from_files, from_cache)


def test_augmentation_parts_name_the_switchable_groups() -> None:
    # The plain default: every part but the scanner-like one, which came later.
    assert augmentation(["flip", "geometry", "intensity"]) == AugmentConfig()
    everything = augmentation(list(AUGMENT_PARTS))
    assert everything.parts == AUGMENT_PARTS and everything.label.endswith("+scanner")
    assert augmentation([]) == NO_AUGMENTATION and NO_AUGMENTATION.parts == ()
    flip_only = augmentation(["flip"])
    assert flip_only.flip and flip_only.parts == ("flip",)
    assert flip_only.rotate_degrees == flip_only.brightness == 0.0
    assert augmentation(["intensity", "geometry"]).parts == ("geometry", "intensity")
    with pytest.raises(ValueError, match="unknown augmentation spin"):
        augmentation(["flip", "spin"])


def test_a_recipes_strengths_survive_unticking_another_part() -> None:
    strong = AugmentConfig(rotate_degrees=25.0, scale=0.3, noise=0.04, blur=0.8)
    kept = augmentation(["geometry", "scanner"], like=strong)
    assert kept.rotate_degrees == 25.0 and kept.noise == 0.04 and kept.blur == 0.8
    assert not kept.flip and kept.brightness == kept.contrast == 0.0
    # A part the template has off gets the workbench's default strengths.
    assert (
        augmentation(["intensity"], like=NO_AUGMENTATION).brightness == AugmentConfig().brightness
    )


def _scanner_only(**strengths: float) -> AugmentConfig:
    off = {"flip": False, "rotate_degrees": 0, "scale": 0, "shift": 0, "brightness": 0}
    return AugmentConfig(**off, contrast=0, **strengths)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "strengths", [{"gamma": 0.5}, {"blur": 1.0}, {"noise": 0.05}, {"salt_pepper": 0.05}]
)
def test_each_scanner_change_hits_about_half_the_images(strengths: dict[str, float]) -> None:
    gradient = torch.linspace(40, 215, 32).round().to(torch.uint8).repeat(32, 1)
    same = gradient.expand(64, 32, 32).clone()
    original = same.unsqueeze(1).float() / 255
    out = augment_batch(same, _scanner_only(**strengths), torch.Generator().manual_seed(5))
    assert out.min() >= 0 and out.max() <= 1
    changed = (out - original).abs().flatten(1).amax(1) > 1e-4
    assert 10 <= int(changed.sum()) <= 54  # about half, each drawn per image


def test_salt_and_pepper_sets_pixels_to_black_or_white_and_blur_smooths() -> None:
    grey = torch.full((64, 1, 32, 32), 0.5)
    peppered = augment_batch(grey, _scanner_only(salt_pepper=0.5), torch.Generator().manual_seed(2))
    hit = peppered != 0.5
    assert hit.any() and set(peppered[hit].unique().tolist()) <= {0.0, 1.0}
    stripes = torch.zeros(64, 1, 32, 32)
    stripes[..., ::2] = 1.0
    blurred = augment_batch(stripes, _scanner_only(blur=1.5), torch.Generator().manual_seed(2))
    smoothed = blurred.std(dim=(1, 2, 3)) < stripes.std(dim=(1, 2, 3)) - 1e-4
    # A sigma drawn near 0 changes the stripes by less than 1e-3: as good as untouched.
    untouched = (blurred - stripes).abs().amax(dim=(1, 2, 3)) < 1e-3
    assert bool((smoothed | untouched).all()) and smoothed.any() and untouched.any()


def test_warp_samples_the_same_grid_as_affine_grid() -> None:
    images = torch.rand(5, 1, 24, 40, generator=torch.Generator().manual_seed(4))
    angle, zoom = torch.tensor([0.0, 0.3, -0.5, 1.2, 0.1]), torch.tensor([1.0, 0.8, 1.3, 1.0, 0.7])
    shift_x, shift_y = torch.tensor([0.0, 0.1, -0.2, 0.0, 0.05]), torch.tensor([0, 0, 0.1, -0.3, 0])
    cosine, sine = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cosine, -sine, shift_x], 1), torch.stack([sine, cosine, shift_y], 1)], 1
    )
    grid = functional.affine_grid(theta, list(images.shape), align_corners=False)
    expected = functional.grid_sample(images, grid, align_corners=False)
    torch.testing.assert_close(_warp(images, angle, zoom, shift_x, shift_y), expected)


def test_only_the_share_of_images_gets_geometry_and_intensity() -> None:
    gradient = torch.linspace(40, 215, 32).round().to(torch.uint8).repeat(32, 1)
    same = gradient.expand(200, 32, 32).clone()
    config = dataclasses.replace(augmentation(["geometry", "intensity"]), share=0.3)
    out = augment_batch(same, config, torch.Generator().manual_seed(8))
    changed = (out - same.unsqueeze(1).float() / 255).abs().flatten(1).amax(1) > 1e-4
    assert 35 <= int(changed.sum()) <= 85  # about 60 of 200
    assert augment_batch(same[:1], config, torch.Generator().manual_seed(0)).shape == (1, 1, 32, 32)
