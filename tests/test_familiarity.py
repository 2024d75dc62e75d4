"""Warnings for inputs that look unlike the training images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.data import get_testdata_file

from core.data.training_data import prepare_training_data
from core.imaging.familiarity import training_ranges, unfamiliar_reasons
from core.imaging.reader import read_image
from core.inference.predictor import Predictor
from core.training.fit import fit
from tests.test_training import tiny_request


def test_ranges_cover_the_training_images_and_flag_outliers(demo_dataset_dir: Path) -> None:
    data = prepare_training_data(tiny_request(demo_dataset_dir).data)
    images = data.subset("train")[0].numpy()
    ranges = training_ranges(images)
    flagged = sum(bool(unfamiliar_reasons(image, ranges)) for image in images)
    assert flagged <= 0.05 * len(images)  # 0.5-99.5 percentiles of three statistics
    white = np.full((64, 64), 250, dtype=np.uint8)
    assert any("brightness" in reason for reason in unfamiliar_reasons(white, ranges))
    inverted = 255 - images[0]
    assert unfamiliar_reasons(inverted, ranges)


def test_colour_pictures_are_flagged_even_without_ranges() -> None:
    photo = np.zeros((32, 32, 3), dtype=np.uint8)
    photo[..., 0] = 200  # strongly red
    assert any("colour" in reason for reason in unfamiliar_reasons(photo, None))
    gray_as_rgb = np.repeat(np.arange(32, dtype=np.uint8)[None, :, None] * 4, 32, axis=0)
    assert unfamiliar_reasons(np.repeat(gray_as_rgb, 3, axis=2), None) == []


def test_predictor_warns_about_a_ct_slice(demo_dataset_dir: Path) -> None:
    predictor = Predictor.from_run(fit(tiny_request(demo_dataset_dir, epochs=1)).run_id)
    assert predictor.input_ranges is not None
    ct = read_image(Path(get_testdata_file("CT_small.dcm"))).pixels
    warnings = predictor.predict(ct).warnings
    assert any("unlike the training images" in warning for warning in warnings)
