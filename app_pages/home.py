"""Home: the workflow from a dataset to an explained prediction, each step's state read from
disk and one button to the next useful action."""

import streamlit as st

from core.runs.registry import list_runs
from core.ui.datasets import audit_is_ready, current_dataset
from core.ui.home import next_step, runs_of, workflow_steps
from core.ui.sidebar import synthetic_notice
from core.ui.training import job_manager

st.title("Brain Tumor Workbench")
st.markdown(
    "Classify brain MRI slices (glioma, meningioma, pituitary tumour, no tumour) and find out "
    "how well, and why, a model does it: is a custom CNN trained from scratch or a pretrained "
    "transfer model the better choice with limited medical data, and does it hold up outside "
    "the dataset it came from?"
)

dataset = current_dataset()
if dataset is None:
    st.page_link("app_pages/dataset.py", label="Choose a dataset", icon=":material/photo_library:")
    st.stop()
if dataset.synthetic:
    synthetic_notice(dataset)

steps = workflow_steps(
    images=len(dataset.frame), classes=len(dataset.classes), audited=audit_is_ready(dataset),
    runs=runs_of(list_runs(), dataset.root), running=job_manager().active(),
)  # fmt: skip
upcoming = next_step(steps)
for number, step in enumerate(steps):
    text, action = st.columns([4, 1], vertical_alignment="center")
    mark = ":material/check_circle:" if step.done else ":material/radio_button_unchecked:"
    text.markdown(f"{mark} **{number + 1}. {step.title}**  \n{step.state}")
    if action.button(
        step.action, key=f"home_step_{number}", width="stretch",
        type="primary" if number == upcoming else "secondary",
    ):  # fmt: skip
        st.switch_page(step.page, query_params=step.query or None)
st.caption(f"Dataset: `{dataset.root}` ({dataset.layout} layout).")
