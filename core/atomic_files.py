"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every derived file (index, caches, manifests, run files) goes through here: write to a
temporary file in the same folder, flush, fsync, `os.replace`, then fsync the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

# mkstemp creates its file readable by the owner only; a replaced file gets the mode a plain
# open() would give it (0o666 less the umask), so runs and exports stay readable by the group
# and others the user shares them with. The umask is read once, at import: setting it is the
# only way to read it, and that is not thread-safe.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_open(path: Path, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary sibling of `path` for writing; replace `path` with it on success."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp_name = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
    )
    try:
        os.fchmod(descriptor, FILE_MODE)
        with os.fdopen(descriptor, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; not every filesystem allows opening a folder.
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_text_atomic(path: Path, text: str) -> None:
    """Write UTF-8 `text` to `path` atomically."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: Path, payload: Any) -> None:
    """Write `payload` as indented JSON to `path` atomically."""
    write_text_atomic(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")


def write_with_atomic(path: Path, writer: Callable[[IO[bytes]], None]) -> None:
    """Let `writer` fill a binary file handle that atomically becomes `path`."""
    with atomic_open(path, "wb") as handle:
        writer(handle)


def read_json(path: Path) -> Any | None:
    """Parse a JSON file; None when it is missing or not valid JSON (a damaged file)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return None
