"""3-D scans in, 2-D uint8 slices out: NIfTI volumes (nibabel) and DICOM series from a folder or
a zip (pydicom), their limits checked from headers, windowed once over the whole volume, and
cut along the axial, coronal or sagittal plane that the file's orientation says.
"""
