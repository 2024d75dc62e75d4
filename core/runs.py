"""Run registry on disk: one folder per training run under `checkpoints/`.

Disk is the source of truth: every browser session, the CLI and the tests read the same
folders. Every file but the append-only `history.jsonl` is written atomically through
`core.storage`; weights are safetensors only (never pickle).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import struct
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_save

from core import paths
from core.storage import read_json, write_bytes_atomic, write_json_atomic

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
_MAX_NAME, _MAX_TAG = 80, 30


class RunError(ValueError):
    """A run-registry request that cannot be done: unknown run, bad label, live run."""


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _parse_iso(value: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    # A naive timestamp is taken as UTC: this module only ever writes UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _jsonable(payload: Any) -> Any:
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
def _locked(folder: Path) -> Iterator[None]:
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
    moment = now or _utcnow()
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # naive = UTC
    model = re.sub(r"[^a-z0-9_-]+", "-", model_name.strip().lower()).strip("-_")[:40]
    return f"{moment.astimezone(UTC).strftime(_ID_TIME)}_{model or 'model'}_{secrets.token_hex(3)}"


def _created_at(run_id: str) -> datetime | None:
    match = _ID_TIME_RE.match(run_id)
    if not match:
        return None
    return datetime.strptime(match.group(1), _ID_TIME).replace(tzinfo=UTC)


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
    ) -> RunWriter:
        """Make a run folder with config.json, status 'queued', empty history and meta.json.

        `run_id` lets a job that was queued under an id keep it on disk; by default a new one.
        """
        base = Path(root) if root is not None else paths.checkpoints_root()
        base.mkdir(parents=True, exist_ok=True)
        payload = _jsonable(config)
        if run_id is not None:
            _check_run_id(run_id)
            if (base / run_id).exists():
                raise RunError(f"run {run_id} already exists")
        while run_id is None or (base / run_id).exists():
            run_id = new_run_id(model_name)
        # Built in a hidden sibling and renamed at once: readers never see half a run.
        staging = base / f".creating-{run_id}"
        staging.mkdir()
        try:
            write_json_atomic(staging / CONFIG, payload)
            write_json_atomic(staging / META, {"name": None, "tags": [], "notes": ""})
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
        self._status.update(pid=os.getpid(), host=socket.gethostname(), heartbeat=_iso(_utcnow()))
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
            now = _iso(_utcnow())
            self._status.update(status=status, message=message, error=error)
            if status == "running" and not self._status.get("started_at"):
                self._status["started_at"] = now
            if status in TERMINAL_STATUSES:
                self._status["finished_at"] = now
            if progress is not None:
                self._status["progress"] = _jsonable(progress)
            self._write_status()

    def heartbeat(self, progress: dict | None = None) -> None:
        """Rewrite status.json with a fresh heartbeat (and progress, when given)."""
        with self._lock:
            if progress is not None:
                self._status["progress"] = _jsonable(progress)
            self._write_status()

    def append_history(self, record: dict) -> None:
        """Append one JSON line to history.jsonl, durably."""
        line = json.dumps(_jsonable(record)) + "\n"
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

    def save_metrics(self, metrics: dict) -> None:
        """Merge `metrics` into metrics.json (top-level keys), atomically."""
        payload = _jsonable(metrics)
        with _locked(self.path):
            current = read_json(self.path / METRICS)
            merged = current if isinstance(current, dict) else {}
            merged.update(payload)
            write_json_atomic(self.path / METRICS, merged)


@dataclass(frozen=True)
class RunInfo:
    """A run as read from disk, with its effective status and any problems found."""

    run_id: str
    path: Path
    config: dict | None
    status: str
    stored_status: dict | None
    history: list[dict]
    metrics: dict | None
    name: str | None
    tags: tuple[str, ...]
    notes: str
    has_weights: bool
    problems: tuple[str, ...]
    created_at: datetime | None

    @property
    def display_name(self) -> str:
        """The user's name for the run, else its id."""
        return self.name or self.run_id

    @property
    def damaged(self) -> bool:
        """Config unusable, status unreadable, or completed without usable weights."""
        stored = (self.stored_status or {}).get("status")
        return self.status == "damaged" or (stored == "completed" and not self.has_weights)


def is_process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    if not isinstance(pid, int) or pid <= 0:
        return False  # os.kill(0, ...) would signal our own process group
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return True


def _read_object(path: Path, problems: list[str]) -> dict | None:
    if not path.exists():
        problems.append(f"{path.name} is missing")
        return None
    payload = read_json(path)
    if not isinstance(payload, dict):
        problems.append(
            f"{path.name} is not valid JSON"
            if payload is None
            else f"{path.name} is not a JSON object"
        )
        return None
    return payload


def _read_history(path: Path, problems: list[str]) -> list[dict]:
    try:
        raw = path.read_bytes()
    except OSError:
        return []
    records, bad = [], 0
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, UnicodeDecodeError):
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            bad += 1
    if bad:
        problems.append(f"{HISTORY}: {bad} unreadable line{'s' if bad > 1 else ''} skipped")
    return records


def _weights_problem(path: Path) -> str | None:
    """Cheap safetensors check (header and size) so listing never loads tensors."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            (header_len,) = struct.unpack("<Q", handle.read(8))
            if header_len > size - 8:
                raise ValueError
            header = json.loads(handle.read(header_len))
        ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
        if 8 + header_len + max(ends, default=0) != size:
            raise ValueError
    except FileNotFoundError:
        return f"{WEIGHTS} is missing"
    except (OSError, ValueError, struct.error, KeyError, TypeError, IndexError, AttributeError):
        return f"{WEIGHTS} is truncated or corrupt"
    return None


def _effective_status(stored: dict | None, config: dict | None, problems: list[str]) -> str:
    if stored is None or config is None:
        return "damaged"
    status = stored.get("status")
    if status not in STATUSES:
        problems.append(f"{STATUS} has unknown status {status!r}")
        return "damaged"
    if status not in LIVE_STATUSES:
        return status
    pid, host = stored.get("pid"), stored.get("host")
    if host == socket.gethostname() and not is_process_alive(pid):
        problems.append(f"{status} but its process (pid {pid}) is gone")
        return "interrupted"
    beat = _parse_iso(stored.get("heartbeat"))
    age = (_utcnow() - beat).total_seconds() if beat else None
    if age is None or age > HEARTBEAT_STALE_SECONDS:
        problems.append(
            f"{status} but no heartbeat for {'ever' if age is None else f'{age:.0f} s'}"
        )
        return "interrupted"
    return status


def _read_run(folder: Path) -> RunInfo:
    problems: list[str] = []
    config = _read_object(folder / CONFIG, problems)
    stored = _read_object(folder / STATUS, problems)
    status = _effective_status(stored, config, problems)
    meta = read_json(folder / META)
    meta = meta if isinstance(meta, dict) else {}
    tags = meta.get("tags") if isinstance(meta.get("tags"), list) else []
    weights_problem = _weights_problem(folder / WEIGHTS)
    # Missing weights are normal until a run completes; corrupt ones are always worth saying.
    if weights_problem and ((folder / WEIGHTS).exists() or status == "completed"):
        problems.append(weights_problem)
    metrics = read_json(folder / METRICS)
    return RunInfo(
        run_id=folder.name,
        path=folder,
        config=config,
        status=status,
        stored_status=stored,
        history=_read_history(folder / HISTORY, problems),
        metrics=metrics if isinstance(metrics, dict) else None,
        name=meta.get("name") if isinstance(meta.get("name"), str) else None,
        tags=tuple(tag for tag in tags if isinstance(tag, str)),
        notes=meta.get("notes") if isinstance(meta.get("notes"), str) else "",
        has_weights=weights_problem is None,
        problems=tuple(problems),
        created_at=_created_at(folder.name),
    )


def _is_run_folder(folder: Path) -> bool:
    return (
        not folder.name.startswith(".")
        and folder.is_dir()
        and ((folder / CONFIG).exists() or (folder / STATUS).exists())
    )


def _root(root: Path | None) -> Path:
    return Path(root) if root is not None else paths.checkpoints_root()


def list_runs(root: Path | None = None) -> list[RunInfo]:
    """Every run under `root`, newest first; damaged runs are listed, never raised."""
    try:
        folders = [entry for entry in _root(root).iterdir() if _is_run_folder(entry)]
    except OSError:
        return []
    runs = []
    for folder in folders:
        with contextlib.suppress(OSError):  # deleted while we were listing
            runs.append(_read_run(folder))

    def newest(info: RunInfo) -> tuple[float, str]:
        moment = info.created_at.timestamp() if info.created_at else 0.0
        return moment, info.run_id

    return sorted(runs, key=newest, reverse=True)


def _check_run_id(run: str) -> None:
    """Refuse ids that could leave the checkpoints folder (path traversal) or hide a run."""
    bad = not run or run.startswith(".") or ".." in run or "\x00" in run
    if bad or any(sep and sep in run for sep in ("/", "\\", os.sep, os.altsep)):
        raise RunError(f"invalid run id {run!r}")


def _run_folder(run: str | Path, root: Path | None) -> Path:
    if isinstance(run, Path):
        folder = run
    else:
        _check_run_id(run)
        folder = _root(root) / run
    if not _is_run_folder(folder):
        raise RunError(f"run {folder.name or str(run)!r} not found")
    return folder


def load_run(run: str | Path, root: Path | None = None) -> RunInfo:
    """One run, by id (inside `root`) or by folder path; RunError when not found."""
    try:
        return _read_run(_run_folder(run, root))
    except OSError as error:
        raise RunError(f"run {str(run)!r} cannot be read: {error.strerror}") from None


def load_weights(run: RunInfo | str | Path, root: Path | None = None) -> dict[str, torch.Tensor]:
    """The run's weights as CPU tensors (safetensors; never unpickled)."""
    folder = run.path if isinstance(run, RunInfo) else _run_folder(run, root)
    path = folder / WEIGHTS
    if not path.exists():
        raise RunError(f"run {folder.name} has no weights ({WEIGHTS} is missing)")
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RunError(f"run {folder.name}: {WEIGHTS} is corrupt ({first_line})") from None


def _update_meta(run_id: str, root: Path | None, **changes: Any) -> None:
    folder = _run_folder(run_id, root)
    with _locked(folder):  # two sessions labelling the same run must not lose an edit
        meta = read_json(folder / META)
        meta = meta if isinstance(meta, dict) else {"name": None, "tags": [], "notes": ""}
        meta.update(changes)
        write_json_atomic(folder / META, meta)


def rename_run(run_id: str, name: str, root: Path | None = None) -> None:
    """Set the run's display name (1..80 printable characters)."""
    cleaned = name.strip() if isinstance(name, str) else ""
    if not 1 <= len(cleaned) <= _MAX_NAME or not cleaned.isprintable():
        raise RunError(f"a run name must be 1 to {_MAX_NAME} printable characters")
    _update_meta(run_id, root, name=cleaned)


def set_tags(run_id: str, tags: Iterable[str], root: Path | None = None) -> None:
    """Replace the run's tags (stripped, de-duplicated, each 1..30 printable characters)."""
    if isinstance(tags, str):
        raise RunError("tags must be a list of strings, not one string")
    cleaned: list[str] = []
    for tag in tags:
        text = tag.strip() if isinstance(tag, str) else ""
        if not 1 <= len(text) <= _MAX_TAG or not text.isprintable():
            raise RunError(f"each tag must be 1 to {_MAX_TAG} printable characters: {tag!r}")
        if text not in cleaned:
            cleaned.append(text)
    _update_meta(run_id, root, tags=cleaned)


def set_notes(run_id: str, notes: str, root: Path | None = None) -> None:
    """Replace the run's free-text notes."""
    if not isinstance(notes, str):
        raise RunError("notes must be text")
    _update_meta(run_id, root, notes=notes)


def delete_run(run_id: str, root: Path | None = None, *, allow_live: bool = False) -> None:
    """Delete a run folder; refuses a queued/running run unless `allow_live`."""
    info = load_run(run_id, root)
    if info.status in LIVE_STATUSES and not allow_live:
        raise RunError(f"run {run_id} is {info.status}; cancel it before deleting")
    # Rename first (atomic): a crash mid-rmtree leaves a hidden folder, never half a run.
    trash = info.path.parent / f".deleting-{run_id}"
    if trash.exists():
        shutil.rmtree(trash, ignore_errors=True)
    try:
        os.rename(info.path, trash)
    except OSError as error:
        raise RunError(f"run {run_id} cannot be deleted: {error.strerror}") from None
    shutil.rmtree(trash, ignore_errors=True)


def mark_interrupted_runs(root: Path | None = None) -> list[str]:
    """Store 'interrupted' for runs whose process is gone; returns their ids (start-up)."""
    marked = []
    for info in list_runs(root):
        stored = info.stored_status or {}
        if info.status != "interrupted" or stored.get("status") not in LIVE_STATUSES:
            continue
        with contextlib.suppress(RunError, OSError):  # start-up must not crash on one run
            fresh = load_run(info.path)  # re-check: it may have just sent a heartbeat
            if fresh.status != "interrupted" or fresh.stored_status is None:
                continue
            updated = dict(fresh.stored_status)
            updated.update(status="interrupted", finished_at=_iso(_utcnow()))
            updated["message"] = f"stopped without finishing ({stored.get('status')} when lost)"
            write_json_atomic(info.path / STATUS, updated)
            marked.append(info.run_id)
    return marked
