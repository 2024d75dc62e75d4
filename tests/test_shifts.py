"""Stress-test shifts: severity 0 is the identity, and a higher severity moves the image further."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from core.data.synthetic import render_slice
from core.imaging.shifts import SHIFTS, apply_shift, identity_severity


@pytest.fixture(scope="module")
def slice_image() -> np.ndarray:
    return render_slice("glioma", np.random.default_rng(3), 160)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference in grey levels."""
    return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).mean())


@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_severity_zero_is_the_identity(name: str, slice_image: np.ndarray) -> None:
    shifted = apply_shift(slice_image, name, identity_severity(SHIFTS[name]), seed=5)
    np.testing.assert_array_equal(shifted, slice_image)


@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_higher_severity_moves_the_image_further(name: str, slice_image: np.ndarray) -> None:
    shift = SHIFTS[name]
    distances = [
        distance(apply_shift(slice_image, name, severity, seed=5), slice_image)
        for severity in shift.severities
    ]
    assert distances[0] == 0.0
    assert all(later >= earlier for earlier, later in pairwise(distances))
    assert distances[-1] > 1.0, distances  # the strongest severity really changes the image
    assert shift.moderate in shift.severities


@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_a_shift_keeps_size_and_type_and_repeats_with_its_seed(
    name: str, slice_image: np.ndarray
) -> None:
    severity = SHIFTS[name].moderate
    first = apply_shift(slice_image, name, severity, seed=9)
    assert first.shape == slice_image.shape and first.dtype == np.uint8
    np.testing.assert_array_equal(first, apply_shift(slice_image, name, severity, seed=9))


def test_colour_input_is_shifted_as_grayscale_and_bad_names_are_refused(
    slice_image: np.ndarray,
) -> None:
    colour = np.repeat(slice_image[..., None], 3, axis=2)
    np.testing.assert_array_equal(
        apply_shift(colour, "blur", 1, seed=0), apply_shift(slice_image, "blur", 1, seed=0)
    )
    with pytest.raises(ValueError, match="unknown shift"):
        apply_shift(slice_image, "fog", 1)
    with pytest.raises(ValueError, match="outside its range"):
        apply_shift(slice_image, "rotation", -5)
