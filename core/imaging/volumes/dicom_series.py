"""DICOM series: single-frame files grouped by SeriesInstanceUID, sorted along the slice normal
(ImagePositionPatient projected on it, else InstanceNumber) and stacked into a Volume.

Headers come first (which series, how many files, rows x columns); pixels are decoded only for
the chosen series, once its size has passed the limits.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.dataset import Dataset

from core.imaging.dicom import decode_dicom_values
from core.imaging.pixels import ImageReadError, one_line
from core.imaging.reader import MAX_PIXELS
from core.imaging.volumes.volume import (
    MAX_SERIES_FILES,
    Volume,
    check_volume_size,
    window_volume,
)

# A member of a folder or zip: its name there, and how to read its bytes (on demand, so a big
# series is never held twice).
Member = tuple[str, Callable[[], bytes]]

_ORIENTATION_TOLERANCE = 1e-3  # direction cosines that differ less are one orientation
_SAME_POSITION_MM = 1e-3
_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])  # DICOM's patient axes point left and back
_LISTED = 3  # file names quoted in a note before "and N more"
_REASON_CHARS = 80


@dataclass(frozen=True)
class SeriesSummary:
    """One series found in a folder or zip, as a picker lists it."""

    uid: str
    description: str
    modality: str
    files: int

    def describe(self) -> str:
        """'1.2.840... (MR, "T1 AX", 20 files)'."""
        facts = [self.modality or "?"]
        if self.description:
            facts.append(f'"{self.description}"')
        return f"{self.uid or '(no SeriesInstanceUID)'} ({', '.join(facts)}, {self.files} files)"


class SeveralSeriesError(ImageReadError):
    """A folder or zip holding more than one series, and none was chosen."""

    series: tuple[SeriesSummary, ...]

    def __init__(self, name: str, series: tuple[SeriesSummary, ...]) -> None:
        self.series = series
        listed = "; ".join(summary.describe() for summary in series)
        super().__init__(name, f"{len(series)} DICOM series, choose one: {listed}")

    def __reduce__(self) -> tuple[type, tuple]:
        # Pickled (a worker process) with its series, not the message ImageReadError keeps.
        return type(self), (self.name, self.series)


@dataclass(frozen=True)
class _SliceHeader:
    member: str
    series_uid: str
    description: str
    modality: str
    rows: int
    columns: int
    position: tuple[float, ...] | None
    orientation: tuple[float, ...] | None
    instance: int | None
    pixel_spacing: tuple[float, ...] | None
    thickness: float | None


@dataclass(frozen=True)
class SeriesScan:
    """What the headers of a folder or zip say: the image slices and the files left out."""

    headers: tuple[_SliceHeader, ...]
    skipped: tuple[tuple[str, str], ...]  # (member, why)

    def series(self) -> tuple[SeriesSummary, ...]:
        """The series found, largest first."""
        groups: dict[str, list[_SliceHeader]] = defaultdict(list)
        for header in self.headers:
            groups[header.series_uid].append(header)
        found = [
            SeriesSummary(uid, group[0].description, group[0].modality, len(group))
            for uid, group in groups.items()
        ]
        return tuple(sorted(found, key=lambda summary: (-summary.files, summary.uid)))


def scan_members(members: Sequence[Member], label: str) -> SeriesScan:
    """Read every member's header (no pixels) and keep the single-frame greyscale images."""
    if len(members) > MAX_SERIES_FILES:
        raise ImageReadError(
            label, f"{len(members):,} files, over the {MAX_SERIES_FILES:,}-file limit of a series"
        )
    headers, skipped = [], []
    for member, load in members:
        try:
            data = load()
        except ImageReadError as error:  # one unreadable file (too big, a bad zip member)
            skipped.append((member, error.reason))
            continue
        if data[128:132] != b"DICM":
            skipped.append((member, "not DICOM"))
            continue
        try:
            header = _slice_header(member, data)
        except Exception as error:  # pydicom raises many types for a damaged or cut header
            detail = one_line(str(error) or type(error).__name__)[:_REASON_CHARS]
            skipped.append((member, f"unreadable DICOM header: {detail}"))
            continue
        if isinstance(header, str):
            skipped.append((member, header))
        else:
            headers.append(header)
    if not headers:
        reasons = Counter(why for _, why in skipped)
        found = ", ".join(f"{count} {why}" for why, count in reasons.most_common()) or "no files"
        raise ImageReadError(label, f"no single-frame DICOM images ({found})")
    return SeriesScan(tuple(headers), tuple(skipped))


def read_series(members: Sequence[Member], label: str, series_uid: str | None = None) -> Volume:
    """The chosen series (the only one when None) as a windowed Volume."""
    scan = scan_members(members, label)
    found = scan.series()
    if series_uid is None:
        if len(found) > 1:
            raise SeveralSeriesError(label, found)
        series_uid = found[0].uid
    chosen = [header for header in scan.headers if header.series_uid == series_uid]
    if not chosen:
        listed = "; ".join(summary.describe() for summary in found)
        raise ImageReadError(label, f"no series {series_uid}; found: {listed}")
    sizes = Counter((header.rows, header.columns) for header in chosen)
    if len(sizes) > 1:
        written = ", ".join(f"{r}x{c} in {n} files" for (r, c), n in sizes.most_common())
        raise ImageReadError(label, f"the series' slices differ in size ({written}): not a volume")
    ((rows, columns),) = sizes
    check_volume_size(label, (len(chosen), rows, columns), 4)
    ordered, affine, known, notes = _geometry(chosen)
    values = np.empty((len(ordered), rows, columns), dtype=np.float32)
    loaders = dict(members)
    for index, header in enumerate(ordered):
        values[index] = _decode_slice(loaders[header.member], header.member, label, rows, columns)
    voxels, window, flat = window_volume(values)
    notes += [flat] if flat else []
    if scan.skipped:
        notes.append(_skipped_note(scan.skipped))
    others = len(found) - 1
    if others:
        verb = "was" if others == 1 else "were"
        notes.append(f"{others} other series in the same folder or zip {verb} not read")
    first = ordered[0]
    return Volume(
        voxels=voxels,
        affine=affine,
        source=label,
        format="DICOM series",
        window=window,
        orientation_known=known,
        notes=tuple(notes),
        series_uid=series_uid,
        description=", ".join(part for part in (first.modality, first.description) if part),
    )


def _slice_header(member: str, data: bytes) -> _SliceHeader | str:
    """A file's slice facts, or why it is not a slice of a series."""
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=False)
    rows, columns = ds.get("Rows"), ds.get("Columns")
    if rows is None or columns is None:
        return "not an image (no Rows/Columns)"
    if int(ds.get("NumberOfFrames") or 1) > 1:
        return "multi-frame: classify it as a file of its own"
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        return f"{photometric} (not greyscale)"
    instance = ds.get("InstanceNumber")
    return _SliceHeader(
        member=member,
        series_uid=str(ds.get("SeriesInstanceUID") or ""),
        description=str(ds.get("SeriesDescription") or "").strip(),
        modality=str(ds.get("Modality") or "").strip(),
        rows=int(rows),
        columns=int(columns),
        position=_floats(ds, "ImagePositionPatient", 3),
        orientation=_floats(ds, "ImageOrientationPatient", 6),
        instance=int(instance) if instance not in (None, "") else None,
        pixel_spacing=_floats(ds, "PixelSpacing", 2),
        thickness=(_floats(ds, "SliceThickness", 1) or (None,))[0],
    )


def _floats(ds: Dataset, keyword: str, count: int) -> tuple[float, ...] | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    items = list(value) if count > 1 else [value]
    try:
        numbers = tuple(float(item) for item in items)
    except (TypeError, ValueError):
        return None
    return numbers if len(numbers) == count and np.isfinite(numbers).all() else None


def _geometry(
    headers: list[_SliceHeader],
) -> tuple[list[_SliceHeader], np.ndarray, bool, list[str]]:
    """Slices in order, the (slice, row, column) -> RAS affine, whether the orientation is
    known, and notes on what was assumed."""
    first = headers[0]
    row_mm, column_mm = first.pixel_spacing or (1.0, 1.0)
    orientation = _shared_orientation(headers)
    if orientation is None:
        ordered = sorted(headers, key=lambda h: (h.instance is None, h.instance or 0, h.member))
        missing = any(h.position is None or h.orientation is None for h in headers)
        why = (
            "no ImagePositionPatient/ImageOrientationPatient"
            if missing
            else "slices of different orientations (a localizer?)"
        )
        thickness = first.thickness or 1.0
        note = f"{why}: slices sorted by InstanceNumber and shown as stored, orientation unknown"
        return ordered, np.diag([thickness, row_mm, column_mm, 1.0]), False, [note]
    along_row, along_column = np.array(orientation[:3]), np.array(orientation[3:])
    normal = np.cross(along_row, along_column)
    normal /= np.linalg.norm(normal)
    distance = {h.member: float(np.dot(np.asarray(h.position), normal)) for h in headers}
    ordered = sorted(headers, key=lambda h: (distance[h.member], h.instance or 0, h.member))
    gaps = np.diff([distance[h.member] for h in ordered])
    apart = gaps[gaps > _SAME_POSITION_MM]
    notes = []
    if len(apart) < len(gaps):
        notes.append(
            f"{len(gaps) - len(apart)} slice(s) share a position with another (echoes or "
            "repeats in one series?): coronal and sagittal views interleave them"
        )
    if len(apart) and apart.max() > 1.5 * apart.min():
        notes.append(f"uneven slice gaps ({apart.min():.3g} to {apart.max():.3g} mm)")
    spacing = float(np.median(apart)) if len(apart) else (first.thickness or 1.0)
    lps = np.eye(4)
    lps[:3, 0] = normal * spacing
    lps[:3, 1] = along_column * row_mm  # rows advance down a column
    lps[:3, 2] = along_row * column_mm
    lps[:3, 3] = np.asarray(ordered[0].position)
    return ordered, _LPS_TO_RAS @ lps, True, notes


def _shared_orientation(headers: list[_SliceHeader]) -> tuple[float, ...] | None:
    """The series' one ImageOrientationPatient, or None (missing, degenerate or mixed)."""
    if any(h.position is None or h.orientation is None for h in headers):
        return None
    first = np.array(headers[0].orientation)
    if np.linalg.norm(np.cross(first[:3], first[3:])) < 0.5:
        return None
    for header in headers[1:]:
        if np.abs(np.array(header.orientation) - first).max() > _ORIENTATION_TOLERANCE:
            return None
    return tuple(float(v) for v in first)


def _decode_slice(
    load: Callable[[], bytes], member: str, label: str, rows: int, columns: int
) -> np.ndarray:
    try:
        values = decode_dicom_values(load(), member, MAX_PIXELS)
    except ImageReadError as error:
        raise ImageReadError(label, f"{member}: {error.reason}") from error
    except MemoryError as error:
        raise ImageReadError(label, f"{member}: out of memory while decoding") from error
    except Exception as error:  # hostile pixel data reaches odd corners of every decoder
        detail = str(error) or type(error).__name__
        raise ImageReadError(
            label, f"{member}: truncated or corrupt DICOM data ({detail})"
        ) from error
    if values.shape != (rows, columns):  # the header said otherwise
        raise ImageReadError(label, f"{member}: pixels are {values.shape}, not {rows}x{columns}")
    return values


def _skipped_note(skipped: tuple[tuple[str, str], ...]) -> str:
    listed = "; ".join(f"{member} ({why})" for member, why in skipped[:_LISTED])
    more = f"; and {len(skipped) - _LISTED} more" if len(skipped) > _LISTED else ""
    return f"{len(skipped)} file(s) left out: {listed}{more}"
