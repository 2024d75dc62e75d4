"""The event bus: long operations announce what they do, and any number of subscribers (the
Train page's job, a Streamlit progress bar, the CLI's progress bars, tests) listen.

It is the one path progress takes. Training triggers 'batch', 'epoch', 'message' and
'finished'; every long step before or around it (indexing, decoding, the audit, caching the
frozen layers, evaluation) triggers 'progress' with a `StageProgress`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PROGRESS = "progress"


@dataclass(frozen=True)
class StageProgress:
    """How far one long step is: `done` of `total` units, and a line for people."""

    stage: str  # "index", "decode", "audit", "frozen-cache", "evaluate", ...
    done: int
    total: int
    message: str

    @property
    def fraction(self) -> float:
        """Share done, in [0, 1] (1 for a step with nothing to do)."""
        return min(1.0, self.done / self.total) if self.total > 0 else 1.0

    @property
    def finished(self) -> bool:
        """Whether this is the step's last report."""
        return self.done >= self.total


class Events:
    """A tiny event bus: subscribers by event name, called in the order they subscribed."""

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callable[[Any], None]]] = defaultdict(list)

    def add_callback(self, event: str, callback: Callable[[Any], None]) -> None:
        """Call `callback(payload)` whenever `event` fires."""
        self._callbacks[event].append(callback)

    def remove_callback(self, event: str, callback: Callable[[Any], None]) -> None:
        """Stop calling `callback` for `event` (a run's own subscribers, once it has ended)."""
        self._callbacks[event].remove(callback)

    def trigger(self, event: str, payload: Any) -> None:
        """Call every subscriber of `event`."""
        for callback in self._callbacks[event]:
            callback(payload)

    def progress(self, stage: str, done: int, total: int, message: str) -> None:
        """Announce how far a long step is (a 'progress' event with a StageProgress)."""
        self.trigger(PROGRESS, StageProgress(stage, done, total, message))


def report_progress(events: Events | None, stage: str, done: int, total: int, message: str) -> None:
    """`events.progress(...)`, or nothing when the caller passed no event bus."""
    if events is not None:
        events.progress(stage, done, total, message)
