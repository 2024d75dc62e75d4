"""A Streamlit progress bar that core's progress callbacks can drive."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import streamlit as st

from core.events import ProgressCallback


@contextlib.contextmanager
def progress_bar(label: str) -> Iterator[ProgressCallback]:
    """Yield a progress(done, total, message) callback; the bar disappears when done."""
    placeholder = st.empty()
    bar = placeholder.progress(0.0, text=label)

    def report(done: int, total: int, message: str) -> None:
        bar.progress(min(1.0, done / max(total, 1)), text=f"{label} {message}")

    try:
        yield report
    finally:
        placeholder.empty()
