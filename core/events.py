"""The event bus: long operations announce what they do, and any number of subscribers (the
Train page's job, the CLI's progress bars, tests) listen.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

ProgressCallback = Callable[[int, int, str], None]
"""Called as progress(done, total, message) by long operations."""


class Events:
    """A tiny event bus: fit() triggers 'batch', 'epoch', 'message' and 'finished'."""

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callable[[Any], None]]] = defaultdict(list)

    def add_callback(self, event: str, callback: Callable[[Any], None]) -> None:
        """Call `callback(payload)` whenever `event` fires."""
        self._callbacks[event].append(callback)

    def trigger(self, event: str, payload: Any) -> None:
        """Call every subscriber of `event`."""
        for callback in self._callbacks[event]:
            callback(payload)
