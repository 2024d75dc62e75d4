"""The sidebar shown on every page: the server's mode, dataset in use and compute device."""

from __future__ import annotations

import streamlit as st

from core import paths
from core.data.index import Dataset
from core.device import detect_device
from core.jobs import STUDY_JOB
from core.serving import read_only
from core.ui.datasets import current_dataset
from core.ui.memo import shared_memo
from core.ui.serving import login_configured
from core.ui.training import job_fraction, job_manager, progress_text

STATUS_REFRESH_SECONDS = 2.0


def synthetic_notice(dataset: Dataset) -> None:
    """A visible warning that the images are synthetic phantoms, not patient data."""
    st.warning(
        "This is the built-in **synthetic demo dataset**: computer-drawn phantom slices, "
        "not medical images. Point the workbench at a real dataset on the Dataset page.",
        icon=":material/science:",
    )


def page_dataset() -> Dataset:
    """The dataset a page works on, with the synthetic notice when it is the demo; stops the
    page when none is usable (current_dataset has said why)."""
    dataset = current_dataset()
    if dataset is None:
        st.stop()
    if dataset.synthetic:
        synthetic_notice(dataset)
    return dataset


def render_sidebar(dataset: Dataset | None) -> None:
    """Who is logged in and what the server allows, dataset (path, classes, images, demo or
    real), device and the training job, if any."""
    with st.sidebar:
        show_server_mode()
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
        jobs = job_manager().snapshots()
        show_training_status(watching=any(snapshot.active for snapshot in jobs))


def show_server_mode() -> None:
    """'read-only server' and the dataset allow-list when they are on; who is logged in."""
    if read_only():
        st.markdown(":material/lock: **read-only server**")
        st.caption("Classify and view; no training, renaming, deleting or new results.")
    if paths.allowed_data_roots() is not None:
        st.caption(f"Datasets only from the folders in {paths.DATA_ROOTS_ENV}.")
    if login_configured() and st.user.get("is_logged_in"):
        name = st.user.get("name") or st.user.get("email") or "logged in"
        st.caption(f"Logged in as {name}")
        st.button("Log out", key="logout", on_click=st.logout)


def show_training_status(*, watching: bool) -> None:
    """The job training now; while one is queued or training it refreshes itself.

    Drawn once per page run only, it stayed at the state the job had when the page loaded
    ('Preparing' for the whole run when watched from the Train page).
    """

    @st.fragment(run_every=STATUS_REFRESH_SECONDS if watching else None)
    def status() -> None:
        active_job = job_manager().active()
        if active_job is None:
            st.caption("No job running.")
            return
        st.caption(f"{active_job.model}: {progress_text(active_job)}")
        st.progress(job_fraction(active_job))
        if active_job.model == STUDY_JOB:
            st.page_link(
                "app_pages/studies.py", label="Watch it", query_params={"study": active_job.job_id}
            )
        else:
            st.page_link(
                "app_pages/train.py", label="Watch it", query_params={"run": active_job.job_id}
            )

    status()
