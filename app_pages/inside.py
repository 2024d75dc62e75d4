"""Inside: what the layers learn. Filters, feature maps, layer probes, the embedding projector
and whether the CAM explanations are faithful, for one run or two side by side."""

import streamlit as st

from core.evaluation.run_selection import run_labels
from core.runs.registry import list_runs
from core.ui.inside import (
    choose_image,
    show_embedding,
    show_feature_maps,
    show_filters,
    show_probes,
    show_sanity,
)
from core.ui.training import RUN_QUERY_KEY  # ?run=A&run=B: these runs side by side

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
linked = [run_id for run_id in st.query_params.get_all(RUN_QUERY_KEY) if run_id in by_id][:2]
unknown = [run_id for run_id in st.query_params.get_all(RUN_QUERY_KEY) if run_id not in by_id]
if unknown:
    st.warning(f"No completed run {unknown[0]!r}: choose one below.")
chosen = st.multiselect(
    "Runs (one, or two side by side)", list(by_id), default=linked or list(by_id)[:1],
    max_selections=2, format_func=labels.get, key="inside_runs",
)  # fmt: skip
if not chosen:
    st.info("Choose a run.")
    st.stop()
runs = [by_id[run_id] for run_id in chosen]

st.subheader("First-layer filters")
show_filters(runs, labels)

st.subheader("Feature maps of one image")
picked = choose_image(runs[0])
if picked is not None:
    for info in runs:
        if len(runs) > 1:
            st.markdown(f"**{labels[info.run_id]}**")
        show_feature_maps(info, picked[1])

st.subheader("Layer probes: where do the classes separate?")
show_probes(runs, labels)

st.subheader("Embedding projector")
show_embedding(runs[0], labels)

st.subheader("Are the explanations faithful?")
show_sanity(runs[0])
