"""The Train page's recipe choice under AppTest: each recipe fills the form as its definition
says and shows its measured record; custom settings keep what the user typed; a stored run can
be trained again; past runs are listed; a run can be named at launch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.jobs import JobManager
from core.models.choices import model_choices
from core.runs.registry import load_run
from core.training.fit import fit
from core.training.recipe_records import load_recipe_records
from core.training.recipes import (
    AUTO,
    FAST_CPU_RECIPES,
    ROBUST,
    ROBUST_RECIPES,
    recipe_name,
    recipe_options,
)
from core.training.request import TrainingRequest
from core.ui.train_form import SETTINGS, setting_values, widget_key
from core.ui.training import history_chart
from tests.test_training import tiny_request

PAGE = "app_pages/train.py"
RECIPES = [(model, AUTO) for model in sorted(FAST_CPU_RECIPES)] + [
    (model, ROBUST) for model in sorted(ROBUST_RECIPES)
]


def open_train(app: AppTest, model: str | None = None) -> AppTest:
    app.run()
    app.switch_page(PAGE).run()
    if model is not None:
        app.selectbox(key="train_model").select(model).run()
    assert not app.exception, app.exception
    return app


def widget_value(app: AppTest, setting: str, model: str, mode: str) -> object:
    """The value of the Advanced widget of `setting` (whatever kind of widget it is)."""
    key = widget_key(setting, model, mode)
    return app.session_state[key]


def capture_requests(monkeypatch: pytest.MonkeyPatch) -> list[TrainingRequest]:
    """Requests the page submits, stopped before a job starts."""
    submitted: list[TrainingRequest] = []

    def capture(self: JobManager, request: TrainingRequest) -> None:
        submitted.append(request)
        raise RuntimeError("captured")

    monkeypatch.setattr(JobManager, "submit", capture)
    return submitted


def start(app: AppTest) -> None:
    next(button for button in app.button if button.label == "Start training").click().run()


@pytest.mark.parametrize(("model", "mode"), RECIPES)
def test_each_recipe_fills_the_form_as_it_is_defined_and_shows_its_record(
    app: AppTest, model: str, mode: str
) -> None:
    open_train(app, model)
    app.radio(key=f"train_recipe_{model}").set_value(mode).run()
    assert not app.exception, app.exception
    entry = next(item for item in model_choices() if item.name == model)
    expected = setting_values(recipe_options(model, mode), entry)
    shown = {setting: widget_value(app, setting, model, mode) for setting in SETTINGS}
    assert shown == expected
    assert (
        shown["epochs"] == (ROBUST_RECIPES if mode == ROBUST else FAST_CPU_RECIPES)[model]["epochs"]
    )
    # A recipe's own settings are shown, not editable.
    assert app.number_input(key=widget_key("epochs", model, mode)).disabled
    record = load_recipe_records()[recipe_name(model, mode)]
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Official test"] == f"{record.scores['test'].value:.1%}"
    assert metrics["Duplicate-free test"] == f"{record.scores['duplicate_free_test'].value:.1%}"
    assert metrics["Unseen-scan test"] == f"{record.scores['unseen_scan_test'].value:.1%}"
    assert metrics["Worst moderate shift"] == f"{record.worst_shift.value:.1%}"
    assert metrics["Off-source (external)"] == "not measured"  # no external set was recorded
    captions = " ".join(caption.value for caption in app.caption)
    assert record.runs[0] in captions and record.measured_on in captions


def test_the_recipe_record_comes_from_the_record_file(
    app: AppTest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import core.training.recipe_records as records

    stored = json.loads(records.RECORDS_PATH.read_text())
    stored["cnn_fast"]["scores"]["test"]["value"] = 0.5
    del stored["cnn_fast_robust"]
    changed = tmp_path / "records.json"
    changed.write_text(json.dumps(stored))
    monkeypatch.setattr(records, "RECORDS_PATH", changed)
    open_train(app, "cnn_fast")
    assert {m.label: m.value for m in app.metric}["Official test"] == "50.0%"
    app.radio(key="train_recipe_cnn_fast").set_value(ROBUST).run()
    assert any("no measured record" in info.value for info in app.info)
    assert not app.metric


def test_custom_settings_keep_the_users_values(
    app: AppTest, monkeypatch: pytest.MonkeyPatch
) -> None:
    submitted = capture_requests(monkeypatch)
    open_train(app, "cnn_fast")
    app.radio(key="train_recipe_cnn_fast").set_value("custom").run()
    # Custom starts from the fast recipe, editable.
    assert (
        widget_value(app, "epochs", "cnn_fast", "custom") == FAST_CPU_RECIPES["cnn_fast"]["epochs"]
    )
    assert not app.number_input(key=widget_key("epochs", "cnn_fast", "custom")).disabled
    app.number_input(key=widget_key("epochs", "cnn_fast", "custom")).set_value(3).run()
    app.number_input(key=widget_key("lr", "cnn_fast", "custom")).set_value(0.01).run()
    app.checkbox(key=widget_key("augment_geometry", "cnn_fast", "custom")).check().run()
    assert any("changed from the fast recipe" in c.value for c in app.caption)
    # Looking at a recipe, and at another model, leaves them as they were.
    app.radio(key="train_recipe_cnn_fast").set_value(ROBUST).run()
    assert widget_value(app, "epochs", "cnn_fast", ROBUST) == ROBUST_RECIPES["cnn_fast"]["epochs"]
    app.selectbox(key="train_model").select("mobilenet_v2").run()
    app.selectbox(key="train_model").select("cnn_fast").run()
    app.radio(key="train_recipe_cnn_fast").set_value("custom").run()
    assert widget_value(app, "epochs", "cnn_fast", "custom") == 3
    assert widget_value(app, "lr", "cnn_fast", "custom") == 0.01
    assert widget_value(app, "augment_geometry", "cnn_fast", "custom") is True
    start(app)
    request = submitted[-1]
    assert request.train.epochs == 3 and request.train.lr == 0.01
    assert request.recipe == "cnn_fast"
    assert set(request.recipe_changes) == {"epochs", "lr", "augment"}
    # Starting custom settings from another recipe starts them again from it.
    app.radio(key="train_custom_base_cnn_fast").set_value(ROBUST).run()
    assert widget_value(app, "epochs", "cnn_fast", "custom") == ROBUST_RECIPES["cnn_fast"]["epochs"]
    start(app)
    assert submitted[-1].recipe == "cnn_fast_robust" and submitted[-1].recipe_changes == ()


def test_a_model_without_a_recipe_opens_on_custom_plain_defaults(app: AppTest) -> None:
    open_train(app, "cnn_classic")
    assert not [radio for radio in app.radio if radio.key == "train_recipe_cnn_classic"]
    assert widget_value(app, "use_pretrained", "cnn_classic", "custom") is False
    assert widget_value(app, "augment_geometry", "cnn_classic", "custom") is True  # all parts
    assert any("no measured recipe" in caption.value for caption in app.caption)
    app.selectbox(key="train_model").select("resnet18").run()
    assert widget_value(app, "use_pretrained", "resnet18", "custom") is False  # no weights here
    assert any("not available on this machine" in info.value for info in app.info)


def test_a_run_can_be_named_at_launch(
    app: AppTest, monkeypatch: pytest.MonkeyPatch, demo_dataset_dir: Path
) -> None:
    submitted = capture_requests(monkeypatch)
    open_train(app, "cnn_fast")
    app.text_input(key="train_run_name").input("  flips, seed 0  ").run()
    start(app)
    assert submitted[-1].name == "flips, seed 0"
    app.text_input(key="train_run_name").input("bell\x07").run()
    start(app)
    assert any("a run name must be 1 to 80" in error.value for error in app.error)
    named = fit(tiny_request(demo_dataset_dir, epochs=1, name="named at launch"))
    assert load_run(named.run_id).display_name == "named at launch"


def test_a_stored_run_can_be_trained_again_and_past_runs_are_listed(
    app: AppTest, demo_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    changed = fit(tiny_request(demo_dataset_dir, epochs=1, seed=7, name="to train again"))
    config = load_run(changed.run_id).config
    open_train(app)
    opened = next(b for b in app.button if b.key == f"open_past_{changed.run_id}")
    opened.click().run()
    assert app.query_params["run"] in (changed.run_id, [changed.run_id])
    next(b for b in app.button if b.label == "Train again with these settings").click().run()
    assert not app.exception, app.exception
    assert app.selectbox(key="train_model").value == "cnn_fast"
    # tiny_request changed the plain defaults: custom settings from them, the run's values.
    assert app.radio(key="train_recipe_cnn_fast").value == "custom"
    assert widget_value(app, "seed", "cnn_fast", "custom") == 7
    assert widget_value(app, "image_size", "cnn_fast", "custom") == config.data.image_size
    assert widget_value(app, "epochs", "cnn_fast", "custom") == 1
    assert app.number_input(key="train_subset").value == config.data.subset_per_class
    submitted = capture_requests(monkeypatch)
    start(app)
    again = submitted[-1]
    assert again.train == config.train and again.data.image_size == config.data.image_size


def test_the_charts_say_why_they_are_empty_in_the_first_epoch() -> None:
    empty = history_chart([], ())
    texts = [annotation.text for annotation in empty.layout.annotations]
    assert any("Accuracy appear after the first epoch" in text for text in texts)
    drawn = history_chart([{"epoch": 1, "train_loss": 1.0, "val_loss": 1.1}])
    assert not [t for t in (a.text for a in drawn.layout.annotations) if "first epoch" in t]
