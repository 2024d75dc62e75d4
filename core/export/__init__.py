"""Deployable exports of a trained run: an ONNX model that verifies itself against the eager
model on the run's own test images before it is written, and a model card beside it.

The defaults live here, free of torch and onnx, so the command line can show them without
importing either (a `python -m core` start stays fast).
"""

DEFAULT_TOLERANCE = 1e-4  # fp32 on both sides: a larger gap means the graph is not the model
DEFAULT_CHECK_IMAGES = 32
