"""Progress on stderr for the CLI's long steps."""

from __future__ import annotations

import sys
import time


class StderrProgress:
    """Progress reporter for long steps: rewrites one stderr line, at most a few times a second."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self._last_print = 0.0

    def __call__(self, done: int, total: int, message: str) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self._last_print < 0.25 and done < total):
            return
        self._last_print = now
        end = "\n" if done >= total else ""
        print(f"\r{message}", end=end, file=sys.stderr, flush=True)
