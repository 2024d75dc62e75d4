"""NIfTI-1 and NIfTI-2 volumes (.nii, .nii.gz) through nibabel: the header is read and checked
(dimensions, voxel count, bytes) before a single voxel is, so a hostile header costs nothing."""

from __future__ import annotations

import gzip
import io
import math

import nibabel as nib
import numpy as np

from core.imaging.pixels import ImageReadError
from core.imaging.volumes.volume import Volume, check_volume_size, window_volume

GZIP_MAGIC = b"\x1f\x8b"
_NIFTI1_MAGIC = b"n+1\x00"  # at byte 344: header and voxels in one .nii file
_PAIR_MAGIC = b"ni1\x00"  # a .hdr whose voxels are in a separate .img
_NIFTI2_MAGIC = b"n+2\x00\r\n\x1a\n"  # at byte 4
_HEADER_BYTES = 540  # a NIfTI-2 header; NIfTI-1's is 348


def looks_like_nifti(head: bytes) -> bool:
    """Whether these leading bytes start a NIfTI header, or a gzip stream (which may hold one)."""
    return head.startswith(GZIP_MAGIC) or _nifti_kind(head) is not None


def read_nifti(data: bytes, label: str) -> Volume:
    """Decode a .nii or .nii.gz held in memory into a windowed Volume (ImageReadError if bad)."""
    compressed = data.startswith(GZIP_MAGIC)
    kind = _nifti_kind(_leading_bytes(data, compressed, label))
    if kind is None:
        inside = " inside the gzip data" if compressed else ""
        raise ImageReadError(label, f"not a NIfTI volume (no NIfTI-1 or NIfTI-2 header{inside})")
    if kind == "pair":
        raise ImageReadError(
            label, "a NIfTI .hdr whose voxels are in a separate .img: save it as one .nii file"
        )
    image_class = nib.Nifti1Image if kind == "NIfTI-1" else nib.Nifti2Image
    try:
        image = image_class.from_stream(_stream(data, compressed))
        shape = tuple(int(n) for n in image.header.get_data_shape())
        dtype = image.header.get_data_dtype()
    except Exception as exc:  # nibabel raises many types for a damaged header
        raise ImageReadError(label, f"unreadable NIfTI header ({_detail(exc)})") from exc
    if dtype.fields is not None or dtype.kind == "c":
        raise ImageReadError(label, f"{dtype} voxels (colour or complex) are not read")
    volume_shape = _three_dimensions(label, shape)
    check_volume_size(label, volume_shape, dtype.itemsize)
    try:
        values = np.asarray(image.dataobj, dtype=np.float32).reshape(volume_shape)
    except MemoryError as exc:
        raise ImageReadError(label, "out of memory while reading the voxels") from exc
    except Exception as exc:  # short data, a cut gzip stream, a bad zlib block
        raise ImageReadError(label, f"truncated or corrupt NIfTI data ({_detail(exc)})") from exc
    voxels, window, flat = window_volume(values)
    affine, known, notes = _orientation(image)
    if not known:  # shown as stored: slices along the last array axis, as NIfTI stacks them
        voxels = np.ascontiguousarray(voxels.transpose(2, 1, 0))
    return Volume(
        voxels=voxels,
        affine=affine,
        source=label,
        format=kind,
        window=window,
        orientation_known=known,
        notes=tuple(notes + ([flat] if flat else [])),
    )


def _nifti_kind(head: bytes) -> str | None:
    size = head[:4]
    if head[344:348] in (_NIFTI1_MAGIC, _PAIR_MAGIC) and size in (b"\x5c\x01\0\0", b"\0\0\x01\x5c"):
        return "NIfTI-1" if head[344:348] == _NIFTI1_MAGIC else "pair"
    if head[4:12] == _NIFTI2_MAGIC and size in (b"\x1c\x02\0\0", b"\0\0\x02\x1c"):
        return "NIfTI-2"
    return None


def _stream(data: bytes, compressed: bool) -> io.IOBase:
    raw = io.BytesIO(data)
    # A GzipFile decompresses as nibabel reads: the voxels are never unpacked before the
    # header's size has been checked.
    return gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw


def _leading_bytes(data: bytes, compressed: bool, label: str) -> bytes:
    if not compressed:
        return data[:_HEADER_BYTES]
    try:
        return _stream(data, compressed).read(_HEADER_BYTES)
    except Exception as exc:  # OSError, EOFError, zlib.error: a cut or damaged stream
        raise ImageReadError(label, f"truncated or corrupt gzip data ({_detail(exc)})") from exc


def _three_dimensions(label: str, shape: tuple[int, ...]) -> tuple[int, int, int]:
    """The volume's (i, j, k): a 2-D image is one slice; a 4-D series of volumes is refused."""
    if len(shape) < 2:
        raise ImageReadError(label, f"a {len(shape)}-D NIfTI is not an image (shape {shape})")
    extra = shape[3:]
    if any(n > 1 for n in extra):
        written = " x ".join(str(n) for n in shape)
        count = math.prod(extra)
        dimensions = "its 4th dimension" if len(extra) == 1 else "dimensions 4 and up"
        raise ImageReadError(
            label,
            f"a {len(shape)}-D NIfTI ({written}) holds {count} volumes along {dimensions} "
            "(time points or echoes): only 3-D volumes are read; save one volume on its own",
        )
    i, j, *rest = shape
    return (i, j, rest[0] if rest else 1)


def _orientation(image: nib.Nifti1Image) -> tuple[np.ndarray, bool, list[str]]:
    """The voxel-to-RAS affine, whether it can be trusted, and notes on what was assumed."""
    header = image.header
    affine = np.asarray(image.affine, dtype=np.float64)
    zooms = [float(z) if np.isfinite(z) and z > 0 else 1.0 for z in header.get_zooms()[:3]]
    zooms += [1.0] * (3 - len(zooms))
    usable = np.isfinite(affine).all() and abs(np.linalg.det(affine[:3, :3])) > 1e-12
    if not usable:
        note = "the header's orientation is unusable (NaN or singular): slices are shown as stored"
        return np.diag([*zooms[::-1], 1.0]), False, [note]
    if int(header["sform_code"]) == 0 and int(header["qform_code"]) == 0:
        note = (
            "the header stores no orientation (qform and sform codes are 0): nibabel's default "
            "is assumed, so the axial axis may be wrong"
        )
        return affine, True, [note]
    return affine, True, []


def _detail(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
