"""Inference: a run folder rebuilt into a predictor, and class activation maps."""
