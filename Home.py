"""Brain Tumor Workbench: the Streamlit entrypoint (navigation and sidebar)."""

import streamlit as st

from core.ui.datasets import current_dataset
from core.ui.sidebar import render_sidebar
from core.ui.training import job_manager, mark_interrupted_runs_once

st.set_page_config(
    page_title="Brain Tumor Workbench", page_icon=":material/neurology:", layout="wide"
)

navigation = st.navigation(
    [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
    ]
)
mark_interrupted_runs_once()
render_sidebar(current_dataset(), job_manager().active())
navigation.run()
