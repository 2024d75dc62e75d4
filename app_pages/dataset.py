"""Dataset: counts, gallery, image statistics and the duplicate / leakage audit."""

import pandas as pd
import streamlit as st

from core.data import audit, scan_level, statistics
from core.imaging.pixels import ImageReadError
from core.imaging.reader import read_image
from core.ui import charts
from core.ui.datasets import (
    AUDIT_THRESHOLD_KEY,
    audit_candidates,
    audit_is_ready,
    audit_threshold,
    choose_dataset_dir,
    dataset_images,
    intensity_histograms,
    pair_page_ui,
    reset_dataset_choice,
    scan_subset_counts,
    selected_dataset_dir,
)
from core.ui.downloads import csv_download
from core.ui.images import displayable
from core.ui.serving import dataset_folder_ui, withheld
from core.ui.sidebar import page_dataset
from core.ui.wording import counted

THUMBNAIL_SIZE = 128
PAIRS_PER_PAGE = 6
PAIRS_PER_ROW = 2
PAIR_THUMBNAIL_WIDTH = 180  # two pairs of these fit a row of a laptop's window
COPIES_SHOWN = 9
COPIES_PER_ROW = 3
BORDERLINE_FIRST = "borderline first"
CLOSEST_FIRST = "closest first"

st.title("Dataset")

with st.expander("Use another dataset folder", expanded=False):
    st.caption(
        "Kaggle layout (`Training/<class>/`, `Testing/<class>/`, optional `Validation/`) "
        "or one folder per class. The folder is only read, never changed."
    )
    typed = dataset_folder_ui(selected_dataset_dir())
    use_column, reset_column = st.columns(2)
    if use_column.button("Use this folder", key="use_dataset", type="primary"):
        problem = choose_dataset_dir(typed)
        if problem:
            st.error(f"Cannot use this folder: {problem}")
        else:
            st.rerun()
    if reset_column.button("Back to the default dataset", key="reset_dataset"):
        reset_dataset_choice()
        st.rerun()

dataset = page_dataset()
st.caption(f"`{dataset.root}` · {dataset.layout} layout · {counted(len(dataset.frame), 'image')}")


def show_copies(position: int) -> None:
    """The exact and near copies of one image at the audit's threshold, or why none show."""
    st.markdown("**Copies of this image**")
    if not audit_is_ready(dataset):
        st.caption("Run the audit (the *Duplicates and leakage* tab) to see this image's copies.")
        return
    threshold = audit_threshold()
    report = audit.build_report(dataset, audit_candidates(dataset), threshold)
    copies = audit.copies_of(report, position)
    if copies.empty:
        st.caption(f"No copies found: no exact or near copy at the threshold {threshold:.3f}.")
        return
    label = dataset.frame["label"].iloc[position]
    st.caption(
        f"{counted(len(copies), 'copy', 'copies')} at the threshold "
        f"{threshold:.3f}, closest first"
        + (f" (the first {COPIES_SHOWN} shown)." if len(copies) > COPIES_SHOWN else ".")
    )
    thumbnails = dataset_images(dataset, THUMBNAIL_SIZE)
    grid = st.columns(COPIES_PER_ROW)
    for slot, copy in enumerate(copies.head(COPIES_SHOWN).itertuples(index=False)):
        with grid[slot % COPIES_PER_ROW]:
            st.image(
                thumbnails[copy.position], width="stretch",
                alt=f"{copy.kind} copy {copy.path} ({copy.label}, {copy.split})",
            )  # fmt: skip
            other_class = " · :red[other class]" if copy.label != label else ""
            st.caption(
                f"**{copy.kind}** · distance {copy.distance:.4f} · {copy.split} · "
                f"{copy.label}{other_class}  \n{copy.path}"
            )


@st.dialog("Image", width="large")
def show_full_image(position: int) -> None:
    """One image at full size with its facts and its copies."""
    row = dataset.frame.iloc[position]
    # Side by side, so the copies show without scrolling past a window-high image.
    image_column, facts_column = st.columns([3, 2])
    with image_column:
        try:
            st.image(
                displayable(read_image(dataset.root / row["path"]).pixels), width="stretch",
                alt=f"{row['path']} ({row['label']}, {row['split']})",
            )  # fmt: skip
        except ImageReadError as error:
            st.error(str(error))
    with facts_column:
        st.markdown(f"**{row['path']}**")
        st.caption(
            f"class {row['label']} · {row['split']} split · {row['width']} x {row['height']} px · "
            f"{row['format']} {row['mode']} · {row['file_bytes'] / 1024:.1f} KB"
        )
        show_copies(position)


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
        with st.expander(f"{counted(len(dataset.skipped), 'file')} skipped"):
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
            st.image(
                thumbnails[position], caption=row["label"], width="stretch",
                alt=f"{row['label']} image {row['path']}",
            )  # fmt: skip
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
    """Two duplicate candidates as thumbnails side by side, read from their original files;
    Enlarge opens one at full size with its facts and copies."""
    with st.container(border=True):
        st.markdown(
            f"**{pair['kind']}** · distance {pair['distance']:.4f} · {pair['scope']}"
            + (" · :red[conflicting labels]" if pair["conflicting_labels"] else "")
        )
        for column, side in zip(st.columns(2), ("a", "b"), strict=True):
            with column:
                try:
                    pixels = read_image(dataset.root / pair[f"{side}_path"]).pixels
                    st.image(
                        displayable(pixels), width=PAIR_THUMBNAIL_WIDTH,
                        alt=f"{pair[f'{side}_path']} ({pair[f'{side}_label']})",
                    )  # fmt: skip
                except ImageReadError as error:
                    st.error(str(error))
                st.caption(
                    f"{pair[f'{side}_path']} ({pair[f'{side}_label']}, {pair[f'{side}_split']})"
                )
                enlarge_key = f"enlarge_{pair['a']}_{pair['b']}_{side}"
                if st.button("Enlarge", key=enlarge_key, icon=":material/zoom_in:"):
                    show_full_image(int(pair[side]))


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
        key=AUDIT_THRESHOLD_KEY,
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
    pair_noun = "pair" if summary["exact_pairs"] + summary["near_pairs"] == 1 else "pairs"
    st.caption(
        f"{summary['exact_pairs']} exact and {summary['near_pairs']} near {pair_noun} in all; "
        f"within splits: {within_splits}. Method: {summary['method']}."
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
    show_pairs(report)


def show_pairs(report: audit.AuditReport) -> None:
    """The pairs chosen by kind, scope and conflict, in the chosen order, one page at a time:
    the page's table, then its pairs as thumbnails."""
    kind_column, scope_column, order_column = st.columns(3)
    kinds = kind_column.multiselect("Kind", ["exact", "near"], ["exact", "near"], key="pair_kinds")
    scopes = scope_column.multiselect(
        "Scope", ["cross-split", "within split"], ["cross-split"], key="pair_scopes"
    )
    order = order_column.radio(
        "Order",
        [BORDERLINE_FIRST, CLOSEST_FIRST],
        horizontal=True,
        key="pair_order",
        help="Borderline first: the largest distances under the threshold lead, the pairs most "
        "worth a look (exact pairs come last). Closest first: exact pairs, then the nearest.",
    )
    only_conflicts = order_column.checkbox("Only conflicting labels", key="pair_conflicts")
    shown = report.pairs[report.pairs["kind"].isin(kinds) & report.pairs["scope"].isin(scopes)]
    if only_conflicts:
        shown = shown[shown["conflicting_labels"]]
    if shown.empty:
        st.info("No pairs of these kinds and scopes at this threshold.")
        return
    shown = audit.order_pairs(shown, borderline_first=order == BORDERLINE_FIRST)
    # What is listed: a change of any of it starts the pager again at the first page.
    listing = (
        dataset.fingerprint,
        report.threshold,
        tuple(kinds),
        tuple(scopes),
        only_conflicts,
        order,
    )
    page = shown.iloc[pair_page_ui(len(shown), PAIRS_PER_PAGE, listing)]
    st.dataframe(page.drop(columns=["a", "b"]), width="stretch", hide_index=True)
    st.caption("The pairs of this page; *Download all pairs* has every pair at this threshold.")
    for row_start in range(0, len(page), PAIRS_PER_ROW):
        row_pairs = page.iloc[row_start : row_start + PAIRS_PER_ROW].to_dict("records")
        for column, pair in zip(st.columns(PAIRS_PER_ROW), row_pairs, strict=False):
            with column:
                show_pair(pair)


with audit_tab:
    st.markdown(
        "Exact duplicates have identical pixels. Near-duplicates are the same slice re-encoded, "
        "re-windowed, shifted or rescaled. Test images with either kind of copy in the training "
        "part inflate test accuracy; the **duplicate-free test subset** leaves them out."
    )
    if audit_is_ready(dataset):
        show_audit()
    elif not withheld("running the audit"):
        if st.button("Run the audit", key="run_audit", type="primary"):
            audit_candidates(dataset)
            st.rerun()  # draw the results without the button, which has done its job
        st.caption("The audit decodes every image once and compares all pairs (under a minute).")
