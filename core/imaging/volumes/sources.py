"""Where volumes come from: a .nii or .nii.gz file, a zip of DICOM files, or a folder of them.

As for images, the kind is sniffed from content, never from a name, and every failure is an
ImageReadError whose message is one line naming the file.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from core.imaging.pixels import ImageReadError
from core.imaging.reader import MAX_FILE_BYTES, SUPPORTED_EXTENSIONS
from core.imaging.volumes.nifti import looks_like_nifti, read_nifti
from core.imaging.volumes.volume import (
    MAX_SERIES_FILES,
    MAX_VOLUME_FILE_BYTES,
    Volume,
    check_file_size,
)

# What the uploader offers besides images ('gz': browsers do not all match '.nii.gz').
VOLUME_EXTENSIONS: tuple[str, ...] = (".nii", ".gz", ".zip")

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip
_SNIFF_BYTES = 540
_NOT_SERIES_EXTENSIONS = SUPPORTED_EXTENSIONS - {".dcm", ".dicom"}

Source = str | os.PathLike[str] | bytes

if TYPE_CHECKING:
    from core.imaging.volumes.dicom_series import Member, SeriesSummary


def volume_kind(data: bytes) -> str | None:
    """'NIfTI' (also any gzip stream: it is read as a .nii.gz or refused), 'zip', or None."""
    if data.startswith(_ZIP_MAGIC):
        return "zip"
    return "NIfTI" if looks_like_nifti(data[:_SNIFF_BYTES]) else None


def is_volume_path(path: str | os.PathLike[str]) -> bool:
    """A folder whose images are all DICOM (a series), or a file holding a NIfTI or a zip."""
    path = Path(path)
    if path.is_dir():
        return is_dicom_folder(path)
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # opening a FIFO would block
            return False
        with path.open("rb") as handle:
            return volume_kind(handle.read(_SNIFF_BYTES)) is not None
    except (OSError, ValueError):
        return False  # the image reader names the problem


def is_dicom_folder(folder: Path) -> bool:
    """Whether the folder holds DICOM files and no other images (files need no extension)."""
    files = _folder_files(folder)
    if any(path.suffix.lower() in _NOT_SERIES_EXTENSIONS for path in files):
        return False
    for path in files:
        try:
            with path.open("rb") as handle:
                if handle.read(132)[128:132] == b"DICM":
                    return True
        except OSError:
            continue
    return False


def read_volume(source: Source, *, name: str | None = None, series: str | None = None) -> Volume:
    """A NIfTI file, or the DICOM series `series` (the only one when None) of a zip or folder.

    Raises ImageReadError, or its subclass SeveralSeriesError listing the series to choose from.
    """
    # Imported here: sniffing a path (`predict` on plain images) never pays for pydicom.
    from core.imaging.volumes.dicom_series import read_series

    label, data = _load(source, name)
    if data is None:
        with _members(source, label, None) as members:
            return read_series(members, label, series)
    if volume_kind(data) == "NIfTI":
        return read_nifti(data, label)
    with _members(source, label, data) as members:
        return read_series(members, label, series)


def list_series(source: Source, *, name: str | None = None) -> tuple[SeriesSummary, ...]:
    """The DICOM series in a zip or folder, largest first; () for a NIfTI file."""
    from core.imaging.volumes.dicom_series import scan_members

    label, data = _load(source, name)
    if data is not None and volume_kind(data) == "NIfTI":
        return ()
    with _members(source, label, data) as members:
        return scan_members(members, label).series()


def _load(source: Source, name: str | None) -> tuple[str, bytes | None]:
    """The label and the bytes of a file (None for a folder); volumes only, else refused."""
    if isinstance(source, bytes | bytearray | memoryview):
        label, data = name or "upload", bytes(source)
        check_file_size(label, len(data))
    else:
        path = Path(os.fsdecode(os.fspath(source)))
        label = name or path.name or str(path)
        if path.is_dir():
            return label, None
        data = _read_file(path, label, None)
    if volume_kind(data) is None:
        raise ImageReadError(
            label, "not a volume (expected a NIfTI .nii or .nii.gz, or a zip of DICOM files)"
        )
    return label, data


@contextmanager
def _members(source: Source, label: str, data: bytes | None) -> Iterator[list[Member]]:
    if data is None:
        folder = source if isinstance(source, Path) else Path(os.fsdecode(source))  # not bytes
        yield _folder_members(folder, label)
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            yield _zip_members(archive, label)
    except ImageReadError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise ImageReadError(label, f"truncated or corrupt zip ({_detail(exc)})") from exc


def _folder_files(folder: Path) -> list[Path]:
    """Regular files below the folder, sorted, hidden ones (and hidden folders) skipped."""
    found = []
    for path in sorted(folder.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        if path.is_file() and not path.is_symlink():
            found.append(path)
            if len(found) > MAX_SERIES_FILES:  # stop walking: the count alone refuses it
                break
    return found


def _folder_members(folder: Path, label: str) -> list[Member]:
    files = _folder_files(folder)
    if not files:
        raise ImageReadError(label, "empty folder: no DICOM files")
    if len(files) > MAX_SERIES_FILES:
        raise ImageReadError(label, f"over {MAX_SERIES_FILES:,} files: too many for a series")

    def loader(path: Path) -> Member:
        member = str(path.relative_to(folder))
        return member, lambda: _read_file(path, f"{label}/{member}", MAX_FILE_BYTES)

    return [loader(path) for path in files]


def _zip_members(archive: zipfile.ZipFile, label: str) -> list[Member]:
    infos = [
        info
        for info in archive.infolist()
        if not info.is_dir()
        and not any(part.startswith(".") or part == "__MACOSX" for part in info.filename.split("/"))
    ]
    if not infos:
        raise ImageReadError(label, "empty zip: no DICOM files")
    if len(infos) > MAX_SERIES_FILES:
        raise ImageReadError(
            label, f"{len(infos):,} files, over the {MAX_SERIES_FILES:,}-file limit"
        )
    unpacked = sum(info.file_size for info in infos)
    if unpacked > MAX_VOLUME_FILE_BYTES:
        raise ImageReadError(
            label, f"unpacks to {unpacked:,} bytes, over the {MAX_VOLUME_FILE_BYTES:,}-byte limit"
        )
    if any(info.flag_bits & 0x1 for info in infos):
        raise ImageReadError(label, "encrypted zip: unpack it first")

    def loader(info: zipfile.ZipInfo) -> Member:
        member = f"{label}/{info.filename}"

        def load() -> bytes:
            check_file_size(member, info.file_size, MAX_FILE_BYTES)
            try:
                with archive.open(info) as handle:
                    # The sizes in a zip's directory can lie: never read past the limit.
                    data = handle.read(MAX_FILE_BYTES + 1)
            except Exception as exc:  # BadZipFile (bad CRC), EOFError, zlib.error, ...
                detail = f"{info.filename}: truncated or corrupt zip member ({_detail(exc)})"
                raise ImageReadError(label, detail) from exc
            check_file_size(member, len(data), MAX_FILE_BYTES)
            return data

        return info.filename, load

    return [loader(info) for info in infos]


def _read_file(path: Path, label: str, limit: int | None) -> bytes:
    limit = MAX_VOLUME_FILE_BYTES if limit is None else limit
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):  # a FIFO or device could block or never end
            raise ImageReadError(label, "not a regular file")
        check_file_size(label, info.st_size, limit)
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)  # the file may have grown since stat()
    except FileNotFoundError as exc:
        raise ImageReadError(label, "file not found") from exc
    except PermissionError as exc:
        raise ImageReadError(label, "permission denied") from exc
    except (OSError, ValueError) as exc:  # ValueError: an embedded NUL in the path
        raise ImageReadError(label, f"cannot read file ({_detail(exc)})") from exc
    check_file_size(label, len(data), limit)
    return data


def _detail(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
