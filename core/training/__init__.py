"""Training: requests and recipes, the epoch loops, frozen-layer caching, progress events,
what a run records about itself, and fit(), which turns a request into a run folder.
"""
