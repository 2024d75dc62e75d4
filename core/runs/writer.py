"""Writing one run folder: ids, atomic files, the append-only history, safetensors weights.

Used by the training thread through `RunWriter`; `core.runs.registry` reads, lists and manages runs.
Every file but the append-only `history.jsonl` is written atomically through `core.atomic_files`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save as safetensors_save

from core import paths
from core.atomic_files import read_json, write_bytes_atomic, write_json_atomic

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; label updates stay atomic, just racier
    fcntl = None  # type: ignore[assignment]
from core.runs.layout import (
    CONFIG,
    HISTORY,
    META,
    METRICS,
    STATUS,
    STATUSES,
    TERMINAL_STATUSES,
    WEIGHTS,
    RunError,
    check_run_id,
    clean_run_name,
    iso,
    jsonable,
    locked,
    new_run_id,
    utcnow,
)


class RunWriter:
    """Writes one run; used by the training thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.run_id = path.name
        self._lock = threading.Lock()  # heartbeat and set_status may come from two threads
        stored = read_json(path / STATUS)
        self._status: dict[str, Any] = stored if isinstance(stored, dict) else {}

    @classmethod
    def create(
        cls,
        config: dict,
        *,
        model_name: str,
        root: Path | None = None,
        run_id: str | None = None,
        name: str | None = None,
    ) -> RunWriter:
        """Make a run folder with config.json, status 'queued', empty history and meta.json.

        `run_id` lets a job that was queued under an id keep it on disk; by default a new one.
        `name` is the run's display name from the start (None: shown by its id until renamed).
        """
        name = clean_run_name(name) if name is not None else None
        base = Path(root) if root is not None else paths.checkpoints_root()
        base.mkdir(parents=True, exist_ok=True)
        payload = jsonable(config)
        if run_id is not None:
            check_run_id(run_id)
            if (base / run_id).exists():
                raise RunError(f"run {run_id} already exists")
        while run_id is None or (base / run_id).exists():
            run_id = new_run_id(model_name)
        # Built in a hidden sibling and renamed at once: readers never see half a run.
        staging = base / f".creating-{run_id}"
        staging.mkdir()
        try:
            write_json_atomic(staging / CONFIG, payload)
            write_json_atomic(staging / META, {"name": name, "tags": [], "notes": ""})
            (staging / HISTORY).touch()
            writer = cls(staging)
            writer._status = {"status": "queued", "message": None, "error": None}
            writer._status.update(started_at=None, finished_at=None, progress=None)
            writer._write_status()
            os.rename(staging, base / run_id)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return cls(base / run_id)

    def _write_status(self) -> None:
        self._status.update(pid=os.getpid(), host=socket.gethostname(), heartbeat=iso(utcnow()))
        write_json_atomic(self.path / STATUS, self._status)

    def set_status(
        self,
        status: str,
        *,
        message: str | None = None,
        error: str | None = None,
        progress: dict | None = None,
    ) -> None:
        """Record a new status; stamps started_at on first 'running', finished_at on terminal."""
        if status not in STATUSES:
            raise RunError(f"unknown run status {status!r}; expected one of {', '.join(STATUSES)}")
        with self._lock:
            now = iso(utcnow())
            self._status.update(status=status, message=message, error=error)
            if status == "running" and not self._status.get("started_at"):
                self._status["started_at"] = now
            if status in TERMINAL_STATUSES:
                self._status["finished_at"] = now
            if progress is not None:
                self._status["progress"] = jsonable(progress)
            self._write_status()

    def heartbeat(self, progress: dict | None = None) -> None:
        """Rewrite status.json with a fresh heartbeat (and progress, when given)."""
        with self._lock:
            if progress is not None:
                self._status["progress"] = jsonable(progress)
            self._write_status()

    def append_history(self, record: dict) -> None:
        """Append one JSON line to history.jsonl, durably."""
        line = json.dumps(jsonable(record)) + "\n"
        # O_APPEND + one write per line: concurrent appends never interleave within a line.
        descriptor = os.open(self.path / HISTORY, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(descriptor).st_size
            if size and os.pread(descriptor, 1, size - 1) != b"\n":
                line = "\n" + line  # a crash left a torn line: never glue onto it
            os.write(descriptor, line.encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def save_weights(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Save the weights as model.safetensors (CPU, contiguous, no shared storage)."""
        tensors: dict[str, torch.Tensor] = {}
        seen: set[int] = set()
        for key, value in state_dict.items():
            if not isinstance(value, torch.Tensor):
                raise RunError(f"weight {key!r} is a {type(value).__name__}, not a tensor")
            tensor = value.detach().cpu()
            storage = tensor.untyped_storage()
            whole = storage.nbytes() == tensor.numel() * tensor.element_size()
            # safetensors refuses views, tied weights and strided tensors: give each its own copy.
            if not (tensor.is_contiguous() and whole) or storage.data_ptr() in seen:
                tensor = tensor.clone(memory_format=torch.contiguous_format)
            if tensor.numel():
                seen.add(tensor.untyped_storage().data_ptr())
            tensors[key] = tensor
        write_bytes_atomic(self.path / WEIGHTS, safetensors_save(tensors, {"format": "pt"}))

    def save_metrics_entry(self, section: str, key: str, value: Any) -> None:
        """Set `key` within metrics.json's `section` (a JSON object), keeping its other keys."""
        payload = jsonable(value)
        with locked(self.path):
            current = read_json(self.path / METRICS)
            merged = current if isinstance(current, dict) else {}
            entries = merged.get(section)
            merged[section] = {**(entries if isinstance(entries, dict) else {}), key: payload}
            write_json_atomic(self.path / METRICS, merged)

    def save_metrics(self, metrics: dict) -> None:
        """Merge `metrics` into metrics.json (top-level keys), atomically."""
        payload = jsonable(metrics)
        with locked(self.path):
            current = read_json(self.path / METRICS)
            merged = current if isinstance(current, dict) else {}
            merged.update(payload)
            write_json_atomic(self.path / METRICS, merged)


class SilentRunWriter(RunWriter):
    """The writer of every DDP process but rank 0 (core.training.distributed): it knows the run
    and writes nothing, so that one run folder has one writer."""

    def __init__(self, path: Path) -> None:
        self.path, self.run_id = path, path.name

    def set_status(
        self,
        status: str,
        *,
        message: str | None = None,
        error: str | None = None,
        progress: dict | None = None,
    ) -> None:
        """Nothing: rank 0 writes status.json."""

    def heartbeat(self, progress: dict | None = None) -> None:
        """Nothing: rank 0 beats."""

    def append_history(self, record: dict) -> None:
        """Nothing: rank 0 writes history.jsonl."""

    def save_weights(self, state_dict: Mapping[str, torch.Tensor]) -> None:
        """Nothing: rank 0 saves the weights (every process holds the same ones)."""

    def save_metrics(self, metrics: dict) -> None:
        """Nothing: rank 0 writes metrics.json."""

    def save_metrics_entry(self, section: str, key: str, value: Any) -> None:
        """Nothing: rank 0 writes metrics.json."""
