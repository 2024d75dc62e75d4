"""Inspection results kept in the run's folder (`inspection.json`, plus CSV tables), computed
once per run and dataset and reused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.atomic_files import read_json, write_json_atomic
from core.inference.explain import OCCLUSION
from core.runs.layout import jsonable, locked

INSPECTION_FILE = "inspection.json"
INSPECTION_VERSION = 1


def read_section(
    run_dir: Path, section: str, key: str, dataset: str | None
) -> dict[str, Any] | None:
    """A stored result (`section`/`key`), when it is current: this version, and this dataset
    unless `dataset` is None (a page showing what is stored; computing checks the dataset)."""
    payload = read_json(run_dir / INSPECTION_FILE) or {}
    stored = (payload.get(section) or {}).get(key)
    if not isinstance(stored, dict):
        return None
    if stored.get("version") != INSPECTION_VERSION:
        return None
    if dataset is not None and stored.get("dataset") != dataset:
        return None
    return stored


def write_section(run_dir: Path, section: str, key: str, result: dict[str, Any]) -> dict[str, Any]:
    """Store `result` under `section`/`key` (read-modify-write under the run's lock)."""
    stored = jsonable({"version": INSPECTION_VERSION, **result})
    with locked(run_dir):
        payload = read_json(run_dir / INSPECTION_FILE) or {}
        payload.setdefault(section, {})[key] = stored
        write_json_atomic(run_dir / INSPECTION_FILE, payload)
    return stored


def stored_sanity(run_dir: Path | None) -> dict[str, Any] | None:
    """The run's stored sanity checks of this version on the most images, if any (None for a
    run without a folder)."""
    if run_dir is None:
        return None
    payload = read_json(run_dir / INSPECTION_FILE) or {}
    results = [
        result
        for result in (payload.get("sanity") or {}).values()
        if isinstance(result, dict) and result.get("version") == INSPECTION_VERSION
    ]
    return max(results, key=lambda result: result.get("images", 0)) if results else None


def preferred_method(run_dir: Path | None, default: str) -> str:
    """The CAM method the run's stored sanity checks favour: among the methods that pass the
    randomisation test and keep most of their map inside the head, the one with the highest
    ROAD score; `default` when none is measured or none passes. Occlusion is measured as the
    reference but never chosen: it runs the model a few hundred times per image (seconds for
    MobileNetV2 on a CPU) where a CAM needs one pass."""
    result = stored_sanity(run_dir)
    if result is None:
        return default
    passing = {
        method: scores["road"]
        for method, scores in result.get("results", {}).items()
        if method != OCCLUSION
        and scores.get("passes_randomisation") and scores.get("mostly_inside_head")
        and scores.get("road") is not None
    }  # fmt: skip
    return max(passing, key=passing.__getitem__) if passing else default
