"""A Streamlit progress bar that listens to core's event bus."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence

import streamlit as st

from core.events import PROGRESS, Events, StageProgress
from core.runs.registry import RunInfo
from core.ui.serving import withheld


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


def work_on_runs(
    runs: Sequence[RunInfo],
    labels: dict[str, str],
    work: Callable[[RunInfo, Events], object],
    *,
    title: str,
    doing: str,
    done: str,
) -> list[str]:
    """Do `work` on each run under a status box with one bar; the failures, one line each.

    One failure never stops the others: ValueError (a run that cannot be used, an unreadable
    image) and OSError (a dataset that changed under it) are listed, not raised.
    """
    failures: list[str] = []
    with st.status(title, expanded=True) as box:
        bar = st.progress(0.0)
        for index, info in enumerate(runs):
            events = Events()

            def show(stage: StageProgress, index: int = index) -> None:
                bar.progress((index + stage.fraction) / len(runs), text=stage.message)

            events.add_callback(PROGRESS, show)
            st.write(f"{labels.get(info.run_id, info.display_name)}: {doing}")
            try:
                work(info, events)
            except (ValueError, OSError) as error:
                failures.append(f"{labels.get(info.run_id, info.display_name)}: {error}")
                st.error(failures[-1])
        box.update(
            label=f"{done} {len(runs) - len(failures)} of {len(runs)} run(s)",
            state="error" if failures else "complete",
        )
    return failures


def show_work_failures(report_key: str, verb: str) -> None:
    """The failures of the last `work_button` click with this key (shown once, after its
    rerun), one error line each."""
    for failure in st.session_state.pop(report_key, []):
        st.error(f"Could not {verb} {failure}")


def work_button(
    pending: Sequence[RunInfo],
    labels: dict[str, str],
    work: Callable[[RunInfo, Events], object],
    *,
    label: str,
    key: str,
    report_key: str,
    title: str,
    doing: str,
    done: str,
) -> None:
    """A button that does `work` on each pending run under a status box, keeps the failures
    for `show_work_failures` and reruns (the page above was drawn before the work); on a
    read-only server, a line saying why there is no button."""
    if withheld("computing and storing new results"):
        return
    if st.button(label, key=key):
        st.session_state[report_key] = work_on_runs(
            pending, labels, work, title=title, doing=doing, done=done
        )
        st.rerun()
