"""Run registry on disk: one folder per training run under `checkpoints/`.

Disk is the source of truth: every browser session, the CLI and the tests read the same
folders. Every file but the append-only `history.jsonl` is written atomically through
`core.atomic_files`; weights are safetensors only (never pickle).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from core import paths
from core.atomic_files import read_json, write_json_atomic
from core.runs.layout import (
    CONFIG,
    HEARTBEAT_STALE_SECONDS,
    HISTORY,
    LIVE_STATUSES,
    META,
    METRICS,
    STATUS,
    STATUSES,
    WEIGHTS,
    RunError,
    check_run_id,
    clean_run_name,
    iso,
    locked,
    parse_iso,
    run_created_at,
    utcnow,
)
from core.runs.metrics_records import RunMetrics, parse_metrics
from core.runs.parsing import Record, RecordError
from core.runs.records import (
    EpochRecord,
    RunConfig,
    RunStatus,
    parse_config,
    parse_epoch,
    parse_status,
)

_MAX_TAG = 30


@dataclass(frozen=True)
class RunInfo:
    """A run as read from disk: its files parsed once into typed records, its effective status
    and any problems found. A file that could not be parsed is None, with its problem listed."""

    run_id: str
    path: Path
    config: RunConfig | None
    status: str
    stored_status: RunStatus | None
    history: tuple[EpochRecord, ...]
    metrics: RunMetrics | None
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
        stored = self.stored_status.status if self.stored_status else None
        return self.status == "damaged" or (stored == "completed" and not self.has_weights)

    @property
    def model_name(self) -> str | None:
        """The registry name of the run's model, when its config is readable."""
        return self.config.model.name if self.config else None

    @property
    def val_accuracy(self) -> float | None:
        """The best epoch's validation accuracy, as training recorded it."""
        return self.metrics.val.accuracy if self.metrics and self.metrics.val else None

    @property
    def usable(self) -> bool:
        """Completed, undamaged and with weights: it can be evaluated and can classify."""
        return self.status == "completed" and not self.damaged and self.has_weights


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


def _read_record(
    path: Path,
    problems: list[str],
    parse: Callable[[Any], Record],
    *,
    required: bool = True,
) -> Record | None:
    """One file parsed into its record, or None with the reason added to `problems`."""
    if not path.exists():
        if required:
            problems.append(f"{path.name} is missing")
        return None
    payload = read_json(path)
    if payload is None:
        problems.append(f"{path.name} is not valid JSON")
        return None
    try:
        return parse(payload)
    except RecordError as error:
        problems.append(f"{path.name} {error}")
        return None


def _read_history(path: Path, problems: list[str]) -> tuple[EpochRecord, ...]:
    try:
        raw = path.read_bytes()
    except OSError:
        return ()
    records, bad = [], 0
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            records.append(parse_epoch(json.loads(line)))
        except (ValueError, UnicodeDecodeError):  # RecordError is a ValueError too
            bad += 1
    if bad:
        problems.append(f"{HISTORY}: {bad} unreadable line{'s' if bad > 1 else ''} skipped")
    return tuple(records)


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


def _effective_status(
    stored: RunStatus | None, config: RunConfig | None, problems: list[str]
) -> str:
    if stored is None or config is None:
        return "damaged"
    status = stored.status
    if status not in STATUSES:
        problems.append(f"{STATUS} has unknown status {status!r}")
        return "damaged"
    if status not in LIVE_STATUSES:
        return status
    if stored.host == socket.gethostname() and not is_process_alive(stored.pid or 0):
        problems.append(f"{status} but its process (pid {stored.pid}) is gone")
        return "interrupted"
    beat = parse_iso(stored.heartbeat)
    age = (utcnow() - beat).total_seconds() if beat else None
    if age is None or age > HEARTBEAT_STALE_SECONDS:
        problems.append(
            f"{status} but no heartbeat for {'ever' if age is None else f'{age:.0f} s'}"
        )
        return "interrupted"
    return status


def _read_meta(path: Path, problems: list[str]) -> dict[str, Any]:
    """The user's labels (name, tags, notes); a damaged file reads as none."""
    meta = _read_record(path, problems, lambda payload: payload, required=False)
    if meta is not None and not isinstance(meta, dict):
        problems.append(f"{path.name} is not a JSON object")
    return meta if isinstance(meta, dict) else {}


def _read_run(folder: Path) -> RunInfo:
    problems: list[str] = []
    config = _read_record(folder / CONFIG, problems, parse_config)
    stored = _read_record(folder / STATUS, problems, parse_status)
    status = _effective_status(stored, config, problems)
    meta = _read_meta(folder / META, problems)
    tags = meta.get("tags") if isinstance(meta.get("tags"), list) else []
    weights_problem = _weights_problem(folder / WEIGHTS)
    # Missing weights are normal until a run completes; corrupt ones are always worth saying.
    if weights_problem and ((folder / WEIGHTS).exists() or status == "completed"):
        problems.append(weights_problem)
    metrics = _read_record(folder / METRICS, problems, parse_metrics, required=False)
    return RunInfo(
        run_id=folder.name,
        path=folder,
        config=config,
        status=status,
        stored_status=stored,
        history=_read_history(folder / HISTORY, problems),
        metrics=metrics,
        name=meta.get("name") if isinstance(meta.get("name"), str) else None,
        tags=tuple(tag for tag in tags if isinstance(tag, str)),
        notes=meta.get("notes") if isinstance(meta.get("notes"), str) else "",
        has_weights=weights_problem is None,
        problems=tuple(problems),
        created_at=run_created_at(folder.name),
    )


def _is_run_folder(folder: Path) -> bool:
    # A folder named like a run id is a run even when emptied: it is listed as damaged (and
    # can be deleted) rather than silently ignored.
    return (
        not folder.name.startswith(".")
        and folder.is_dir()
        and (
            (folder / CONFIG).exists()
            or (folder / STATUS).exists()
            or run_created_at(folder.name) is not None
        )
    )


def _root(root: Path | None) -> Path:
    return Path(root) if root is not None else paths.checkpoints_root()


def _run_folders(root: Path | None) -> list[Path]:
    """Every run folder under `root`, newest first by the time in its id (what `RunInfo.
    created_at` holds), without reading any file in it."""
    try:
        folders = [entry for entry in _root(root).iterdir() if _is_run_folder(entry)]
    except OSError:
        return []

    def newest(folder: Path) -> tuple[float, str]:
        created = run_created_at(folder.name)
        return (created.timestamp() if created else 0.0), folder.name

    return sorted(folders, key=newest, reverse=True)


def run_ids(root: Path | None = None) -> list[str]:
    """The ids of the runs under `root`, newest first, without reading any of them."""
    return [folder.name for folder in _run_folders(root)]


def list_runs(root: Path | None = None, *, newest: int | None = None) -> list[RunInfo]:
    """Every run under `root` (or only the `newest` ones, reading no other), newest first;
    damaged runs are listed, never raised."""
    runs = []
    for folder in _run_folders(root)[:newest]:
        with contextlib.suppress(OSError):  # deleted while we were listing
            runs.append(_read_run(folder))
    return runs


def _run_folder(run: str | Path, root: Path | None) -> Path:
    if isinstance(run, Path):
        folder = run
    else:
        check_run_id(run)
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


def resolve_run(run: str | Path) -> RunInfo:
    """A run named on a command line: an existing folder path, else an id in the checkpoints."""
    return load_run(Path(run) if Path(str(run)).is_dir() else str(run))


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
    with locked(folder):  # two sessions labelling the same run must not lose an edit
        meta = read_json(folder / META)
        meta = meta if isinstance(meta, dict) else {"name": None, "tags": [], "notes": ""}
        meta.update(changes)
        write_json_atomic(folder / META, meta)


def rename_run(run_id: str, name: str, root: Path | None = None) -> None:
    """Set the run's display name (1..80 printable characters)."""
    _update_meta(run_id, root, name=clean_run_name(name))


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
        stored = info.stored_status
        if info.status != "interrupted" or stored is None or stored.status not in LIVE_STATUSES:
            continue
        with contextlib.suppress(RunError, OSError):  # start-up must not crash on one run
            fresh = load_run(info.path)  # re-check: it may have just sent a heartbeat
            if fresh.status != "interrupted" or fresh.stored_status is None:
                continue
            updated = replace(
                fresh.stored_status,
                status="interrupted",
                finished_at=iso(utcnow()),
                message=f"stopped without finishing ({stored.status} when lost)",
            )
            write_json_atomic(info.path / STATUS, updated.to_json())
            marked.append(info.run_id)
    return marked
