"""Which dataset the app shows, and its cached index, pixels and audit."""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Hashable
from pathlib import Path

import numpy as np
import streamlit as st

from core.data import audit, scan_level
from core.data.discovery import DatasetError, discover
from core.data.index import Dataset, open_dataset
from core.data.locate import resolve_dataset_dir
from core.data.statistics import class_intensity_histograms
from core.serving import dataset_folder_refusal
from core.ui.memo import shared_memo
from core.ui.progress import progress_bar

DATASET_STATE_KEY = "btw_dataset_dir"
DATASET_QUERY_KEY = "data"
AUDIT_THRESHOLD_KEY = "audit_threshold"
PAIR_PAGE_KEY = "pair_page"
PAIR_LISTING_KEY = "pair_listing"


def _data_argument() -> str | None:
    """`--data DIR` given after `--` to `streamlit run Home.py -- --data DIR`."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--data")
    known, _ = parser.parse_known_args(sys.argv[1:])
    return known.data


def default_dataset_dir() -> Path:
    """--data, else BTW_DATA_DIR, else data/, else the synthetic demo (generated once)."""
    explicit = _data_argument()
    return shared_memo().get(("default-dataset", explicit), lambda: resolve_dataset_dir(explicit))


def selected_dataset_dir() -> Path:
    """The dataset this browser session looks at (kept in the URL so a refresh keeps it)."""
    chosen = st.session_state.get(DATASET_STATE_KEY) or st.query_params.get(DATASET_QUERY_KEY)
    return Path(chosen) if chosen else default_dataset_dir()


def choose_dataset_dir(text: str) -> str | None:
    """Switch to the folder typed by the user; return an error message if it is no dataset."""
    folder = Path(text.strip()).expanduser()
    if not text.strip():
        return "Type the path of a dataset folder."
    if refusal := dataset_folder_refusal(folder):  # before discover() lists anything there
        return refusal
    try:
        discover(folder)
    except (DatasetError, OSError) as error:
        return str(error)
    st.session_state[DATASET_STATE_KEY] = str(folder.resolve())
    st.query_params[DATASET_QUERY_KEY] = str(folder.resolve())
    return None


def reset_dataset_choice() -> None:
    """Go back to the default dataset."""
    st.session_state.pop(DATASET_STATE_KEY, None)
    st.query_params.pop(DATASET_QUERY_KEY, None)


def _folder_signature(root: Path) -> str:
    """Changes when files are added to or removed from the dataset's folders (no file stat)."""
    digest = hashlib.sha1(str(root).encode())
    folders = [root, *(child for child in root.iterdir() if child.is_dir())]
    folders += [
        grandchild for child in folders[1:] for grandchild in child.iterdir() if grandchild.is_dir()
    ]
    for folder in sorted(folders):
        digest.update(f"{folder}|{folder.stat().st_mtime_ns}".encode())
    return digest.hexdigest()


def load_dataset(root: Path) -> Dataset:
    """The indexed dataset, with a progress bar the first time it is indexed."""
    key = ("dataset", str(root), _folder_signature(root))

    def compute() -> Dataset:
        with progress_bar("Indexing the dataset (once).") as events:
            return open_dataset(root, events=events)

    return shared_memo().get(key, compute)


def current_dataset() -> Dataset | None:
    """The selected dataset, or None after showing why it cannot be opened."""
    root = selected_dataset_dir()
    # Every way in (?data=, the Dataset page, --data, BTW_DATA_DIR, data/) passes here.
    if refusal := dataset_folder_refusal(root):
        st.error(f"Cannot open the dataset: {refusal}")
        return None
    try:
        return load_dataset(root)
    except (DatasetError, OSError) as error:
        st.error(f"Cannot open the dataset: {error}")
        return None


def dataset_images(dataset: Dataset, size: int) -> np.ndarray:
    """All images of the dataset at `size` pixels (decoded once, then from the disk cache)."""

    def compute() -> np.ndarray:
        from core.data.image_cache import load_images

        with progress_bar(f"Decoding images at {size} px (once).") as events:
            return load_images(dataset, size, events=events)

    return shared_memo().get(("images", dataset.fingerprint, size), compute)


def intensity_histograms(dataset: Dataset, size: int) -> dict[str, np.ndarray]:
    """Per-class pixel histograms, computed once per dataset content (every rerun shows them)."""

    def compute() -> dict[str, np.ndarray]:
        labels = dataset.frame["label"].to_numpy()
        return class_intensity_histograms(dataset_images(dataset, size), labels, dataset.classes)

    return shared_memo().get(("histograms", dataset.fingerprint, size), compute)


def audit_candidates(dataset: Dataset) -> audit.AuditCandidates:
    """The audit's candidate pairs (computed once per dataset content, with progress)."""

    def compute() -> audit.AuditCandidates:
        with progress_bar("Auditing the dataset (once).") as events:
            return audit.load_candidates(dataset, events=events)

    return shared_memo().get(("audit", dataset.fingerprint), compute)


def scan_subset_counts(dataset: Dataset, report: audit.AuditReport) -> dict[str, dict[str, int]]:
    """Images per class of each test subset at the report's threshold (the scan-level check
    is computed once per dataset content, with progress)."""

    def compute() -> dict[str, dict[str, int]]:
        with progress_bar("Looking for slices of the same scans (once).") as events:
            return scan_level.subset_counts(dataset, report, events)

    key = ("scan-level counts", dataset.fingerprint, report.threshold)
    return shared_memo().get(key, compute)


def audit_is_ready(dataset: Dataset) -> bool:
    """Whether the audit is already computed (in memory or on disk)."""
    in_memory = shared_memo().peek(("audit", dataset.fingerprint)) is not None
    return in_memory or audit.candidates_are_cached(dataset)


def audit_threshold() -> float:
    """The near-duplicate threshold the audit's slider is at (its default until it is drawn)."""
    return float(st.session_state.get(AUDIT_THRESHOLD_KEY, audit.DEFAULT_THRESHOLD))


def _turn_pair_page(step: int) -> None:
    # A button callback runs before the script, so pair_page_ui clamps the result.
    st.session_state[PAIR_PAGE_KEY] = int(st.session_state.get(PAIR_PAGE_KEY, 1)) + step


def pair_page_ui(count: int, per_page: int, listing: Hashable) -> slice:
    """Previous / page / Next over `count` pairs; returns the rows of the page shown.

    The page goes back to the first when `listing` (what is listed: threshold, filters, order)
    changes, and a page past the end shows the last. The number field has no upper bound: a
    bound that moves with the page count left the browser showing a range error that named the
    old count after the threshold moved.
    """
    pages = max(1, -(-count // per_page))
    page = int(st.session_state.get(PAIR_PAGE_KEY, 1))
    if st.session_state.get(PAIR_LISTING_KEY) != listing:
        page = 1
    page = min(max(page, 1), pages)
    st.session_state[PAIR_LISTING_KEY] = listing
    st.session_state[PAIR_PAGE_KEY] = page
    previous_column, number_column, next_column, position_column = st.columns(
        [1, 1, 1, 3], vertical_alignment="bottom"
    )
    previous_column.button(
        "Previous",
        key="pair_previous",
        on_click=_turn_pair_page,
        args=(-1,),
        disabled=page == 1,
        width="stretch",
    )
    number_column.number_input(f"Page (of {pages:,})", min_value=1, step=1, key=PAIR_PAGE_KEY)
    next_column.button(
        "Next",
        key="pair_next",
        on_click=_turn_pair_page,
        args=(1,),
        disabled=page == pages,
        width="stretch",
    )
    start = (page - 1) * per_page
    stop = min(start + per_page, count)
    position_column.caption(f"Pairs {start + 1:,}–{stop:,} of {count:,}")
    return slice(start, stop)


@st.cache_data(show_spinner=False, max_entries=16)
def test_images_by_class(root: str) -> dict[str, list[str]]:
    """The dataset's test images by class (relative paths; every image for a flat folder),
    found without decoding any."""
    layout = discover(Path(root))
    tested = [item for item in layout.files if item[2] == "test"] or list(layout.files)
    by_class: dict[str, list[str]] = {name: [] for name in layout.classes}
    for relative, label, _split in tested:
        by_class.setdefault(label, []).append(relative)
    return {label: sorted(paths) for label, paths in by_class.items() if paths}
