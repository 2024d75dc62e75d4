"""Evaluation: metrics with intervals, a run's evaluation on validation, official and duplicate-free
test, and runs compared side by side.
"""
