"""Pixels that st.image can always show, whatever their shape."""

from __future__ import annotations

import cv2
import numpy as np

# Streamlit shrinks any image wider than this to this width, keeping the aspect ratio; a strip
# less than 1/1460 as tall as it is wide would become zero rows high and st.image would raise.
STREAMLIT_MAX_IMAGE_WIDTH = 2 * 730


def displayable(pixels: np.ndarray) -> np.ndarray:
    """`pixels` as they are, or shrunk to Streamlit's width limit with at least one row."""
    height, width = pixels.shape[:2]
    if width <= STREAMLIT_MAX_IMAGE_WIDTH:
        return pixels
    new_height = max(1, round(height * STREAMLIT_MAX_IMAGE_WIDTH / width))
    return cv2.resize(pixels, (STREAMLIT_MAX_IMAGE_WIDTH, new_height), interpolation=cv2.INTER_AREA)
