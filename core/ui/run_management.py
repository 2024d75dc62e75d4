"""Rename, tag and delete runs from the Compare page."""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from core.runs.layout import RunError
from core.runs.registry import RunInfo, delete_run, rename_run, set_tags
from core.ui.serving import withheld

FEEDBACK_KEY = "_compare_feedback"

SELECTION_KEY = "compare_runs"


def name_key(run_id: str) -> str:
    """Session key of the name box of a run."""
    return f"manage_name_{run_id}"


def tags_key(run_id: str) -> str:
    """Session key of the tags box of a run."""
    return f"manage_tags_{run_id}"


def confirm_key(run_id: str) -> str:
    """Session key of the delete confirmation box of a run."""
    return f"manage_confirm_{run_id}"


def _feedback(kind: str, message: str) -> None:
    st.session_state[FEEDBACK_KEY] = (kind, message)


def rename_clicked(run_id: str) -> None:
    """Callback of Rename: store the name typed in the box."""
    try:
        rename_run(run_id, st.session_state.get(name_key(run_id), ""))
    except RunError as error:
        _feedback("error", str(error))
    else:
        _feedback("success", f"Renamed run {run_id}.")


def tags_clicked(run_id: str) -> None:
    """Callback of Save tags: the comma-separated tags typed in the box."""
    text = st.session_state.get(tags_key(run_id), "")
    try:
        set_tags(run_id, [tag for tag in text.split(",") if tag.strip()])
    except RunError as error:
        _feedback("error", str(error))
    else:
        _feedback("success", f"Saved the tags of run {run_id}.")


def delete_clicked(run_id: str) -> None:
    """Callback of Delete: deletes only once the confirmation box is ticked."""
    if not st.session_state.get(confirm_key(run_id)):
        _feedback("warning", "Tick the confirmation box first: deleting cannot be undone.")
        return
    try:
        delete_run(run_id)
    except RunError as error:
        _feedback("error", str(error))
        return
    selected = st.session_state.get(SELECTION_KEY)
    if isinstance(selected, list) and run_id in selected:
        st.session_state[SELECTION_KEY] = [other for other in selected if other != run_id]
    _feedback("success", f"Deleted run {run_id}.")


def show_feedback() -> None:
    """The result of the last rename, tag or delete (shown once)."""
    feedback = st.session_state.pop(FEEDBACK_KEY, None)
    if feedback is not None:
        kind, message = feedback
        {"success": st.success, "warning": st.warning, "error": st.error}[kind](message)


def run_summary(info: RunInfo) -> str:
    """One line about a run for the management box."""
    model = info.model_name or "?"
    status = "damaged" if info.damaged else info.status
    return f"`{info.run_id}` · {model} · **{status}**"


def show_run_management(infos: Sequence[RunInfo], labels: dict[str, str]) -> None:
    """Rename, tag or delete one run (in an expander); on a read-only server, a line saying
    that none of it is offered."""
    if withheld("renaming, tagging or deleting a run"):
        return
    by_id = {info.run_id: info for info in infos}
    with st.expander("Rename, tag or delete a run"):
        target = st.selectbox(
            "Run", list(by_id), format_func=lambda run_id: labels[run_id], key="manage_run"
        )
        chosen = by_id[target]
        st.markdown(run_summary(chosen))
        name_column, tags_column = st.columns(2)
        name_column.text_input("Name", value=chosen.name or "", key=name_key(target))
        name_column.button("Rename", key="manage_rename", on_click=rename_clicked, args=(target,))
        tags_column.text_input(
            "Tags (comma-separated)", value=", ".join(chosen.tags), key=tags_key(target)
        )
        tags_column.button("Save tags", key="manage_tags", on_click=tags_clicked, args=(target,))
        st.checkbox("Yes, delete this run and all its files", key=confirm_key(target))
        st.button("Delete run", key="manage_delete", on_click=delete_clicked, args=(target,))
