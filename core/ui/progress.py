"""A Streamlit progress bar that listens to core's event bus."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import streamlit as st

from core.events import PROGRESS, Events, StageProgress


@contextlib.contextmanager
def progress_bar(label: str) -> Iterator[Events]:
    """Yield an event bus whose 'progress' events move a bar; the bar disappears when done."""
    placeholder = st.empty()
    bar = placeholder.progress(0.0, text=label)
    events = Events()

    def show(stage: StageProgress) -> None:
        bar.progress(stage.fraction, text=f"{label} {stage.message}")

    events.add_callback(PROGRESS, show)
    try:
        yield events
    finally:
        placeholder.empty()
