"""Images in, arrays out: the safe reader (JPEG, PNG, 16-bit, TIFF, DICOM), pixel helpers,
the model-input transform shared by training and inference, and input-familiarity checks.
"""
