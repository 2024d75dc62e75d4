"""The one way pages offer a table for download."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st


def csv_download(
    label: str, table: pd.DataFrame, *, file_name: str, key: str, container: Any = st
) -> None:
    """A download button for `table` as CSV (in `container`: a column, or the page)."""
    container.download_button(
        label, table.to_csv(index=False), file_name=file_name, mime="text/csv", key=key
    )
