"""The Compare page's export: one selected run as a verified ONNX model with its model card,
downloaded as one zip (`python -m core export` on the command line)."""

from __future__ import annotations

import io
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import streamlit as st

from core.export.model_card import write_model_card
from core.export.onnx_model import ExportError, export_onnx
from core.runs.registry import RunInfo

EXPORT_KEY = "_compare_export"  # (run id, zip bytes, one-line summary) of the last export


def export_zip(info: RunInfo) -> tuple[bytes, str]:
    """The run's ONNX model and model card in one zip, made in a temporary folder (nothing is
    written under the run), and a line saying how well the export matched the run."""
    with tempfile.TemporaryDirectory(prefix="btw-export-") as scratch:
        model = Path(scratch) / "model.onnx"
        result = export_onnx(info.path, model)
        markdown, data = write_model_card(info, result)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in (model, markdown, data):
                archive.write(path, arcname=path.name)
    summary = (
        f"Checked with {result.runtime} on {result.images_checked} official test images: "
        f"largest probability difference {result.max_difference:.1e} (tolerance "
        f"{result.tolerance:.0e})" + ("; the same class for every image." if result.same_predictions
                                      else "; some classes differ.")
    )  # fmt: skip
    return buffer.getvalue(), summary


def show_export_download(selected: Sequence[RunInfo], labels: dict[str, str]) -> None:
    """Pick one selected run with weights; a button exports it, then its download button."""
    usable = [info for info in selected if info.has_weights and not info.damaged]
    if not usable:
        return
    by_id = {info.run_id: info for info in usable}
    left, right = st.columns([2, 1])
    run_id = left.selectbox(
        "Export a run as ONNX, with its model card",
        list(by_id),
        format_func=lambda run: labels.get(run, run),
        key="compare_export_run",
    )
    if right.button(
        "Export (verified)",
        key="compare_export",
        help="The run as an ONNX model, checked with onnxruntime against the run on its own "
        "test images before it is offered, and a model card of its stored evaluations.",
    ):
        try:
            with st.spinner("Exporting and checking the model on test images..."):
                archive, summary = export_zip(by_id[run_id])
        except (ExportError, ValueError, OSError, RuntimeError) as error:
            st.session_state.pop(EXPORT_KEY, None)
            st.error(f"Could not export the run: {error}")
            return
        st.session_state[EXPORT_KEY] = (run_id, archive, summary)
    stored = st.session_state.get(EXPORT_KEY)
    if stored is None or stored[0] != run_id:
        return
    st.caption(stored[2])
    st.download_button(
        f"Download the model and its card ({len(stored[1]) / 1e6:.1f} MB, zip)",
        stored[1],
        file_name=f"{run_id}-onnx.zip",
        mime="application/zip",
        key="compare_export_download",
        on_click="ignore",
    )
