"""Datasets on disk: discovery, the cached index, decoded-image cache, splits, the duplicate and
leakage audit, statistics, the synthetic demo dataset and the images a run trains on.
"""
