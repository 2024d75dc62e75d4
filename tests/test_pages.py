"""Home and the Dataset page under Streamlit's AppTest, on the synthetic demo dataset."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import paths
from core.inspection.store import preferred_method
from core.runs.registry import resolve_run
from core.ui.memo import shared_memo
from tests.conftest import PROJECT_ROOT, TIMEOUT
from tests.test_data import make_kaggle


def markdown_text(at: AppTest) -> str:
    return "\n".join(str(element.value) for element in at.markdown)


def test_home_shows_the_demo_dataset_as_synthetic(app: AppTest) -> None:
    app.run()
    assert not app.exception
    assert any("synthetic demo dataset" in warning.value for warning in app.warning)
    assert "300 images in 4 classes" in markdown_text(app)  # the first workflow step
    assert "synthetic demo" in markdown_text(app)  # the sidebar badge


def test_dataset_page_overview_gallery_and_statistics(app: AppTest) -> None:
    app.run()
    app.switch_page("app_pages/dataset.py").run()
    assert not app.exception
    counts = app.dataframe[0].value
    assert counts.loc["glioma", "train"] == 60 and counts.loc["total", "test"] == 60
    assert any("balanced" in info.value for info in app.info)
    open_buttons = [button for button in app.button if button.label == "Open"]
    assert len(open_buttons) == 24
    app.selectbox(key="gallery_class").select("pituitary").run()
    assert not app.exception
    captions = _image_captions(app, tab=1)  # the gallery tab
    assert len(captions) == 24 and set(captions) == {"pituitary"}


def _image_captions(app: AppTest, tab: int | None = None) -> list[str]:
    """Captions of the images on the page, or in one tab of it."""
    where = app if tab is None else app.tabs[tab]
    return [element.proto.imgs[0].caption for element in where.get("image")]


def test_audit_finds_the_planted_leaks_and_reacts_to_the_threshold(
    app: AppTest, demo_dataset_dir: Path
) -> None:
    planted = json.loads((demo_dataset_dir / "SYNTHETIC_DEMO.json").read_text())["planted"]
    app.run()
    app.switch_page("app_pages/dataset.py").run()
    if any(button.key == "run_audit" for button in app.button):
        app.button(key="run_audit").click().run()
    assert not any(button.key == "run_audit" for button in app.button)  # results replace it
    assert not app.exception
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Exact copy in training"] == str(len(planted["exact_cross_split"]))
    assert metrics["Near copy in training"] == str(len(planted["near_cross_split"]))
    assert metrics["Conflicting-label pairs"] == str(len(planted["conflicting_labels"]))
    app.slider(key="audit_threshold").set_value(0.0).run()
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Near copy in training"] == "0"
    assert not app.exception


def test_typing_a_folder_validates_it(app: AppTest, tmp_path: Path) -> None:
    app.run()
    app.switch_page("app_pages/dataset.py").run()
    app.text_input(key="dataset_path").input(str(tmp_path / "nowhere"))
    app.button(key="use_dataset").click().run()
    assert any("no such folder" in error.value for error in app.error)
    other = make_kaggle(tmp_path / "other", per_class=3, classes=("cats", "dogs"))
    app.text_input(key="dataset_path").input(str(other))
    app.button(key="use_dataset").click().run()
    assert not app.exception
    assert app.dataframe[0].value.loc["cats", "train"] == 3
    assert not any("synthetic demo dataset" in warning.value for warning in app.warning)


def test_open_shows_one_image_at_full_size(app: AppTest) -> None:
    app.run()
    app.switch_page("app_pages/dataset.py").run()
    first_open = next(button for button in app.button if button.label == "Open")
    first_open.click().run()
    assert not app.exception
    captions = [str(element.value) for element in app.caption]
    assert any("px" in caption and "split" in caption for caption in captions)


@pytest.mark.real_data
@pytest.mark.slow
def test_real_dataset_home_and_audit(
    real_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(real_dataset_dir))
    shared_memo.clear()
    app = AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=TIMEOUT).run()
    assert not app.exception
    assert "7,019 images in 4 classes" in markdown_text(app)
    assert not any("synthetic demo dataset" in warning.value for warning in app.warning)
    app.switch_page("app_pages/dataset.py").run()
    if any(button.key == "run_audit" for button in app.button):
        app.button(key="run_audit").click().run()
    assert not any(button.key == "run_audit" for button in app.button)  # results replace it
    assert not app.exception
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Test images"] == "1311"
    leaked = int(metrics["Exact copy in training"]) + int(metrics["Near copy in training"])
    assert leaked + int(metrics["Duplicate-free test images"]) == 1311
    assert int(metrics["Exact copy in training"]) > 150


def test_train_page_launches_a_tiny_job_and_shows_its_progress(app: AppTest) -> None:
    from core.ui.training import job_manager

    app.run()
    app.switch_page("app_pages/train.py").run()
    assert not app.exception
    app.selectbox(key="train_model").select("cnn_fast").run()
    app.radio(key="train_recipe_cnn_fast").set_value("custom").run()
    app.number_input(key="train_epochs_cnn_fast_custom").set_value(2)
    app.select_slider(key="train_image_size_cnn_fast_custom").set_value(64)
    app.number_input(key="train_subset").set_value(20)
    start = next(button for button in app.button if button.label == "Start training")
    start.click().run()
    assert not app.exception
    run_id = app.query_params["run"]
    run_id = run_id[0] if isinstance(run_id, list) else run_id
    job = job_manager().get(run_id)
    assert job is not None
    seen_progress = False
    for _ in range(600):  # fragment timers do not fire under AppTest: poll with reruns
        app.run()
        texts = [element.proto.text for element in app.get("progress")]
        seen_progress |= any("Epoch" in text or "Preparing" in text for text in texts)
        if not job.snapshot().active:
            break
        time.sleep(0.1)
    app.run()
    assert not app.exception
    assert job.snapshot().state == "completed", job.snapshot().error
    assert seen_progress
    metrics = {metric.label: metric.value for metric in app.metric}
    assert "Validation accuracy" in metrics and metrics["Best epoch"].endswith("of 2")


def test_train_page_estimates_time_per_epoch_before_launch(app: AppTest) -> None:
    app.run()
    app.switch_page("app_pages/train.py").run()
    app.selectbox(key="train_model").select("cnn_fast").run()
    app.radio(key="train_recipe_cnn_fast").set_value("custom").run()
    app.select_slider(key="train_image_size_cnn_fast_custom").set_value(64)
    app.number_input(key="train_subset").set_value(20)
    estimate = next(button for button in app.button if button.label == "Estimate time per epoch")
    estimate.click().run()
    assert not app.exception
    messages = [success.value for success in app.success]
    assert any("per epoch" in message and "images/s" in message for message in messages), messages
    assert "run" not in app.query_params  # estimating launches nothing


def test_classify_page_with_good_bad_and_dicom_uploads(
    app: AppTest, demo_dataset_dir: Path
) -> None:
    from pydicom.data import get_testdata_file

    from core.training.fit import fit
    from tests.test_imaging import multiframe_dicom
    from tests.test_training import tiny_request

    fit(tiny_request(demo_dataset_dir, epochs=1))
    png = sorted((demo_dataset_dir / "Testing" / "pituitary").glob("*.png"))[0]
    app.run()
    app.switch_page("app_pages/classify.py").run()
    assert not app.exception
    uploads = [
        ("slice.png", png.read_bytes(), "image/png"),
        ("notes.png", b"this is text, not a picture", "image/png"),
        ("mr.dcm", Path(get_testdata_file("MR_small.dcm")).read_bytes(), "application/dicom"),
        ("stack.dcm", multiframe_dicom(2), "application/dicom"),
    ]
    app.get("file_uploader")[0].set_value(uploads).run()
    assert not app.exception
    assert any("could not be read" in error.value for error in app.error)
    problems = app.dataframe[0].value
    assert list(problems["file"]) == ["notes.png"]
    results = app.dataframe[1].value
    assert list(results["file"]) == ["slice.png", "mr.dcm", "stack.dcm [1/2]", "stack.dcm [2/2]"]
    assert (
        results[["glioma", "meningioma", "notumor", "pituitary"]].sum(axis=1).round(4).eq(1).all()
    )
    assert {metric.label for metric in app.metric} == {"Predicted class"}
    # The default method: the one the run's stored sanity checks favour, else HiResCAM (other
    # tests of this session may have measured the run that is chosen here).
    run_dir = resolve_run(app.selectbox(key="classify_run").value.run_id).path
    assert app.selectbox(key="classify_cam").value == preferred_method(run_dir, "hirescam")
    app.button(key="classify_open_mr.dcm").click().run()  # the gallery opens an image
    assert app.selectbox(key="classify_image").value == "mr.dcm"
    app.selectbox(key="classify_image").select("stack.dcm [2/2]").run()
    app.selectbox(key="classify_cam").select("gradcam").run()
    app.selectbox(key="classify_target_stack.dcm [2/2]").select("notumor").run()
    assert not app.exception
    captions = [element.proto.imgs[0].caption for element in app.get("image")]
    assert any(c.startswith("Grad-CAM:") and "'notumor'" in c for c in captions), captions
    # A new image starts at its own predicted class, not the class chosen for the last one.
    app.selectbox(key="classify_image").select("mr.dcm").run()
    assert app.selectbox(key="classify_target_mr.dcm").value == "predicted"


def test_classify_page_rejects_empty_and_bomb_uploads_without_crashing(
    app: AppTest, demo_dataset_dir: Path
) -> None:
    from core.training.fit import fit
    from tests.test_imaging import _bomb_png
    from tests.test_training import tiny_request

    fit(tiny_request(demo_dataset_dir, epochs=1))
    bomb = _bomb_png(40_000, 40_000)  # a tiny PNG declaring 1.6 billion pixels
    png = sorted((demo_dataset_dir / "Testing" / "glioma").glob("*.png"))[0]
    app.run()
    app.switch_page("app_pages/classify.py").run()
    uploads = [
        ("empty.jpg", b"", "image/jpeg"),
        ("bomb.png", bomb, "image/png"),
        ("fine.png", png.read_bytes(), "image/png"),
    ]
    app.get("file_uploader")[0].set_value(uploads).run()
    assert not app.exception
    problems = app.dataframe[0].value.set_index("file")["problem"]
    assert "empty" in problems["empty.jpg"]
    assert "pixels" in problems["bomb.png"] or "large" in problems["bomb.png"]
    assert {metric.label for metric in app.metric} == {"Predicted class"}


def test_train_page_with_an_unknown_run_says_so_and_offers_to_close_it(app: AppTest) -> None:
    app.run()
    app.switch_page("app_pages/train.py")
    app.query_params["run"] = "20990101T000000Z_nope_000000"
    app.run()
    assert not app.exception, app.exception
    assert any("20990101T000000Z_nope_000000" in error.value for error in app.error)
    assert app.button(key="detach").label == "Close"  # nothing is going on to detach from
    app.button(key="detach").click().run()
    assert "run" not in app.query_params
