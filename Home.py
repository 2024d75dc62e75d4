"""Brain Tumor Workbench: the Streamlit entrypoint (navigation and sidebar).

The pages live in app_pages/, not pages/: Streamlit treats a pages/ folder beside the
entrypoint as a legacy multipage app until this script has run once in the process, so a
first visit straight to /train would run that page without this script (no sidebar, wrong
navigation) for as long as the server lives.
"""

import os

# Set before torch loads OpenMP. Training shares two cores with the web server and the browser;
# passive waiting measured 1.9x faster training beside a busy core (16% slower on an idle
# machine, which is why the CLI keeps OpenMP's default).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st

from core.serving import read_only
from core.ui.datasets import current_dataset
from core.ui.serving import require_login
from core.ui.sidebar import render_sidebar
from core.ui.training import mark_interrupted_runs_once

st.set_page_config(
    page_title="Brain Tumor Workbench", page_icon=":material/neurology:", layout="wide"
)

navigation = st.navigation(
    [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/dataset.py", title="Dataset", icon=":material/photo_library:"),
        st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("app_pages/studies.py", title="Studies", icon=":material/query_stats:"),
        st.Page("app_pages/inside.py", title="Inside", icon=":material/layers:"),
        st.Page("app_pages/classify.py", title="Classify", icon=":material/neurology:"),
    ]
)
require_login()  # stops here for a visitor not logged in, when secrets.toml has [auth]
if not read_only():  # a read-only server writes nothing under checkpoints/, not even this
    mark_interrupted_runs_once()
render_sidebar(current_dataset())
navigation.run()
