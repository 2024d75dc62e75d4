"""The Studies page under AppTest, on the demo dataset: plan, estimate, launch, watch the
cells complete, read the curves and verdicts; bad input gets a clear message."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from core.studies.plan import list_studies
from core.ui.training import job_manager


def _open_form(app: AppTest, sizes: list[str]) -> AppTest:
    app.run()
    app.switch_page("app_pages/studies.py").run()
    assert not app.exception, app.exception
    app.multiselect(key="study_settings").set_value(["cnn_fast", "cnn_fast:robust"])
    app.multiselect(key="study_sizes").set_value(sizes)
    app.number_input(key="study_seeds").set_value(2)
    app.number_input(key="study_epochs").set_value(1)
    app.number_input(key="study_min_steps").set_value(1)
    app.checkbox(key="study_stress").uncheck()
    app.text_input(key="study_name").input("page test")
    return app


def _click(app: AppTest, label: str) -> None:
    next(button for button in app.button if button.label == label).click().run()
    assert not app.exception, app.exception


def test_a_size_larger_than_a_class_is_refused_with_a_message(app: AppTest) -> None:
    _open_form(app, ["10", "800"])
    _click(app, "Plan and estimate the time")
    assert any(
        "Cannot plan this study" in e.value and "larger than class" in e.value for e in app.error
    )
    assert not any(button.label == "Launch the study" for button in app.button)


def test_a_tiny_study_is_planned_launched_and_charted(app: AppTest) -> None:
    before = {study.study_id for study in list_studies()}
    _open_form(app, ["10", "all"])
    _click(app, "Plan and estimate the time")
    planned = [info.value for info in app.info if "cells" in info.value]
    assert planned and "**8 cells**" in planned[0] and "on this machine" in planned[0]
    _click(app, "Launch the study")
    assert job_manager().wait_idle(timeout=300)
    app.run()
    assert not app.exception, app.exception
    [study] = [s for s in list_studies() if s.study_id not in before]
    assert study.state == "finished" and study.name == "page test"
    text = " ".join(markdown.value for markdown in app.markdown)
    assert "8 of 8 cells completed" in text
    assert "at 10 images per class" in text and "with all training images" in text
    assert len(app.get("plotly_chart")) >= 3  # the score, the training time, the best epoch
    cells = app.dataframe[0].value
    assert len(cells) == 8 and set(cells["state"]) == {"completed"}
    # The overfitting view of one cell: its curves and its scores beside validation.
    assert any(metric.label == "official test" for metric in app.metric)
    app.selectbox(key="study_metric").set_value("accuracy").run()
    assert not app.exception
