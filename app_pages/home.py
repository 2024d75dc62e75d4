"""Home: what the workbench does and the dataset in use."""

import streamlit as st

from core.ui.datasets import current_dataset
from core.ui.sidebar import synthetic_notice

st.title("Brain Tumor Workbench")
st.markdown(
    "Classify brain MRI slices (glioma, meningioma, pituitary tumour, no tumour) and find out "
    "how well, and why, a model does it: audit the dataset for leakage, train custom CNNs and "
    "transfer-learning models, compare runs honestly, and see where a model looks."
)

dataset = current_dataset()
if dataset is not None:
    if dataset.synthetic:
        synthetic_notice(dataset)
    counts = dataset.counts()
    columns = st.columns(len(counts) + 2)
    columns[0].metric("Images", f"{len(dataset.frame):,}")
    columns[1].metric("Classes", len(dataset.classes))
    for column, (split, per_class) in zip(columns[2:], counts.items(), strict=True):
        column.metric(f"{split} split", f"{sum(per_class.values()):,}")
    st.caption(f"Dataset: `{dataset.root}` ({dataset.layout} layout)")

st.page_link(
    "app_pages/dataset.py", label="Browse and audit the dataset", icon=":material/photo_library:"
)
