"""A volume as Classify and `predict` use it: uint8 voxels windowed once from the whole volume,
the affine that says which array axis is axial, and slices cut in the radiological display.

The voxels stay in the file's array order; a plane's stack is a view (flips and a transpose,
nibabel's `apply_orientation`), so changing plane copies nothing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from nibabel.orientations import (
    aff2axcodes,
    apply_orientation,
    axcodes2ornt,
    inv_ornt_aff,
    io_orientation,
    ornt_transform,
)

from core.imaging.pixels import ImageReadError

# 512 x 512 x 152 slices; a 1 mm brain (256^3) is 16.8 million. Held as float32 while windowed.
MAX_VOLUME_VOXELS: int = 40_000_000
MAX_VOLUME_DATA_BYTES: int = 4 * MAX_VOLUME_VOXELS  # float32 at the voxel limit
MAX_VOLUME_FILE_BYTES: int = 256 * 1024 * 1024  # a .nii, a .nii.gz, a zip (also unpacked)
MAX_SERIES_FILES: int = 4096
MAX_SLICE_SIDE: int = 1024  # a slice stretched to square pixels grows no larger than this

WINDOW_PERCENTILES: tuple[float, float] = (0.5, 99.5)
# Percentiles of a strided sample: exact enough for a window, and no copy of a 40 M-voxel array.
WINDOW_SAMPLE_VOXELS: int = 4_000_000

PLANES: tuple[str, ...] = ("axial", "coronal", "sagittal")
STORED = "stored"  # the only plane of a volume whose files carry no orientation

# nibabel axis codes (the direction each index grows towards) of a plane's (slice, row, column),
# so slices look as radiologists show them: the patient's right on the image's left (axial,
# coronal), anterior (axial) or superior (coronal, sagittal) at the top, the face on the left
# (sagittal). Axial slices go from the feet to the top of the head.
_DISPLAY_CODES = {
    "axial": ("S", "P", "L"),
    "coronal": ("A", "I", "L"),
    "sagittal": ("L", "I", "P"),
}
_WORLD_AXIS = {"sagittal": 0, "coronal": 1, "axial": 2}  # the RAS axis normal to each plane


@dataclass(frozen=True, eq=False)  # eq=False: comparing ndarrays field-wise would fail
class Volume:
    """A 3-D scan: uint8 voxels in the file's array order and where they lie in the patient."""

    voxels: np.ndarray  # (i, j, k) uint8, windowed once over the whole volume
    affine: np.ndarray  # 4x4, voxel index -> RAS+ millimetres (nibabel's convention)
    source: str  # the file's name, as errors and tables name it
    format: str  # "NIfTI-1", "NIfTI-2" or "DICOM series"
    window: tuple[float, float]  # the stored values that became 0 and 255
    orientation_known: bool = True
    notes: tuple[str, ...] = ()  # what a reader should know: assumptions, files left out
    series_uid: str | None = None
    description: str = ""  # a DICOM series' description and modality

    @property
    def planes(self) -> tuple[str, ...]:
        """The planes slices can be cut in: all three, or only as stored without orientation."""
        return PLANES if self.orientation_known else (STORED,)

    @property
    def axis_codes(self) -> tuple[str, str, str] | None:
        """Where each array axis points ('R', 'A', 'S' for RAS+), or None when unknown."""
        if not self.orientation_known:
            return None
        first, second, third = (str(code) for code in aff2axcodes(self.affine))
        return first, second, third

    def array_axis(self, plane: str) -> int:
        """The array axis that runs across `plane`'s slices (axial: the one closest to S-I)."""
        self._check(plane)
        if plane == STORED:
            return 0
        ornt = io_orientation(self.affine)
        return int(np.flatnonzero(ornt[:, 0] == _WORLD_AXIS[plane])[0])

    def stack(self, plane: str) -> np.ndarray:
        """(slices, rows, columns) view of the voxels in `plane`'s display orientation."""
        self._check(plane)
        if plane == STORED:
            return self.voxels
        return apply_orientation(self.voxels, self._transform(plane))

    def spacing(self, plane: str) -> tuple[float, float, float]:
        """Millimetres between slices, rows and columns of `plane`'s stack."""
        self._check(plane)
        affine = self.affine
        if plane != STORED:
            affine = affine @ inv_ornt_aff(self._transform(plane), self.voxels.shape)
        sizes = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
        return (float(sizes[0]), float(sizes[1]), float(sizes[2]))

    def slice_count(self, plane: str) -> int:
        """How many slices `plane` has."""
        return int(self.stack(plane).shape[0])

    def slice_pixels(self, plane: str, index: int) -> np.ndarray:
        """Slice `index` (0-based) of `plane` as a uint8 image with square pixels."""
        stack = self.stack(plane)
        if not 0 <= index < stack.shape[0]:
            raise IndexError(f"{plane} slice {index} is not in 0..{stack.shape[0] - 1}")
        _, row_mm, column_mm = self.spacing(plane)
        return square_pixels(np.ascontiguousarray(stack[index]), row_mm, column_mm)

    def describe(self) -> str:
        """One line: format, size, voxel size and stored orientation."""
        shape = " x ".join(str(n) for n in self.voxels.shape)
        sizes = np.sqrt((self.affine[:3, :3] ** 2).sum(axis=0))
        millimetres = " x ".join(f"{size:.3g}" for size in sizes)
        codes = self.axis_codes
        stored = f"array axes point to {''.join(codes)}" if codes else "orientation unknown"
        return f"{self.format}, {shape} voxels of {millimetres} mm, {stored}"

    def _check(self, plane: str) -> None:
        if plane not in self.planes:
            raise ValueError(f"plane {plane!r} is not one of {', '.join(self.planes)}")

    def _transform(self, plane: str) -> np.ndarray:
        return ornt_transform(io_orientation(self.affine), axcodes2ornt(_DISPLAY_CODES[plane]))


def volume_slice_label(name: str, plane: str, index: int, count: int) -> str:
    """How a volume's slice is named in tables and CLI output: 'scan.nii.gz [axial 78/155]'."""
    return f"{name} [{plane} {index + 1}/{count}]"


def square_pixels(image: np.ndarray, row_mm: float, column_mm: float) -> np.ndarray:
    """`image` stretched along its coarser axis so that a pixel is as tall as it is wide (a
    coronal slice of 5 mm axial slices would otherwise be squashed five times)."""
    if not (math.isfinite(row_mm) and math.isfinite(column_mm)) or min(row_mm, column_mm) <= 0:
        return image
    finest = min(row_mm, column_mm)
    if max(row_mm, column_mm) / finest < 1.01:
        return image
    rows, columns = image.shape[0] * row_mm / finest, image.shape[1] * column_mm / finest
    limit = max(MAX_SLICE_SIDE, *image.shape[:2])
    shrink = min(1.0, limit / max(rows, columns))
    size = (max(1, round(columns * shrink)), max(1, round(rows * shrink)))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def check_volume_size(label: str, shape: Sequence[int], itemsize: int) -> None:
    """Refuse, from a header, a volume with no voxels or more voxels or bytes than allowed."""
    written = " x ".join(str(int(n)) for n in shape)
    if not shape or any(int(n) <= 0 for n in shape):
        raise ImageReadError(label, f"volume has no voxels ({written})")
    voxels = math.prod(int(n) for n in shape)
    if voxels > MAX_VOLUME_VOXELS:
        raise ImageReadError(
            label, f"{written} = {voxels:,} voxels exceeds the {MAX_VOLUME_VOXELS:,}-voxel limit"
        )
    if voxels * itemsize > MAX_VOLUME_DATA_BYTES:
        raise ImageReadError(
            label,
            f"{voxels * itemsize:,} bytes of voxel data exceed the "
            f"{MAX_VOLUME_DATA_BYTES:,}-byte limit",
        )


def check_file_size(label: str, size: int, limit: int | None = None) -> None:
    """Refuse an empty file, or one over `limit` bytes (a volume's limit when None)."""
    limit = MAX_VOLUME_FILE_BYTES if limit is None else limit
    if size == 0:
        raise ImageReadError(label, "empty file")
    if size > limit:
        raise ImageReadError(label, f"file is {size:,} bytes, over the {limit:,}-byte limit")


def robust_window(values: np.ndarray) -> tuple[float, float]:
    """The whole volume's 0.5 and 99.5 percentiles (its min and max when those coincide)."""
    flat = values.reshape(-1)
    sample = flat[:: max(1, flat.size // WINDOW_SAMPLE_VOXELS)]
    sample = sample[np.isfinite(sample)]
    if sample.size == 0:
        return 0.0, 0.0
    low, high = (float(v) for v in np.percentile(sample, WINDOW_PERCENTILES))
    if high <= low:  # mostly one value (background): fall back to the full range
        finite = flat[np.isfinite(flat)]
        low, high = float(finite.min()), float(finite.max())
    return low, high


def window_volume(values: np.ndarray) -> tuple[np.ndarray, tuple[float, float], str | None]:
    """float32 voxels -> (uint8 voxels, window, a note when the volume is flat).

    One window for the whole volume, never one per slice: a slice of background stays dark
    instead of being stretched into noise, and slices stay comparable. `values` is overwritten.
    """
    low, high = robust_window(values)
    np.nan_to_num(values, copy=False, nan=low, posinf=high, neginf=low)
    if high <= low:
        return np.zeros(values.shape, np.uint8), (low, high), f"every voxel is {low:g}"
    np.subtract(values, np.float32(low), out=values)
    np.multiply(values, np.float32(255.0 / (high - low)), out=values)
    np.clip(values, 0.0, 255.0, out=values)
    np.add(values, np.float32(0.5), out=values)
    return values.astype(np.uint8), (low, high), None


def window_to_uint8(values: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Values mapped through a given window, as `window_volume` maps a volume's voxels."""
    low, high = window
    scaled = (np.asarray(values, np.float32) - np.float32(low)) * np.float32(255.0 / (high - low))
    return (np.clip(scaled, 0.0, 255.0) + np.float32(0.5)).astype(np.uint8)
