"""The run folder's vocabulary: file names, statuses, run ids, timestamps, the folder lock."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; label updates stay atomic, just racier
    fcntl = None  # type: ignore[assignment]


STATUSES = ("queued", "running", "completed", "cancelled", "failed", "interrupted")

TERMINAL_STATUSES = ("completed", "cancelled", "failed", "interrupted")

LIVE_STATUSES = ("queued", "running")

HEARTBEAT_STALE_SECONDS: float = 60.0

CONFIG, STATUS, HISTORY = "config.json", "status.json", "history.jsonl"

METRICS, WEIGHTS, META = "metrics.json", "model.safetensors", "meta.json"

_LOCK = ".lock"

_ID_TIME = "%Y%m%dT%H%M%SZ"

_ID_TIME_RE = re.compile(r"^(\d{8}T\d{6}Z)_")


class RunError(ValueError):
    """A run-registry request that cannot be done: unknown run, bad label, live run."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    # A naive timestamp is taken as UTC: this module only ever writes UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def jsonable(payload: Any) -> Any:
    """`payload` with numpy/torch scalars and arrays turned into plain JSON values."""

    def convert(value: Any) -> Any:
        if hasattr(value, "tolist"):
            return value.tolist()
        if isinstance(value, Path):
            return str(value)
        raise TypeError(f"{type(value).__name__} is not JSON-serialisable")

    try:
        return json.loads(json.dumps(payload, default=convert, allow_nan=True))
    except (TypeError, ValueError) as error:
        raise RunError(f"cannot store as JSON: {error}") from None


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """Serialise read-modify-write of one run's files across threads and processes."""
    if fcntl is None:
        yield
        return
    try:
        handle = open(folder / _LOCK, "a")  # noqa: SIM115 - closed in finally
    except FileNotFoundError:
        raise RunError(f"run {folder.name} not found (deleted?)") from None
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # closing releases the lock


def new_run_id(model_name: str, now: datetime | None = None) -> str:
    """A new run id: '<UTC yyyymmddTHHMMSSZ>_<model>_<6 hex>'."""
    moment = now or utcnow()
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # naive = UTC
    model = re.sub(r"[^a-z0-9_-]+", "-", model_name.strip().lower()).strip("-_")[:40]
    return f"{moment.astimezone(UTC).strftime(_ID_TIME)}_{model or 'model'}_{secrets.token_hex(3)}"


def run_created_at(run_id: str) -> datetime | None:
    match = _ID_TIME_RE.match(run_id)
    if not match:
        return None
    return datetime.strptime(match.group(1), _ID_TIME).replace(tzinfo=UTC)


MAX_RUN_NAME = 80


def clean_run_name(name: object) -> str:
    """A run's display name, stripped; RunError unless it is 1..80 printable characters."""
    cleaned = name.strip() if isinstance(name, str) else ""
    if not 1 <= len(cleaned) <= MAX_RUN_NAME or not cleaned.isprintable():
        raise RunError(f"a run name must be 1 to {MAX_RUN_NAME} printable characters")
    return cleaned


def check_run_id(run: str) -> None:
    """Refuse ids that could leave the checkpoints folder (path traversal) or hide a run."""
    bad = not run or run.startswith(".") or ".." in run or "\x00" in run
    if bad or any(sep and sep in run for sep in ("/", "\\", os.sep, os.altsep)):
        raise RunError(f"invalid run id {run!r}")
