"""The one preprocessing shared by the dataset cache, training, evaluation and inference.

Images are brain MRI slices: intensity only. Everything is reduced to one grayscale channel
at a square size here; models that want three channels repeat it (see `core.models`).
"""

from __future__ import annotations

import cv2
import numpy as np

from core.imaging import to_grayscale


def resize_square(pixels: np.ndarray, size: int) -> np.ndarray:
    """Grayscale uint8 (size, size) image from any decoded image, stretched to a square.

    Area interpolation when shrinking avoids aliasing; linear when enlarging.
    """
    gray = to_grayscale(pixels)
    if gray.shape == (size, size):
        return np.ascontiguousarray(gray)
    shrinking = gray.shape[0] > size or gray.shape[1] > size
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(gray, (size, size), interpolation=interpolation)
