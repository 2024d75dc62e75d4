"""Inside: what the layers learn. Filters, feature maps, layer probes, the embedding projector
and whether the CAM explanations are faithful, for one run or two side by side."""

import streamlit as st

from core.evaluation.run_selection import run_labels
from core.imaging.pixels import ImageReadError
from core.imaging.reader import read_slices
from core.runs.registry import list_runs
from core.ui.inside import show_embedding, show_feature_maps, show_filters, show_probes, show_sanity

st.title("Inside the model")
st.caption(
    "What a network trained from scratch learns compared with a pretrained one: the first "
    "layer's filters, each stage's feature maps, how early the classes separate, and whether "
    "the heat maps on Classify depend on the model at all."
)
infos = [info for info in list_runs() if info.usable]
if not infos:
    st.info("No trained run yet: train a model on the Train page first.")
    st.page_link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()
labels = run_labels(infos)
by_id = {info.run_id: info for info in infos}
chosen = st.multiselect(
    "Runs (one, or two side by side)", list(by_id), default=list(by_id)[:1], max_selections=2,
    format_func=labels.get, key="inside_runs",
)  # fmt: skip
if not chosen:
    st.info("Choose a run.")
    st.stop()
runs = [by_id[run_id] for run_id in chosen]

st.subheader("First-layer filters")
show_filters(runs, labels)

st.subheader("Feature maps of one image")
upload = st.file_uploader("An MRI slice", key="inside_image")
if upload is not None:
    try:
        _, pixels = read_slices(upload.getvalue(), name=upload.name)[0]
    except ImageReadError as error:
        st.error(f"{upload.name} cannot be read: {error.reason}")
    else:
        show_feature_maps(runs[0], pixels)
else:
    st.caption("Upload a slice to see the most active channels of every stage.")

st.subheader("Layer probes: where do the classes separate?")
show_probes(runs, labels)

st.subheader("Embedding projector")
show_embedding(runs[0], labels)

st.subheader("Are the explanations faithful?")
show_sanity(runs[0])
