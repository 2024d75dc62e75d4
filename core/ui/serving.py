"""The app's side of serving to a lab: the login gate, read-only notices, the dataset picker."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from core import paths
from core.serving import allowed_dataset_folders, read_only

LOGIN_BUTTON_KEY = "login"


def withheld(action: str) -> bool:
    """True, after a caption that says so, when the server is read-only and `action` is one
    it does not offer; False (nothing drawn) otherwise."""
    if not read_only():
        return False
    st.caption(
        f":material/lock: This server is read-only: {action} is not offered here "
        "(the server's owner does it from the command line)."
    )
    return True


def login_configured() -> bool:
    """Whether secrets.toml has an [auth] section, Streamlit's own OIDC login."""
    return st.secrets.load_if_toml_exists() and "auth" in st.secrets


def require_login() -> None:
    """With [auth] configured, a visitor who is not logged in sees only a Log in button.

    Streamlit's login is opt-in per app: configuring [auth] alone lets everyone in, so the
    entry point stops every page here until st.user says who is looking.
    """
    if not login_configured() or st.user.get("is_logged_in"):
        return
    st.title("Brain Tumor Workbench")
    st.info("This workbench is shared: log in to use it.", icon=":material/lock:")
    st.button("Log in", key=LOGIN_BUTTON_KEY, type="primary", on_click=st.login)
    st.stop()


def dataset_folder_ui(current: Path) -> str:
    """The dataset folder the user picks: any path typed, or, under BTW_DATA_ROOTS, one of the
    allowed roots and their subfolders (no free text, so there is nothing to escape with)."""
    roots = paths.allowed_data_roots()
    if roots is None:
        return st.text_input("Dataset folder", value=str(current), key="dataset_path")
    folders = [str(folder) for folder in allowed_dataset_folders(roots)]
    if not folders:
        st.caption(f"{paths.DATA_ROOTS_ENV} names no folder: only the demo can be opened.")
        return ""
    st.caption(
        f"This server opens datasets only inside {', '.join(str(root) for root in roots)} "
        f"({paths.DATA_ROOTS_ENV}): pick a root or one of its subfolders."
    )
    return st.selectbox(
        "Dataset folder",
        folders,
        index=folders.index(str(current)) if str(current) in folders else 0,
        key="dataset_choice",
    )
