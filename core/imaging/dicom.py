"""DICOM decoding behind core.imaging.read_image: header limits first, then frame by frame.

`core.imaging.reader` calls `decode_dicom`; a DICOM series (core.imaging.volumes) calls
`decode_dicom_values`, whose slices are windowed together afterwards. Everything raised for bad
input is ImageReadError or is wrapped into one by the caller.
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, get_decoder
from pydicom.pixels.decoders.base import Decoder
from pydicom.uid import UID

from core.imaging.pixels import (
    DecodedImage,
    ImageReadError,
    check_frame_pixels,
    check_total_pixels,
    frame_indices,
    owned_uint8,
    rescale_to_uint8,
)

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def decode_dicom(
    data: bytes, label: str, max_pixels: int, total_limit: int, frame: int | None
) -> list[DecodedImage]:
    """Decode frame `frame` (every frame when None) of a DICOM file held in memory."""
    header = _read(data, label, header_only=True)
    rows, columns, count = _geometry(header, label)
    # Limits come from the header alone, so a hostile file never gets its pixels expanded.
    check_frame_pixels(label, columns, rows, max_pixels)
    indices = frame_indices(label, count, frame)
    check_total_pixels(label, rows * columns * len(indices), total_limit)
    ds = _read(data, label, header_only=False)
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        raise ImageReadError(label, "DICOM file has no pixel data")
    decoder = _decoder(ds, label)
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    out = []
    for arr, _meta in decoder.iter_array(ds, indices=indices):
        pixels = owned_uint8(_to_uint8(arr, ds, photometric))
        out.append(
            DecodedImage(
                pixels=pixels,
                format="DICOM",
                mode=photometric,
                width=int(pixels.shape[1]),
                height=int(pixels.shape[0]),
                channels=int(ds.get("SamplesPerPixel") or 1),
                bit_depth=int(ds.get("BitsStored") or 8),
                frames=count,
            )
        )
    return out


def decode_dicom_values(data: bytes, label: str, max_pixels: int) -> np.ndarray:
    """The first frame's values through the modality LUT (rescale slope and intercept) as
    float32 (rows, columns), unwindowed: a series' slices share one window, not one each.

    Greyscale only; MONOCHROME1 values are negated, so bright means bright once windowed.
    """
    header = _read(data, label, header_only=True)
    rows, columns, _count = _geometry(header, label)
    check_frame_pixels(label, columns, rows, max_pixels)
    ds = _read(data, label, header_only=False)
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        raise ImageReadError(label, "DICOM file has no pixel data")
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ImageReadError(label, f"{photometric} pixels: a series is read in greyscale only")
    decoder = _decoder(ds, label)
    arr, _meta = next(iter(decoder.iter_array(ds, indices=[0])))
    values = np.asarray(apply_modality_lut(arr, ds), dtype=np.float32)
    return -values if photometric == "MONOCHROME1" else values


def _read(data: bytes, label: str, *, header_only: bool) -> Dataset:
    try:
        # force=False: only files with the DICM preamble are ever parsed as DICOM.
        return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=header_only, force=False)
    except InvalidDicomError as exc:
        raise ImageReadError(label, f"not a valid DICOM file ({exc})") from exc


def _geometry(header: Dataset, label: str) -> tuple[int, int, int]:
    rows, columns = header.get("Rows"), header.get("Columns")
    if rows is None or columns is None:
        raise ImageReadError(
            label, "DICOM file has no pixel data (no Rows/Columns: not an image, or truncated)"
        )
    try:
        count = int(header.get("NumberOfFrames") or 1)
        return int(rows), int(columns), max(count, 1)
    except (TypeError, ValueError) as exc:
        raise ImageReadError(label, f"invalid DICOM image geometry ({exc})") from exc


def _decoder(ds: Dataset, label: str) -> Decoder:
    syntax = ds.file_meta.get("TransferSyntaxUID")
    if not syntax:
        raise ImageReadError(label, "DICOM file has no transfer syntax")
    syntax = UID(str(syntax))
    described = f"{syntax.name} ({syntax})" if syntax.name != str(syntax) else str(syntax)
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError as exc:
        raise ImageReadError(label, f"{described} is not supported (no decoder exists)") from exc
    if not decoder.is_available:
        raise ImageReadError(
            label, f"{described} needs a decoder plugin (pip install {_plugin_hint(syntax)})"
        )
    return decoder


def _plugin_hint(syntax: UID) -> str:
    if "JPEG 2000" in syntax.name:
        return "pylibjpeg pylibjpeg-openjpeg"
    if "JPEG" in syntax.name:  # lossless JPEG and JPEG-LS
        return "pylibjpeg pylibjpeg-libjpeg"
    return "pylibjpeg"


def _to_uint8(arr: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(arr, ds)
        return _colour_to_uint8(rgb, 8 * rgb.dtype.itemsize)
    if arr.ndim == 3:  # RGB, or YBR already converted to RGB by the decoder
        return _colour_to_uint8(arr, int(ds.get("BitsStored") or 8))
    values = np.asarray(apply_modality_lut(arr, ds), dtype=np.float64)
    gray = _file_voi(values, ds)
    if gray is None:
        gray = rescale_to_uint8(values)
    return 255 - gray if photometric == "MONOCHROME1" else gray


def _colour_to_uint8(arr: np.ndarray, bits: int) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    top = float(2 ** max(bits, 1) - 1)
    scaled = np.clip(arr.astype(np.float32) * np.float32(255.0 / top), 0.0, 255.0)
    return (scaled + 0.5).astype(np.uint8)


def _file_voi(values: np.ndarray, ds: Dataset) -> np.ndarray | None:
    """The file's own window (or VOI LUT) as uint8, or None when it has no usable one."""
    try:
        if "WindowCenter" in ds and "WindowWidth" in ds:
            center, width = float(_first(ds.WindowCenter)), float(_first(ds.WindowWidth))
            function = str(ds.get("VOILUTFunction") or "LINEAR").strip().upper()
            return _window(values, center, width, function)
        if ds.get("VOILUTSequence"):
            return rescale_to_uint8(apply_voi(values, ds))
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        pass  # a malformed window should not hide otherwise readable pixels
    return None


def _first(value: object) -> object:
    return value[0] if isinstance(value, list | tuple | MultiValue) else value


def _window(values: np.ndarray, center: float, width: float, function: str) -> np.ndarray | None:
    """PS3.3 C.11.2 windowing mapped straight to 0..255 (pydicom's output range is internal)."""
    if not (np.isfinite(center) and np.isfinite(width)) or width <= 0:
        return None
    if function == "SIGMOID":
        exponent = np.clip(-4.0 * (values - center) / width, -60.0, 60.0)  # no exp overflow
        unit = 1.0 / (1.0 + np.exp(exponent))
    elif function == "LINEAR_EXACT":
        unit = (values - center) / width + 0.5
    elif function == "LINEAR":
        unit = (values - (center - 0.5)) / max(width - 1.0, 1e-6) + 0.5
    else:
        return None
    return (np.clip(unit, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
