"""Pixel arrays: the one error type of the reader, decoded frames, grayscale, windowing,
resizing to the square the models see, and the size checks every decoder applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_MAX_REASON_CHARS = 240


class ImageReadError(ValueError):
    """A file that cannot be read as an image; str(err) is "name: reason" on one line."""

    name: str
    reason: str

    def __init__(self, name: str, reason: str) -> None:
        self.name = " ".join(str(name).splitlines())
        self.reason = one_line(reason)
        super().__init__(f"{self.name}: {self.reason}")

    def __reduce__(self) -> tuple[type[ImageReadError], tuple[str, str]]:
        # DataLoader workers pickle exceptions; the default would call __init__(message).
        return type(self), (self.name, self.reason)


@dataclass(frozen=True, eq=False)  # eq=False: comparing/hashing ndarrays field-wise would fail
class DecodedImage:
    """One decoded frame: uint8 pixels plus facts about the original data."""

    pixels: np.ndarray
    format: str
    mode: str
    width: int
    height: int
    channels: int
    bit_depth: int
    frames: int = 1


def to_grayscale(pixels: np.ndarray) -> np.ndarray:
    """Return uint8 (H, W) luminance; RGB uses Pillow's ITU-R 601 "L" weights, gray passes."""
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected uint8 pixels, got {arr.dtype}")
    if arr.ndim == 2:
        return arr
    if arr.ndim == 3 and arr.shape[2] == 1:
        return np.ascontiguousarray(arr[..., 0])
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected (H, W) or (H, W, 3) pixels, got shape {arr.shape}")
    rgb = arr.astype(np.uint32)
    # Pillow's fixed-point formula, so results match Image.convert("L") bit for bit.
    lum = rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000
    return (lum >> 16).astype(np.uint8)


def rescale_to_uint8(values: np.ndarray) -> np.ndarray:
    """Map any numeric array to uint8 through its robust 0.5-99.5 percentile window."""
    arr = np.asarray(values, dtype=np.float32)
    if not np.isfinite(arr).all():
        arr = np.nan_to_num(arr, nan=0.0, posinf=0.0, neginf=0.0)
    if arr.size == 0:
        return np.zeros(arr.shape, dtype=np.uint8)
    low, high = (float(v) for v in np.percentile(arr, (0.5, 99.5)))
    if high <= low:  # mostly-flat image with a few outliers: fall back to the full range
        low, high = float(arr.min()), float(arr.max())
    if high <= low:
        return np.zeros(arr.shape, dtype=np.uint8)
    out = (arr - low) * np.float32(255.0 / (high - low))
    np.clip(out, 0.0, 255.0, out=out)
    return (out + 0.5).astype(np.uint8)


def check_frame_pixels(label: str, width: int, height: int, max_pixels: int) -> None:
    """Reject a frame whose header size is empty or beyond max_pixels (before decoding it)."""
    if width <= 0 or height <= 0:
        raise ImageReadError(label, f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageReadError(
            label,
            f"{width}x{height} = {width * height:,} pixels exceeds the {max_pixels:,}-pixel "
            "limit (possible decompression bomb)",
        )


def one_line(text: str) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _MAX_REASON_CHARS else flat[: _MAX_REASON_CHARS - 3] + "..."


def frame_indices(label: str, count: int, frame: int | None) -> range:
    """The frames to decode: all of them for frame=None, else just `frame` (range-checked)."""
    if frame is None:
        return range(count)
    if frame >= count:
        raise ImageReadError(label, f"frame {frame} out of range ({count} frame(s))")
    return range(frame, frame + 1)


def check_total_pixels(label: str, total: int, total_limit: int) -> None:
    """Reject a multi-frame read whose frames together exceed total_limit pixels."""
    if total > total_limit:
        raise ImageReadError(
            label, f"frames total {total:,} pixels, over the {total_limit:,}-pixel limit"
        )


def owned_uint8(arr: np.ndarray) -> np.ndarray:
    """A C-contiguous, writable uint8 copy unless `arr` already is one."""
    out = np.ascontiguousarray(arr, dtype=np.uint8)
    return out if out.flags.writeable else out.copy()


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
