"""The Classify page's first-use helpers under AppTest: samples from the dataset with their
true class, a link to a run, repeated uploads shown once, readable probabilities."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import paths
from core.training.fit import fit
from core.ui.classify import format_probability, sample_choices
from tests.test_classify_cam import upload
from tests.test_training import tiny_request


@pytest.fixture
def run_ids(demo_dataset_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Two one-epoch models of the demo data, the only runs in this test's checkpoints."""
    monkeypatch.setenv(paths.CHECKPOINTS_ENV, str(tmp_path / "checkpoints"))
    return [
        fit(tiny_request(demo_dataset_dir, epochs=1, subset_per_class=10, seed=seed)).run_id
        for seed in (0, 1)
    ]


def test_samples_spread_over_each_class_of_the_test_images(demo_dataset_dir: Path) -> None:
    samples = sample_choices(demo_dataset_dir)
    assert list(samples) == [f"{c} {n}" for c in ("glioma", "meningioma", "notumor", "pituitary")
                             for n in (1, 2)]  # fmt: skip
    assert all(path.startswith("Testing/") for path in samples.values())
    assert samples["glioma 1"] != samples["glioma 2"]
    assert sample_choices(demo_dataset_dir / "missing") == {}


def test_probabilities_read_as_percentages_never_as_tiny_floats() -> None:
    assert format_probability(0.97312) == "97.3%"
    assert format_probability(0.004) == "0.4%"
    assert format_probability(1e-11) == "<0.1%"


def test_a_sample_classifies_with_one_click_and_names_its_true_class(
    app: AppTest, run_ids: list[str]
) -> None:
    app.run()
    app.switch_page("app_pages/classify.py").run()
    assert not app.exception, app.exception
    assert not app.get("metric")  # nothing to classify yet
    app.pills(key="classify_samples").set_value(["glioma 1", "pituitary 2"]).run()
    assert not app.exception, app.exception
    assert len(app.dataframe[0].value) == 2  # the two samples' results table
    image = app.selectbox(key="classify_image").value
    assert image.startswith("sample glioma 1 · ")
    truth = [c.value for c in app.caption if c.value.startswith("True class")]
    assert truth and "**glioma**" in truth[0] and ("right" in truth[0] or "wrong" in truth[0])


def test_a_link_opens_its_run_and_an_unknown_one_is_named(app: AppTest, run_ids: list[str]) -> None:
    app.run()
    app.switch_page("app_pages/classify.py")
    app.query_params["run"] = run_ids[0]
    app.run()
    assert app.selectbox(key="classify_run").value.run_id == run_ids[0]
    app.selectbox(key="classify_run").set_value(
        next(o for o in app.selectbox(key="classify_run").options if run_ids[1] in o)
    )
    app.run()
    assert app.query_params["run"] == run_ids[1]  # the address follows the choice
    app.query_params["run"] = "20990101T000000Z_nope_000000"
    app.run()
    assert any("No completed run '20990101T000000Z_nope_000000'" in w.value for w in app.warning)


def test_the_same_file_uploaded_twice_is_classified_once(
    app: AppTest, run_ids: list[str], demo_dataset_dir: Path
) -> None:
    png = sorted((demo_dataset_dir / "Testing" / "glioma").glob("*.png"))[0].read_bytes()
    app.run()
    app.switch_page("app_pages/classify.py").run()
    upload(app, [("a.png", png, "image/png"), ("b.png", png, "image/png")])
    assert not app.exception, app.exception
    assert app.selectbox(key="classify_image").options == ["a.png"]
    assert any("b.png (= a.png)" in message.value for message in app.info)
