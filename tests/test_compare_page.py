"""The Compare page under Streamlit's AppTest: tiny real runs, an interrupted and damaged ones."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from core import paths
from core.config import augmentation
from core.evaluation.comparison import misclassified
from core.evaluation.evaluate import evaluate_run, stored_evaluation
from core.evaluation.stress import stored_stress
from core.imaging.shifts import SHIFTS
from core.runs.registry import load_run
from core.runs.writer import RunWriter
from core.training.fit import fit
from core.ui.compare_gallery import GALLERY_LIMIT, gallery_items
from core.ui.memo import shared_memo
from core.ui.run_management import confirm_key, name_key, tags_key
from tests.test_external import make_external_folder
from tests.test_pages import PROJECT_ROOT, TIMEOUT
from tests.test_runs import dead_pid, write_status
from tests.test_training import tiny_request

PAGE = "app_pages/compare.py"
FLIP_ONLY = augmentation(["flip"])


@dataclass(frozen=True)
class Runs:
    """The run ids of the fixture, by what they are."""

    first: str
    second: str
    interrupted: str
    damaged_config: str
    no_weights: str


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A checkpoints folder of this module's own, so the page lists only the runs made here."""
    folder = tmp_path_factory.mktemp("compare-checkpoints")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(paths.CHECKPOINTS_ENV, str(folder))
        yield folder


@pytest.fixture(scope="module")
def made(checkpoints: Path, demo_dataset_dir: Path) -> Runs:
    """Two evaluated runs that disagree, one interrupted and two damaged runs."""
    first = fit(tiny_request(demo_dataset_dir, epochs=1)).run_id
    second_request = tiny_request(demo_dataset_dir, epochs=2, seed=1, lr=1e-2, augment=FLIP_ONLY)
    second = fit(second_request).run_id
    for run_id in (first, second):
        evaluate_run(run_id, bootstrap_samples=200)
    config = load_run(first).config.to_json()

    interrupted = RunWriter.create(config, model_name="cnn_fast")
    interrupted.set_status("running")
    interrupted.append_history(load_run(first).history[0].to_json())
    write_status(interrupted, pid=dead_pid())

    damaged_config = RunWriter.create(config, model_name="cnn_fast")
    (damaged_config.path / "config.json").write_text("{not json")
    no_weights = RunWriter.create(config, model_name="cnn_fast")
    no_weights.set_status("completed")
    return Runs(first, second, interrupted.run_id, damaged_config.run_id, no_weights.run_id)


@pytest.fixture
def app(demo_dataset_dir: Path, made: Runs, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(demo_dataset_dir))
    shared_memo.clear()
    at = AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=TIMEOUT)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception
    return at


def runs_table(at: AppTest) -> pd.DataFrame:
    return at.dataframe[0].value.set_index("run")


def frame_with(at: AppTest, column: str) -> pd.DataFrame:
    """The first dataframe on the page with this column."""
    return next(frame.value for frame in at.dataframe if column in frame.value.columns)


def chart_count(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


def test_table_lists_every_run_with_its_status(app: AppTest, made: Runs) -> None:
    table = runs_table(app)
    assert set(table.index) == {
        made.first,
        made.second,
        made.interrupted,
        made.damaged_config,
        made.no_weights,
    }
    assert table.loc[made.first, "status"] == "completed"
    assert table.loc[made.second, "status"] == "completed"
    assert table.loc[made.interrupted, "status"] == "interrupted"
    assert table.loc[made.damaged_config, "status"] == "damaged"
    assert table.loc[made.no_weights, "status"] == "damaged"
    assert table.loc[made.first, "test_low"] <= table.loc[made.first, "test_accuracy"]
    assert table.loc[made.second, "duplicate_free_test_accuracy"] > 0
    assert table.loc[made.second, "epochs"] == 2
    assert table.loc[made.first, "augmentation"] == "flip+geometry+intensity"
    assert table.loc[made.second, "augmentation"] == "flip"
    assert pd.isna(table.loc[made.damaged_config, "augmentation"])
    assert not any(button.key == "compare_evaluate" for button in app.button)
    assert set(app.multiselect(key="compare_runs").value) == {made.first, made.second}
    assert any("Runs with problems" in expander.label for expander in app.expander)
    app.multiselect(key="compare_filter_status").set_value(["damaged"]).run()
    assert set(runs_table(app).index) == {made.damaged_config, made.no_weights}


def test_the_runs_table_leads_with_the_scores(app: AppTest, made: Runs) -> None:
    shown = list(app.dataframe[0].proto.column_order)
    assert shown[:4] == ["name", "model", "status", "test_accuracy"]
    configuration = shown.index("augmentation")
    assert all(shown.index(score) < configuration for score in (
        "duplicate_free_test_accuracy", "unseen_scan_test_accuracy", "best_val_accuracy",
    ))  # fmt: skip


def test_two_evaluated_runs_show_charts_and_details(app: AppTest, made: Runs) -> None:
    app.multiselect(key="compare_runs").set_value([made.first, made.second]).run()
    assert not app.exception
    # 2 curves, split bars, 2 confusion matrices, ROC, reliability, accuracy against time, and
    # the overfitting view of one run
    assert chart_count(app) == 9
    assert app.selectbox(key="compare_overfitting_run").value is not None
    assert any(metric.label == "train (best epoch)" for metric in app.metric)
    per_class = frame_with(app, "specificity")
    assert len(per_class) == 2 * 4 and per_class["run"].nunique() == 2
    assert per_class[["precision", "recall", "f1"]].notna().all().all()
    calibration = frame_with(app, "ECE after scaling")
    scaled = ["temperature", "ECE before scaling", "ECE after scaling", "NLL after scaling"]
    assert calibration[scaled].notna().all().all() and len(calibration) == 2
    mcnemar = frame_with(app, "p-value")
    assert list(mcnemar["split"]) == ["official test", "duplicate-free test", "unseen-scan test"]
    assert (mcnemar["images"] == 60).iloc[0]
    assert any("McNemar" in str(markdown.value) for markdown in app.markdown)
    captions = [image.proto.imgs[0].caption for image in app.get("image")]
    assert sum("→" in caption for caption in captions) == GALLERY_LIMIT  # one run's mistakes
    assert any("B said" in caption for caption in captions)  # A right, B wrong
    first = load_run(made.first)
    items = gallery_items(first, misclassified(first, "test"), str, with_cam=True)
    assert all(item.pixels.ndim == 3 for item in items)  # CAM overlays (RGB), not grey scans

    counts = json.loads(app.get("plotly_chart")[3].proto.spec)["data"][0]["text"]
    app.toggle(key="compare_normalise").set_value(True).run()
    shares = json.loads(app.get("plotly_chart")[3].proto.spec)["data"][0]["text"]
    assert "%" not in str(counts) and "%" in str(shares)
    app.segmented_control(key="compare_split").set_value("val").run()
    assert not app.exception
    assert frame_with(app, "specificity")["support"].sum() == 2 * 28


def test_an_unevaluated_run_shows_its_curves_only(app: AppTest, made: Runs) -> None:
    app.multiselect(key="compare_runs").set_value([made.interrupted]).run()
    assert not app.exception
    # its curves, the accuracy-against-time chart and its overfitting view
    assert chart_count(app) == 2 + 1 + 1
    assert any("None of the selected runs is evaluated" in info.value for info in app.info)


def test_rename_and_tags_change_the_table(app: AppTest, made: Runs) -> None:
    app.selectbox(key="manage_run").set_value(made.second).run()
    app.text_input(key=name_key(made.second)).input("Wide lr")
    app.button(key="manage_rename").click().run()
    app.text_input(key=tags_key(made.second)).input("fast, small ,fast")
    app.button(key="manage_tags").click().run()
    assert not app.exception
    table = runs_table(app)
    assert table.loc[made.second, "name"] == "Wide lr"
    assert table.loc[made.second, "tags"] == "fast, small"
    app.multiselect(key="compare_filter_tag").set_value(["small"]).run()
    assert list(runs_table(app).index) == [made.second]
    app.text_input(key=name_key(made.second)).input("   ")
    app.button(key="manage_rename").click().run()
    assert any("run name must be" in error.value for error in app.error)
    assert load_run(made.second).name == "Wide lr"


def test_delete_asks_for_confirmation_and_refuses_a_running_run(app: AppTest, made: Runs) -> None:
    doomed = RunWriter.create(load_run(made.first).config.to_json(), model_name="cnn_fast")
    doomed.set_status("cancelled")
    live = RunWriter.create(load_run(made.first).config.to_json(), model_name="cnn_fast")
    live.set_status("running")  # this process, with a fresh heartbeat: really running
    app.run()
    app.selectbox(key="manage_run").set_value(doomed.run_id).run()
    app.button(key="manage_delete").click().run()
    assert any("confirmation" in warning.value for warning in app.warning)
    assert doomed.path.is_dir() and doomed.run_id in runs_table(app).index
    app.checkbox(key=confirm_key(doomed.run_id)).check()
    app.button(key="manage_delete").click().run()
    assert not app.exception
    assert not doomed.path.exists() and doomed.run_id not in runs_table(app).index

    app.selectbox(key="manage_run").set_value(live.run_id).run()
    app.checkbox(key=confirm_key(live.run_id)).check()
    app.button(key="manage_delete").click().run()
    assert any("cancel it before deleting" in error.value for error in app.error)
    assert live.path.is_dir()
    shutil.rmtree(live.path)


def test_evaluate_button_evaluates_and_reports_a_failure(
    app: AppTest, made: Runs, demo_dataset_dir: Path, tmp_path: Path
) -> None:
    fresh = fit(tiny_request(demo_dataset_dir, epochs=1, seed=2)).run_id
    moved_config = load_run(made.first).config.to_json()
    moved_config["data"]["root"] = str(tmp_path / "gone")
    moved = RunWriter.create(moved_config, model_name="cnn_fast")
    shutil.copy(load_run(made.first).path / "model.safetensors", moved.path)
    moved.set_status("completed")
    app.run()
    button = app.button(key="compare_evaluate")
    assert button.label == "Evaluate 2 runs"
    button.click().run()
    assert not app.exception
    assert stored_evaluation(load_run(fresh)) is not None
    assert runs_table(app).loc[fresh, "test_accuracy"] > 0
    assert any("Evaluated 1 run" in success.value for success in app.success)
    assert any(
        "Could not evaluate" in error.value and "not on this machine" in error.value
        for error in app.error
    )
    assert app.button(key="compare_evaluate").label == "Evaluate 1 run"  # only the moved one
    shutil.rmtree(moved.path)


def test_no_runs_points_to_the_train_page(
    demo_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(demo_dataset_dir))
    monkeypatch.setenv(paths.CHECKPOINTS_ENV, str(tmp_path / "empty"))
    shared_memo.clear()
    at = AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=TIMEOUT).run()
    at.switch_page(PAGE).run()
    assert not at.exception
    assert any("No training run yet" in info.value for info in at.info)
    links = [element.proto.page for element in at.get("page_link")]
    assert links == ["train"]


def test_the_stress_button_tests_the_selected_runs_and_draws_their_curves(
    app: AppTest, made: Runs
) -> None:
    # Last in this module: the stress results it stores add a chart to the page.
    app.multiselect(key="compare_runs").set_value([made.first, made.second]).run()
    charts_before = chart_count(app)
    app.button(key="compare_stress").click().run()
    assert not app.exception
    for run_id in (made.first, made.second):
        record = stored_stress(load_run(run_id))
        assert record is not None and set(record.shifts) == set(SHIFTS)
    assert chart_count(app) == charts_before + 1
    stress_spec = next(
        json.loads(chart.proto.spec)
        for chart in app.get("plotly_chart")
        if "rotation" in str(json.loads(chart.proto.spec).get("layout", {}).get("annotations"))
    )
    assert len(stress_spec["data"]) == 2 * len(SHIFTS)  # a line per run and shift
    assert not [button for button in app.button if button.key == "compare_stress"]
    # The runs table shows each run's worst moderate shift beside its same-source scores.
    from core.evaluation.stress import moderate_shift_accuracies

    table = runs_table(app)
    for run_id in (made.first, made.second):
        worst = min(moderate_shift_accuracies(load_run(run_id)).values())
        assert table.loc[run_id, "stress_worst_accuracy"] == pytest.approx(worst)
    assert pd.isna(table.loc[made.interrupted, "stress_worst_accuracy"])
    shown = list(app.dataframe[0].proto.column_order)
    assert shown.index("stress_worst_accuracy") < shown.index("augmentation")


def test_an_external_folder_is_scored_from_the_page_and_shown_as_a_split(
    app: AppTest, made: Runs, demo_dataset_dir: Path, tmp_path: Path
) -> None:
    folder = make_external_folder(demo_dataset_dir, tmp_path)
    app.multiselect(key="compare_runs").set_value([made.first, made.second]).run()
    app.text_input(key="compare_external_folder").input(str(folder))
    # Inside a form: values are sent with the submit click, not by a rerun of their own.
    app.text_input(key="compare_external_map").input("pit pituitary")
    submit = next(b for b in app.button if b.label.startswith("Score 2 selected"))
    submit.click().run()
    assert any("is not FOLDER_CLASS=RUN_CLASS" in error.value for error in app.error)
    app.text_input(key="compare_external_name").input("site b")
    app.text_input(key="compare_external_map").input("pit=pituitary")
    submit = next(b for b in app.button if b.label.startswith("Score 2 selected"))
    submit.click().run()
    assert not app.exception and not app.error
    results = frame_with(app, "copies left out")
    assert list(results["external set"]) == ["site b", "site b"]
    assert (results["copies left out"] >= 3).all()
    assert (results["classes not scored"] == "Other (4)").all()
    table = runs_table(app)
    assert table.loc[made.first, "external:site b"] == pytest.approx(results["accuracy"].iat[0])
    app.segmented_control(key="compare_split").set_value("external:site b").run()
    assert not app.exception
    assert not any("No selected run has results" in info.value for info in app.info)
    # A folder that is not there: one clear line per run, nothing raised.
    app.text_input(key="compare_external_folder").input(str(tmp_path / "missing"))
    next(b for b in app.button if b.label.startswith("Score 2 selected")).click().run()
    assert not app.exception
    assert any("no such folder" in error.value for error in app.error)


def test_the_warnings_button_measures_the_detectors_and_draws_risk_coverage(
    app: AppTest, made: Runs
) -> None:
    app.multiselect(key="compare_runs").set_value([made.first]).run()
    app.button(key="compare_warnings").click().run()
    assert not app.exception and not app.error
    table = frame_with(app, "unflagged accuracy")
    assert set(table["detector"]) >= {"calibrated confidence (the default)", "energy"}
    assert app.selectbox(key="compare_warnings_set").value == "validation"
    app.selectbox(key="compare_warnings_set").select("rotation 15").run()
    risk = [
        json.loads(chart.proto.spec)
        for chart in app.get("plotly_chart")
        if "coverage" in str(json.loads(chart.proto.spec).get("layout", {}).get("xaxis"))
    ]
    assert len(risk) == 1 and len(risk[0]["data"]) == 3  # the three ranking scores
    assert not [button for button in app.button if button.key == "compare_warnings"]


def test_the_verdict_line_names_the_better_run_by_how_much_with_the_paired_test(
    app: AppTest, made: Runs
) -> None:
    from core.evaluation.comparison import paired_test
    from core.evaluation.run_selection import report_of, run_labels
    from core.evaluation.verdict import verdict_line
    from core.runs.registry import list_runs

    app.multiselect(key="compare_runs").set_value([made.first, made.second]).run()
    assert not app.exception
    first, second = load_run(made.first), load_run(made.second)
    ranked = sorted((first, second), key=lambda info: -report_of(info, "test").accuracy)
    best, other = ranked
    shown = next(info.value for info in app.info if "against" in info.value)
    label = run_labels(list_runs())  # as the page names runs
    assert shown.startswith(f"**{label[best.run_id]}** against **{label[other.run_id]}**")
    points = (report_of(best, "test").accuracy - report_of(other, "test").accuracy) * 100
    p_value = paired_test(best, other, "test")["p_value"]
    assert f"on the official test by {points:.1f} points" in shown
    assert f"McNemar p = {p_value:.2g}" in shown
    assert "duplicate-free test" in shown and "unseen-scan test" in shown
    assert shown == verdict_line([first, second], label)
    # One run, or an unevaluated second one: no verdict, and the page says why.
    app.multiselect(key="compare_runs").set_value([made.first, made.interrupted]).run()
    assert not [info for info in app.info if "against" in info.value]
    assert any("for a verdict" in caption.value for caption in app.caption)
    assert verdict_line([first], label) is None


def test_the_filters_also_narrow_the_selection(app: AppTest, made: Runs) -> None:
    app.multiselect(key="compare_runs").set_value([made.first, made.interrupted]).run()
    app.multiselect(key="compare_filter_status").set_value(["completed"]).run()
    assert not app.exception
    assert app.multiselect(key="compare_runs").value == [made.first]
    assert made.interrupted not in app.multiselect(key="compare_runs").options
    assert app.dataframe[0].proto.placeholder == "—"  # a missing value is not "None"


def test_a_mistake_can_be_enlarged(app: AppTest, made: Runs) -> None:
    app.multiselect(key="compare_runs").set_value([made.first]).run()
    before = len(app.get("image"))
    app.button(key="compare_mistakes_enlarge_0").click().run()
    assert not app.exception
    assert len(app.get("image")) == before + 1  # the same image again, in the dialog


def test_unnamed_runs_are_labelled_by_what_they_are_and_when(made: Runs) -> None:
    from core.evaluation.run_selection import run_labels, short_label

    first = load_run(made.first)
    assert short_label(first) == f"cnn_fast custom · {first.created_at:%m-%d %H:%M}"
    labels = run_labels([first, load_run(made.second)])
    assert len(set(labels.values())) == 2  # clashing labels get the id's tail
    assert all(made.first not in label for label in labels.values())


def test_a_selected_run_exports_to_a_verified_onnx_zip_with_its_card(
    app: AppTest, made: Runs
) -> None:
    import io
    import zipfile

    from core.ui.compare_export import EXPORT_KEY

    app.multiselect(key="compare_runs").set_value([made.first, made.interrupted]).run()
    assert app.selectbox(key="compare_export_run").options == [
        app.multiselect(key="compare_runs").format_func(made.first)
    ]  # the interrupted run has no weights to export
    app.button(key="compare_export").click().run()
    assert not app.exception, app.exception
    assert not app.error, [error.value for error in app.error]
    assert any("largest probability difference" in caption.value for caption in app.caption)
    run_id, archive, _ = app.session_state[EXPORT_KEY]
    assert run_id == made.first
    names = zipfile.ZipFile(io.BytesIO(archive)).namelist()
    assert sorted(names) == ["model.card.json", "model.card.md", "model.onnx"]
    assert not (load_run(made.first).path / "model.onnx").exists()  # nothing left in the run
