"""Inspection results as images: the filter grid and the feature-map strip (uint8 arrays the
page shows and the CLI writes as PNG)."""

from __future__ import annotations

import base64
from pathlib import Path

import cv2
import numpy as np
import torch

from core.atomic_files import write_bytes_atomic

TILE = 64  # pixels per feature map in the strip
GAP_VALUE = 255  # the white between kernels and maps
GAP = 2  # pixels of white between two maps of a strip


def filter_image(grid: np.ndarray, scale: int = 8) -> np.ndarray:
    """One input channel's kernel grid (float in [0, 1], NaN gaps) as a grey uint8 image,
    each weight `scale` pixels wide."""
    image = np.where(np.isnan(grid), GAP_VALUE / 255, grid)
    image = (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)


def map_tiles(output: torch.Tensor, channels: list[int], tile: int = TILE) -> np.ndarray:
    """The chosen channels of one image's stage output (1, C, H, W), each scaled to [0, 255]
    on its own and enlarged to `tile` pixels (nearest: a map's cells stay visible), side by
    side with a gap. A viridis colour map makes small differences visible."""
    tiles = []
    for channel in channels:
        activation = output[0, channel].float().cpu().numpy()
        span = activation.max() - activation.min()
        scaled = (activation - activation.min()) / span if span > 0 else np.zeros_like(activation)
        grey = (scaled * 255).astype(np.uint8)
        grey = cv2.resize(grey, (tile, tile), interpolation=cv2.INTER_NEAREST)
        tiles.append(cv2.applyColorMap(grey, cv2.COLORMAP_VIRIDIS)[..., ::-1])
        tiles.append(np.full((tile, GAP, 3), GAP_VALUE, np.uint8))
    return np.concatenate(tiles[:-1], axis=1) if tiles else np.zeros((tile, 0, 3), np.uint8)


def wrap_tiles(tiles: np.ndarray, per_row: int, tile: int = TILE) -> np.ndarray:
    """A strip from `map_tiles` broken into rows of `per_row` maps, one under the other."""
    step = per_row * (tile + GAP)
    rows = [tiles[:, start : start + step] for start in range(0, tiles.shape[1], step)]
    return stack_rows(rows)


def stack_rows(rows: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """RGB rows of possibly different widths, one under the other, padded white on the right."""
    width = max(row.shape[1] for row in rows)
    padded = []
    for row in rows:
        extra = np.full((row.shape[0], width - row.shape[1], 3), GAP_VALUE, np.uint8)
        padded += [
            np.concatenate([row, extra], axis=1),
            np.full((gap, width, 3), GAP_VALUE, np.uint8),
        ]
    return np.concatenate(padded[:-1], axis=0)


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an RGB or grey uint8 image as PNG, atomically."""
    pixels = image[..., ::-1] if image.ndim == 3 else image  # OpenCV writes BGR
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels))
    if not ok:
        raise ValueError(f"cannot encode {path.name} as PNG")
    write_bytes_atomic(path, encoded.tobytes())


THUMBNAIL = 64  # pixels of the projector's hover thumbnails
THUMBNAIL_QUALITY = 75  # JPEG: a few KB each, so 816 of them stay about a megabyte


def thumbnail_url(image: np.ndarray, size: int = THUMBNAIL) -> str:
    """A small JPEG of a decoded slice (grey or RGB, any dtype) as a data URL, for a tooltip."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image[..., :3], cv2.COLOR_RGB2GRAY)
    grey = grey.astype(np.float32)
    low, high = float(grey.min()), float(grey.max())
    scaled = ((grey - low) / (high - low) * 255 if high > low else grey * 0).astype(np.uint8)
    small = cv2.resize(scaled, (size, size), interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, THUMBNAIL_QUALITY])
    if not ok:
        raise ValueError("cannot encode a thumbnail")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")
