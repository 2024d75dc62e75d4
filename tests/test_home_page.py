"""Home as the workflow under AppTest: each step's state from disk, the next useful action
highlighted, and its button opening the page it names."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import paths
from core.evaluation.evaluate import evaluate_run
from core.training.fit import fit
from tests.test_training import tiny_request


def steps(app: AppTest) -> list[str]:
    return [str(element.value) for element in app.markdown if "**" in str(element.value)][:5]


def primary(app: AppTest) -> list[str]:
    return [button.label for button in app.button if button.proto.type == "primary"]


def test_a_first_visit_starts_at_the_audit(
    app: AppTest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.CHECKPOINTS_ENV, str(tmp_path / "checkpoints"))
    monkeypatch.setenv(paths.CACHE_DIR_ENV, str(tmp_path / "cache"))  # no audit computed yet
    app.run()
    assert not app.exception, app.exception
    shown = steps(app)
    assert len(shown) == 5 and "300 images in 4 classes" in shown[0]
    assert "no run yet" in shown[1] and "no run evaluated yet" in shown[2]
    assert primary(app) == ["Audit the data"]
    app.button(key="home_step_0").click().run()
    assert not app.exception, app.exception
    assert any(title.value == "Dataset" for title in app.title)


def test_a_trained_and_evaluated_run_moves_the_workflow_on(
    app: AppTest, demo_dataset_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(paths.CHECKPOINTS_ENV, str(tmp_path / "checkpoints"))
    run_id = fit(tiny_request(demo_dataset_dir, epochs=1, subset_per_class=10)).run_id
    evaluate_run(run_id)
    app.run()
    assert not app.exception, app.exception
    shown = steps(app)
    assert "1 trained run(s) on this dataset" in shown[1]
    assert "best: " in shown[2] and "official" in shown[2] and "duplicate-free" in shown[2]
    assert "nothing tested off-source yet" in shown[3]
    assert all(":material/check_circle:" in text for text in shown[1:3])  # trained, compared
    first_open = next(n for n, text in enumerate(shown) if ":material/check_circle:" not in text)
    assert first_open in (0, 3)  # the audit (unless another test ran it) or generalization
    assert primary(app) == [app.button(key=f"home_step_{first_open}").label]
    app.button(key="home_step_4").click().run()  # Classify, on the best run
    assert not app.exception, app.exception
    assert app.selectbox(key="classify_run").value.run_id == run_id
