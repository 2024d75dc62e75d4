"""The one safe image reader: a file path or uploaded bytes in, a uint8 numpy array out.

Dataset indexing, the training cache, web uploads and CLI prediction all come through here,
so hostile, truncated or oversized input ends as one exception type, `ImageReadError`, whose
message is a single line naming the file. The format is sniffed from content, never from the
extension, and sizes are checked from headers before any pixel data is decoded.
"""

from __future__ import annotations

import io
import os
import stat

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from core.imaging.pixels import (
    DecodedImage,
    ImageReadError,
    check_frame_pixels,
    check_total_pixels,
    frame_indices,
    owned_uint8,
    rescale_to_uint8,
)

MAX_FILE_BYTES: int = 50 * 1024 * 1024

MAX_PIXELS: int = 40_000_000  # per frame

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".dcm", ".dicom"}
)


# read_frames holds a whole volume in memory; a compressed series must not expand without
# bound, yet a few hundred 512x512 slices have to fit.
MAX_TOTAL_PIXELS_FACTOR: int = 4


# DICOM goes first: its 128-byte preamble may itself look like a TIFF (dual-format files).
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
)

_BIT_DEPTH: dict[str, int] = {"1": 1, "I": 32, "F": 32}


def read_image(
    source: str | os.PathLike[str] | bytes,
    *,
    name: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    max_pixels: int = MAX_PIXELS,
    frame: int = 0,
) -> DecodedImage:
    """Decode one frame of an image file or uploaded bytes; bad input raises ImageReadError."""
    label, data = _load_source(source, name, max_bytes)
    if frame < 0:
        raise ImageReadError(label, f"frame {frame} is negative")
    return _decode(data, label, max_pixels, frame)[0]


def read_frames(
    source: str | os.PathLike[str] | bytes,
    *,
    name: str | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> list[DecodedImage]:
    """Decode every frame (DICOM multi-frame, multi-page TIFF); single images give one."""
    label, data = _load_source(source, name, max_bytes)
    return _decode(data, label, max_pixels, None)


def read_slices(
    source: str | os.PathLike[str] | bytes, *, name: str | None = None
) -> list[tuple[str, np.ndarray]]:
    """Every frame of a file as a named slice to classify: a multi-frame DICOM is a stack."""
    frames = read_frames(source, name=name)
    if name is None:
        name = "upload" if isinstance(source, bytes) else os.fsdecode(os.fspath(source))
    if len(frames) == 1:
        return [(name, frames[0].pixels)]
    return [
        (slice_label(name, index, len(frames)), frame.pixels) for index, frame in enumerate(frames)
    ]


def slice_label(name: str, index: int, count: int) -> str:
    """How one frame of a multi-frame file is named in tables and JSON: 'scan.dcm [3/20]'."""
    return f"{name} [{index + 1}/{count}]"


def _load_source(
    source: str | os.PathLike[str] | bytes, name: str | None, max_bytes: int
) -> tuple[str, bytes]:
    if isinstance(source, bytes | bytearray | memoryview):
        label = name or "upload"
        _check_size(label, memoryview(source).nbytes, max_bytes)
        return label, bytes(source)
    path = os.fsdecode(os.fspath(source))
    label = name or os.path.basename(path) or path
    return label, _read_path(path, label, max_bytes)


def _read_path(path: str, label: str, max_bytes: int) -> bytes:
    try:
        info = os.stat(path)
    except (OSError, ValueError) as exc:  # ValueError: embedded NUL in the path
        raise ImageReadError(label, _os_reason(exc)) from exc
    if not stat.S_ISREG(info.st_mode):  # a FIFO or device could block or never end
        raise ImageReadError(label, "not a regular file")
    _check_size(label, info.st_size, max_bytes)
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise ImageReadError(label, _os_reason(exc)) from exc
    _check_size(label, len(data), max_bytes)
    return data


def _os_reason(exc: Exception) -> str:
    if isinstance(exc, FileNotFoundError):
        return "file not found"
    if isinstance(exc, PermissionError):
        return "permission denied"
    return f"cannot read file ({getattr(exc, 'strerror', None) or exc})"


def _check_size(label: str, size: int, max_bytes: int) -> None:
    if size == 0:
        raise ImageReadError(label, "empty file")
    if size > max_bytes:
        raise ImageReadError(label, f"file is {size:,} bytes, over the {max_bytes:,}-byte limit")


def _sniff(data: bytes) -> str | None:
    if data[128:132] == b"DICM":
        return "DICOM"
    return next((fmt for magic, fmt in _MAGIC if data.startswith(magic)), None)


def _decode(data: bytes, label: str, max_pixels: int, frame: int | None) -> list[DecodedImage]:
    fmt = _sniff(data)
    if fmt is None:
        raise ImageReadError(
            label, "not an image (unrecognised content; expected JPEG, PNG, BMP, TIFF or DICOM)"
        )
    total_limit = max_pixels * MAX_TOTAL_PIXELS_FACTOR
    try:
        if fmt == "DICOM":
            from core.imaging.dicom import decode_dicom  # lazy: most reads never need pydicom

            return decode_dicom(data, label, max_pixels, total_limit, frame)
        return _decode_pillow(data, fmt, label, max_pixels, total_limit, frame)
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageReadError(label, f"image too large ({exc})") from exc
    except MemoryError as exc:
        raise ImageReadError(label, "out of memory while decoding") from exc
    except Exception as exc:  # hostile input reaches odd corners of every decoder
        detail = str(exc) or type(exc).__name__
        raise ImageReadError(label, f"truncated or corrupt {fmt} data ({detail})") from exc


def _decode_pillow(
    data: bytes, fmt: str, label: str, max_pixels: int, total_limit: int, frame: int | None
) -> list[DecodedImage]:
    try:
        # One format only: exotic or mis-sniffed decoders never see the bytes.
        img = Image.open(io.BytesIO(data), formats=[fmt])
    except UnidentifiedImageError as exc:
        raise ImageReadError(label, f"not a valid {fmt} file (unreadable header)") from exc
    with img:
        count = int(getattr(img, "n_frames", 1))
        out: list[DecodedImage] = []
        total = 0
        for index in frame_indices(label, count, frame):
            if index != img.tell():
                img.seek(index)
            total += img.width * img.height
            check_total_pixels(label, total, total_limit)
            out.append(_pillow_frame(img, fmt, label, max_pixels, count))
        return out


def _pillow_frame(
    img: Image.Image, fmt: str, label: str, max_pixels: int, count: int
) -> DecodedImage:
    check_frame_pixels(label, img.width, img.height, max_pixels)
    mode, channels = img.mode, len(img.getbands())
    img.load()  # raises on truncation: ImageFile.LOAD_TRUNCATED_IMAGES is left False
    if fmt == "JPEG":
        img = _exif_upright(img)
    pixels = _pillow_pixels(img)
    bit_depth = 16 if mode.startswith("I;16") else _BIT_DEPTH.get(mode, 8)
    return DecodedImage(
        pixels=pixels,
        format=fmt,
        mode=mode,
        width=int(pixels.shape[1]),
        height=int(pixels.shape[0]),
        channels=channels,
        bit_depth=bit_depth,
        frames=count,
    )


def _exif_upright(img: Image.Image) -> Image.Image:
    try:
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # a damaged EXIF block should not make intact pixels unreadable
        return img
    return img if orientation in (1, None) else ImageOps.exif_transpose(img)


def _pillow_pixels(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("L", "RGB", "P") and "transparency" in img.info:
        img = img.convert("LA" if mode == "L" else "RGBA")
        mode = img.mode
    if mode in ("L", "RGB"):
        arr = np.asarray(img)
    elif mode == "1":
        arr = np.asarray(img.convert("L"))
    elif mode in ("LA", "La"):
        arr = _flatten_on_black(np.asarray(img.convert("LA")))
    elif mode in ("RGBA", "RGBa", "PA"):
        arr = _flatten_on_black(np.asarray(img.convert("RGBA")))
    elif mode.startswith("I") or mode == "F":
        # convert("L") would clip 16-bit data to white; window it instead.
        arr = rescale_to_uint8(np.asarray(img))
    else:  # P, CMYK, YCbCr, LAB, HSV, RGBX...
        arr = np.asarray(img.convert("RGB"))
    return owned_uint8(arr)


def _flatten_on_black(arr: np.ndarray) -> np.ndarray:
    # MRI background is black, so transparent regions must not turn white.
    colour = arr[..., :-1].astype(np.uint16)
    alpha = arr[..., -1:].astype(np.uint16)
    out = ((colour * alpha + 127) // 255).astype(np.uint8)
    return out[..., 0] if out.shape[-1] == 1 else out
