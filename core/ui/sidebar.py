"""The sidebar shown on every page: dataset in use and compute device."""

from __future__ import annotations

import streamlit as st

from core.data import Dataset
from core.device import detect_device
from core.jobs import JobSnapshot
from core.ui.memo import shared_memo
from core.ui.training import progress_text


def synthetic_notice(dataset: Dataset) -> None:
    """A visible warning that the images are synthetic phantoms, not patient data."""
    st.warning(
        "This is the built-in **synthetic demo dataset**: computer-drawn phantom slices, "
        "not medical images. Point the workbench at a real dataset on the Dataset page.",
        icon=":material/science:",
    )


def render_sidebar(dataset: Dataset | None, active_job: JobSnapshot | None) -> None:
    """Dataset (path, classes, images, demo or real), device and the training job, if any."""
    with st.sidebar:
        st.markdown("#### Dataset")
        if dataset is None:
            st.caption("No dataset could be opened.")
        else:
            badge = "synthetic demo" if dataset.synthetic else "real images"
            st.markdown(f"**{dataset.root.name}** · {badge}")
            st.caption(str(dataset.root))
            st.caption(f"{len(dataset.frame):,} images · {len(dataset.classes)} classes")
            st.caption(", ".join(dataset.classes))
        st.markdown("#### Device")
        device = shared_memo().get(("device",), detect_device)
        st.caption(device.describe())
        st.markdown("#### Training")
        if active_job is None:
            st.caption("No job running.")
        else:
            st.caption(f"{active_job.model}: {progress_text(active_job)}")
            st.progress(min(1.0, active_job.fraction))
            st.page_link(
                "app_pages/train.py", label="Watch it", query_params={"run": active_job.job_id}
            )
