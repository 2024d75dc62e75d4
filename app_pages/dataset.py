"""Dataset: counts, gallery, image statistics and the duplicate / leakage audit."""

import pandas as pd
import streamlit as st

from core.data import audit, scan_level, statistics
from core.imaging.pixels import ImageReadError
from core.imaging.reader import read_image
from core.ui import charts
from core.ui.datasets import (
    audit_candidates,
    audit_is_ready,
    choose_dataset_dir,
    dataset_images,
    intensity_histograms,
    reset_dataset_choice,
    scan_subset_counts,
    selected_dataset_dir,
)
from core.ui.downloads import csv_download
from core.ui.images import displayable
from core.ui.sidebar import page_dataset

THUMBNAIL_SIZE = 128
PAIRS_PER_PAGE = 6

st.title("Dataset")

with st.expander("Use another dataset folder", expanded=False):
    st.caption(
        "Kaggle layout (`Training/<class>/`, `Testing/<class>/`, optional `Validation/`) "
        "or one folder per class. The folder is only read, never changed."
    )
    typed = st.text_input("Dataset folder", value=str(selected_dataset_dir()), key="dataset_path")
    use_column, reset_column = st.columns(2)
    if use_column.button("Use this folder", key="use_dataset", type="primary"):
        problem = choose_dataset_dir(typed)
        if problem:
            st.error(f"Not a dataset: {problem}")
        else:
            st.rerun()
    if reset_column.button("Back to the default dataset", key="reset_dataset"):
        reset_dataset_choice()
        st.rerun()

dataset = page_dataset()
st.caption(f"`{dataset.root}` · {dataset.layout} layout · {len(dataset.frame):,} images")


@st.dialog("Image", width="large")
def show_full_image(position: int) -> None:
    """One image at full size with its facts."""
    row = dataset.frame.iloc[position]
    try:
        st.image(displayable(read_image(dataset.root / row["path"]).pixels), width="stretch")
    except ImageReadError as error:
        st.error(str(error))
    st.markdown(f"**{row['path']}**")
    st.caption(
        f"class {row['label']} · {row['split']} split · {row['width']} x {row['height']} px · "
        f"{row['format']} {row['mode']} · {row['file_bytes'] / 1024:.1f} KB"
    )


overview_tab, gallery_tab, statistics_tab, audit_tab = st.tabs(
    ["Overview", "Gallery", "Image statistics", "Duplicates and leakage"]
)

with overview_tab:
    counts = dataset.counts()
    left, right = st.columns([2, 3])
    left.dataframe(statistics.counts_table(counts), width="stretch")
    right.plotly_chart(charts.class_counts_chart(counts), width="stretch")
    st.info(statistics.imbalance_statement(counts), icon=":material/balance:")
    if dataset.skipped:
        with st.expander(f"{len(dataset.skipped)} files skipped"):
            st.dataframe(
                [{"file": item.path, "reason": item.reason} for item in dataset.skipped],
                width="stretch",
            )

with gallery_tab:
    split_column, class_column, seed_column, count_column = st.columns(4)
    split = split_column.selectbox("Split", dataset.splits, key="gallery_split")
    label = class_column.selectbox("Class", ["all", *dataset.classes], key="gallery_class")
    seed = seed_column.number_input("Sample seed", 0, 1_000_000, 0, key="gallery_seed")
    count = count_column.select_slider("Images", [12, 24, 48], value=24, key="gallery_count")
    if st.button("Another sample", key="gallery_resample"):
        st.session_state["gallery_seed"] = int(seed) + 1
        st.rerun()
    thumbnails = dataset_images(dataset, THUMBNAIL_SIZE)
    positions = statistics.gallery_sample(
        dataset.frame,
        split=split,
        label=None if label == "all" else label,
        seed=int(seed),
        count=count,
    )
    grid = st.columns(6)
    for slot, position in enumerate(positions):
        row = dataset.frame.iloc[position]
        with grid[slot % 6]:
            st.image(thumbnails[position], caption=row["label"], width="stretch")
            if st.button("Open", key=f"open_{position}", width="stretch"):
                show_full_image(int(position))

with statistics_tab:
    left, right = st.columns(2)
    left.markdown("**Image sizes**")
    left.dataframe(statistics.size_table(dataset.frame), width="stretch", hide_index=True)
    right.markdown("**Formats and channels**")
    right.dataframe(statistics.mode_table(dataset.frame), width="stretch", hide_index=True)
    st.markdown("**Mean intensity per image**")
    st.plotly_chart(charts.intensity_box_chart(dataset.frame), width="stretch")
    st.markdown("**Pixel intensity distribution per class** (300 images per class, 128 px)")
    histograms = intensity_histograms(dataset, THUMBNAIL_SIZE)
    st.plotly_chart(charts.intensity_histogram_chart(histograms), width="stretch")


def show_pair(pair: dict) -> None:
    """Two duplicate candidates side by side, read from their original files."""
    st.markdown(
        f"**{pair['kind']}** · distance {pair['distance']:.4f} · {pair['scope']}"
        + (" · :red[conflicting labels]" if pair["conflicting_labels"] else "")
    )
    for column, side in zip(st.columns(2), ("a", "b"), strict=True):
        try:
            pixels = read_image(dataset.root / pair[f"{side}_path"]).pixels
            column.image(displayable(pixels), width="stretch")
        except ImageReadError as error:
            column.error(str(error))
        column.caption(f"{pair[f'{side}_path']} ({pair[f'{side}_label']}, {pair[f'{side}_split']})")


def show_audit() -> None:
    """Counts, distance histogram, downloads and the pair viewer, at a chosen threshold."""
    candidates = audit_candidates(dataset)
    threshold = st.slider(
        "Near-duplicate threshold (distance)",
        0.0,
        audit.CANDIDATE_RADIUS,
        audit.DEFAULT_THRESHOLD,
        step=0.005,
        format="%.3f",
        key="audit_threshold",
        help="Tuned on the real dataset: below ~0.05 pairs are the same slice; above ~0.06 "
        "neighbouring slices of one scan appear, which are not duplicates.",
    )
    report = audit.build_report(dataset, candidates, threshold)
    summary = audit.summarize(dataset, report)
    within_splits = ", ".join(
        f"{n} in {split}" for split, n in summary["within_split_pairs"].items()
    )
    counts = scan_subset_counts(dataset, report)
    metric_columns = st.columns(6)
    metric_columns[0].metric("Test images", summary["test_images"])
    metric_columns[1].metric("Exact copy in training", summary["exact_cross_split"])
    metric_columns[2].metric("Near copy in training", summary["near_cross_split"])
    metric_columns[3].metric("Duplicate-free test images", summary["duplicate_free_test"])
    metric_columns[4].metric(
        "Unseen-scan test images",
        sum(counts["unseen_scan_test"].values()),
        help="Duplicate-free test images with no neighbouring slice and no other sequence of "
        "the slice in training either: the closest this dataset gets to new patients.",
    )
    metric_columns[5].metric("Conflicting-label pairs", summary["conflicting_labels"])
    st.dataframe(
        pd.DataFrame(counts).rename(
            columns={
                "test": "official test",
                "duplicate_free_test": "duplicate-free test",
                "unseen_scan_test": "unseen-scan test",
            }
        ),
        width="content",
    )
    st.caption(
        "Images per class of each test subset. The stricter subsets are unbalanced, so read "
        "balanced accuracy or macro-F1 beside accuracy there (Compare shows both). Unseen-scan: "
        + scan_level.METHOD
        + "."
    )
    st.caption(
        f"{summary['exact_pairs']} exact and {summary['near_pairs']} near pairs in all; within "
        f"splits: {within_splits}. Method: {summary['method']}."
    )
    st.plotly_chart(
        charts.distance_histogram_chart(report.nearest_distance, threshold), width="stretch"
    )
    download_left, download_right = st.columns(2)
    csv_download(
        "Download the duplicate-free test subset (CSV)",
        report.duplicate_free_test,
        file_name="duplicate_free_test.csv",
        key="download_duplicate_free",
        container=download_left,
    )
    csv_download(
        "Download all pairs (CSV)",
        report.pairs,
        file_name="duplicate_pairs.csv",
        key="download_pairs",
        container=download_right,
    )
    kind_column, scope_column, conflict_column = st.columns(3)
    kinds = kind_column.multiselect("Kind", ["exact", "near"], ["exact", "near"], key="pair_kinds")
    scopes = scope_column.multiselect(
        "Scope", ["cross-split", "within split"], ["cross-split"], key="pair_scopes"
    )
    only_conflicts = conflict_column.checkbox("Only conflicting labels", key="pair_conflicts")
    shown = report.pairs[report.pairs["kind"].isin(kinds) & report.pairs["scope"].isin(scopes)]
    if only_conflicts:
        shown = shown[shown["conflicting_labels"]]
    st.dataframe(shown.drop(columns=["a", "b"]), width="stretch", hide_index=True, height=240)
    pages = max(1, -(-len(shown) // PAIRS_PER_PAGE))
    page = st.number_input(f"Pairs page (of {pages})", 1, pages, 1, key="pair_page")
    start = (int(page) - 1) * PAIRS_PER_PAGE
    for pair in shown.iloc[start : start + PAIRS_PER_PAGE].to_dict("records"):
        show_pair(pair)


with audit_tab:
    st.markdown(
        "Exact duplicates have identical pixels. Near-duplicates are the same slice re-encoded, "
        "re-windowed, shifted or rescaled. Test images with either kind of copy in the training "
        "part inflate test accuracy; the **duplicate-free test subset** leaves them out."
    )
    if audit_is_ready(dataset):
        show_audit()
    elif st.button("Run the audit", key="run_audit", type="primary"):
        audit_candidates(dataset)
        st.rerun()  # draw the results without the button, which has done its job
    else:
        st.caption("The audit decodes every image once and compares all pairs (under a minute).")
