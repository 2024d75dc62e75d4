"""Runs on disk: one folder per training run (its vocabulary, the writer, the registry)."""
