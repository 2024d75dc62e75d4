"""Classify: upload scans or volumes, get class probabilities and a CAM overlay of where the
model looked; a volume is browsed slice by slice and can be classified slice by slice."""

import pandas as pd
import plotly.express as px
import streamlit as st

from core.imaging.reader import SUPPORTED_EXTENSIONS
from core.imaging.volumes.sources import VOLUME_EXTENSIONS
from core.inference.explain import (
    CLASS_AGNOSTIC,
    DEFAULT_CAM_METHOD,
    EXPLANATION_METHODS,
    METHOD_CAPTIONS,
    overlay,
)
from core.inspection.store import preferred_method
from core.runs.layout import RunError
from core.ui.classify import (
    best_run_index,
    decode_samples,
    decode_uploads,
    explain_slice,
    format_probability,
    load_predictor,
    method_sanity_note,
    predict_slices,
    sample_choices,
    show_upload_gallery,
    usable_runs,
)
from core.ui.classify_volume import show_volume
from core.ui.datasets import selected_dataset_dir
from core.ui.downloads import csv_download
from core.ui.images import displayable
from core.ui.training import RUN_QUERY_KEY

GALLERY_OPEN_UP_TO = 24  # more uploads than this start with the gallery folded

st.title("Classify")
st.caption("A research and teaching tool, not a medical device: predictions are not diagnoses.")

candidates = usable_runs()
if not candidates:
    st.info("No trained run yet: train a model on the Train page first.")
    st.page_link("app_pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

wanted = st.query_params.get(RUN_QUERY_KEY)  # ?run=RUN_ID: a link to this run
if wanted and wanted not in {choice.run_id for choice in candidates}:
    st.warning(f"No completed run {wanted!r} to classify with: showing the best one instead.")
run = st.selectbox(
    "Model (run)",
    candidates,
    index=best_run_index(candidates, wanted),
    format_func=lambda info: info.label,
    key="classify_run",
)
st.query_params[RUN_QUERY_KEY] = run.run_id  # the address names the run shown
try:
    predictor = load_predictor(run.run_id)
except RunError as error:  # a run whose files do not fit together: say so, let another be chosen
    st.error(f"This run cannot classify: {error}")
    st.stop()
uploads = st.file_uploader(
    "MRI slices (JPEG, PNG, BMP, TIFF or DICOM), or volumes: NIfTI (.nii, .nii.gz) or a zip of "
    "a DICOM series",
    type=sorted(extension.lstrip(".") for extension in {*SUPPORTED_EXTENSIONS, *VOLUME_EXTENSIONS}),
    accept_multiple_files=True,
    key="classify_uploads",
)
dataset_root = selected_dataset_dir()
samples = sample_choices(dataset_root)
picked: list[str] = []
if samples:
    picked = st.pills(
        "Or try samples: test images of the dataset, named by their true class",
        list(samples), selection_mode="multi", key="classify_samples",
    ) or []  # fmt: skip
if not uploads and not picked:
    st.stop()

sampled, true_classes = decode_samples(dataset_root, picked, samples)
uploaded, problems, copies, volumes = decode_uploads(uploads or [])
images = {**sampled, **uploaded}
labels: dict[str, str] = {}  # how an image is shown when not by its name: a volume's slice
if problems:
    st.error(f"{len(problems)} file(s) could not be read; the others are classified below.")
    st.dataframe(pd.DataFrame(problems), hide_index=True, width="stretch")
if copies:
    st.info(
        f"{len(copies)} upload(s) repeat an earlier file byte for byte and are shown once: "
        + ", ".join(f"{name} (= {first})" for name, first in copies)
    )
for volume_upload in volumes:  # each volume's slider slice joins the images, as one more image
    shown = show_volume(predictor, volume_upload)
    if shown is not None:
        labels[volume_upload.name], images[volume_upload.name] = shown
if not images:
    st.stop()

predictions = predict_slices(predictor, images)
if len(predictions) > 1:
    table = pd.DataFrame(
        [
            {
                "file": labels.get(name, name),
                "predicted": p.predicted,
                "confidence": p.confidence,
                **p.probabilities,
            }
            for name, p in predictions.items()
        ]
    )
    st.subheader(f"{len(predictions)} images")
    percent = st.column_config.NumberColumn(format="percent")
    st.dataframe(
        table, hide_index=True, width="stretch",
        column_config={name: percent for name in ["confidence", *predictor.classes]},
    )  # fmt: skip
    csv_download(
        "Download the results (CSV)", table, file_name="predictions.csv", key="classify_download"
    )
    with st.expander("Gallery: open any image", expanded=len(predictions) <= GALLERY_OPEN_UP_TO):
        show_upload_gallery(images, predictions, labels=labels)
chosen = st.selectbox(
    "Image",
    list(predictions),
    key="classify_image",
    format_func=lambda name: labels.get(name, name),
)
prediction, pixels, chosen_label = predictions[chosen], images[chosen], labels.get(chosen, chosen)

left, right = st.columns([3, 2])
with right:
    st.metric("Predicted class", prediction.predicted)
    st.caption(f"probability {format_probability(prediction.confidence)} (run `{run.run_id}`)")
    if chosen in true_classes:
        truth = true_classes[chosen]
        verdict = "right" if truth == prediction.predicted else "wrong"
        st.caption(
            f"True class (the dataset's folder): **{truth}**, so the prediction is {verdict}."
        )
    for warning in prediction.warnings:
        if warning.startswith("looks unlike"):
            # Measured as an error detector, this note flagged right predictions about as often
            # as wrong ones: shown as information, not as a reason to distrust the prediction.
            st.info(warning.capitalize() + ".", icon=":material/info:")
        else:
            st.warning(warning.capitalize() + ".")
    if prediction.calibrated_confidence is not None:
        st.caption(
            f"Calibrated confidence {prediction.calibrated_confidence:.0%}. A prediction is "
            "flagged when the model is less sure than on 95% of its validation images; under "
            "scanner-like shifts, the unflagged predictions were the reliable ones (right 98.6% "
            "or more of the time for the robust MobileNetV2 recipe, `python -m core warnings`)."
        )
    chart = px.bar(
        x=list(prediction.probabilities.values()),
        y=list(prediction.probabilities),
        text=[format_probability(value) for value in prediction.probabilities.values()],
        orientation="h",
        range_x=[0, 1.15],  # room for the label beside a bar at 100%
        labels={"x": "probability", "y": "class"},
    )
    chart.update_traces(textposition="outside", cliponaxis=False)
    chart.update_xaxes(tickformat=".0%", tickvals=[0, 0.25, 0.5, 0.75, 1])
    chart.update_layout(height=240, margin={"t": 10, "b": 10})
    st.plotly_chart(chart, width="stretch")
    # The run's own sanity checks choose the default method where they were measured.
    preferred = preferred_method(predictor.run_dir, DEFAULT_CAM_METHOD)
    method = st.selectbox(
        "Explanation method",
        list(EXPLANATION_METHODS),
        index=list(EXPLANATION_METHODS).index(preferred),
        key="classify_cam",
    )
    checked = method_sanity_note(predictor.run_dir, method)
    if checked is not None:
        note, trustworthy = checked
        if trustworthy:
            st.caption(note)
        else:
            st.warning(note)
    if method in CLASS_AGNOSTIC:
        target = "predicted"  # the map is the same for every class: nothing to choose
        st.caption("This method does not depend on the class: it shows the same map for all.")
    else:
        target = st.selectbox(
            "Explain the class",
            ["predicted", *predictor.classes],
            key=f"classify_target_{chosen}",  # per image: a new image starts at its prediction
        )
    opacity = st.slider("Overlay opacity", 0.0, 1.0, 0.45, 0.05, key="classify_opacity")
with left:
    # The prediction above already knows its class: no second forward pass to find it.
    shown_class = prediction.predicted if target == "predicted" else target
    target_class = predictor.classes.index(shown_class)
    explanation = explain_slice(predictor, pixels, method=method, target_class=target_class)
    shown = predictor.classes[explanation.target_class]
    image_column, overlay_column = st.columns(2)
    image_column.image(
        displayable(pixels), caption=chosen_label, width="stretch",
        alt=f"The scan {chosen_label}, classified as {prediction.predicted}",
    )  # fmt: skip
    overlay_column.image(
        displayable(overlay(pixels, explanation.cam, opacity)),
        caption=METHOD_CAPTIONS[method].format(cls=shown),
        width="stretch",
        alt=f"{chosen_label} with a heat map of the regions that drove the score for {shown}",
    )
    st.caption(
        "The map is a coarse grid stretched over the image: it shows the region that drove the "
        "score, never a tumour boundary, and may include context such as the ventricles."
    )
