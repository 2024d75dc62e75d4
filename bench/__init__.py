"""Benchmarks and measurement scripts: `python -m bench.<name>`; results go to docs/."""
