"""Deployable exports of a trained run: an ONNX model that verifies itself against the eager
model on the run's own test images before it is written, and a model card beside it."""
