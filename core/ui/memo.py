"""A process-wide memo for heavy objects shared by every browser session.

`st.cache_resource` would also do, but its functions cannot report progress to a bar that lives
outside them. This memo computes outside Streamlit's cache, so a long first load can drive a
progress bar, while one lock per key makes concurrent sessions wait for one computation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

import streamlit as st

Value = TypeVar("Value")


class Memo:
    """A small least-recently-used map of computed values with per-key locks."""

    def __init__(self, capacity: int = 16) -> None:
        self.capacity = capacity
        self._values: OrderedDict[Hashable, Any] = OrderedDict()
        self._key_locks: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], Value]) -> Value:
        """The value for `key`, computing it at most once even when sessions ask together."""
        with self._lock:
            if key in self._values:
                self._values.move_to_end(key)
                return self._values[key]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._values:
                    return self._values[key]
            value = compute()
            with self._lock:
                self._values[key] = value
                while len(self._values) > self.capacity:
                    self._values.popitem(last=False)
                self._key_locks.pop(key, None)
            return value

    def peek(self, key: Hashable) -> Any | None:
        """The value for `key` if already computed, else None."""
        with self._lock:
            return self._values.get(key)

    def clear(self) -> None:
        """Forget every value (tests, and after a dataset changes)."""
        with self._lock:
            self._values.clear()


@st.cache_resource(show_spinner=False)
def shared_memo() -> Memo:
    """The one memo of this server process (global scope: survives reruns and refreshes)."""
    return Memo()
