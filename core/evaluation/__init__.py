"""Evaluation: metrics with intervals, a run's evaluation on validation, official and leak-free
test, and runs compared side by side.
"""
