"""What a person uploads to the Classify page: a real scan, the scan as DICOM, a broken file."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

DICOM_BITS = 12  # MR scanners store 12 of 16 bits; the reader must window them down to 8


def first_testing_jpeg(dataset_dir: Path, label: str = "pituitary") -> Path:
    return sorted((dataset_dir / "Testing" / label).glob("*.jpg"))[0]


def mr_dataset() -> Dataset:
    """An empty single-frame MR DICOM dataset with its file meta, to fill with pixels and tags."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    return ds


def dicom_file(ds: Dataset) -> bytes:
    """The bytes of a DICOM file holding `ds`."""
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def dicom_bytes(pixels: np.ndarray) -> bytes:
    """A single-frame MR DICOM file (16-bit, 12 bits stored) holding a greyscale image."""
    ds = mr_dataset()
    ds.PatientName = "Anonymous^Test"
    scaled = (pixels.astype(np.uint32) * ((1 << DICOM_BITS) - 1) // 255).astype(np.uint16)
    ds.set_pixel_data(scaled, photometric_interpretation="MONOCHROME2", bits_stored=DICOM_BITS)
    return dicom_file(ds)


def jpeg_as_dicom(path: Path) -> bytes:
    with Image.open(path) as image:
        return dicom_bytes(np.asarray(image.convert("L")))


def truncated(data: bytes, keep: int = 300) -> bytes:
    """The first bytes of a file, as a broken download leaves it."""
    return data[:keep]
