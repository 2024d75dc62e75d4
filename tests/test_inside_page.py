"""The Inside page under AppTest, on a run trained on the demo data: filters, feature maps of
a test image of the dataset, layer probes and the embedding, computed from the page's buttons;
a deep link to runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.training.fit import fit
from tests.test_training import tiny_request


@pytest.fixture(scope="module")
def run_id(demo_dataset_dir: Path) -> str:
    return fit(tiny_request(demo_dataset_dir, epochs=2)).run_id


def _click(app: AppTest, label: str) -> None:
    next(button for button in app.button if button.label.startswith(label)).click().run()
    assert not app.exception, app.exception


def test_the_inside_page_opens_a_run_and_computes_its_views(app: AppTest, run_id: str) -> None:
    app.run()
    app.switch_page("app_pages/inside.py").run()
    assert not app.exception, app.exception
    app.multiselect(key="inside_runs").set_value([run_id]).run()
    captions = " ".join(caption.value for caption in app.caption)
    assert "16 kernels of 3 x 3" in captions  # cnn_fast's first convolution
    images = [element.proto.imgs[0].caption for element in app.get("image")]
    assert images[0] == "input channel: grey"  # the filter grid of a 1-channel model
    strips = [caption for caption in images if "input pixels" in caption]
    assert len(strips) == 5, images  # the first test image, every stage of cnn_fast
    app.selectbox(key=f"inside_closer_{run_id}").set_value(2).run()
    closer = [
        i.proto.imgs[0].caption
        for i in app.get("image")
        if "input pixels" in i.proto.imgs[0].caption
    ]
    assert len(closer) == 6 and closer[-1] == closer[1]  # stage 2 again, with more channels
    label = app.selectbox(key="inside_image_class").value
    app.number_input(key=f"inside_image_number_{label}").set_value(2).run()
    assert not app.exception, app.exception
    # Every stage of the new image, and the closer look at stage 2 kept.
    assert len([i for i in app.get("image") if "input pixels" in i.proto.imgs[0].caption]) == 6
    _click(app, "Compute layer probes")
    assert any("nearest-neighbour" in caption.value for caption in app.caption)
    _click(app, "Compute the embedding")
    assert any("Hover over a point" in caption.value for caption in app.caption)
    assert app.radio(key="inside_projection").options == ["PCA", "t-SNE"]
    assert len(app.get("plotly_chart")) == 1  # the probes
    (projector,) = app.get("vega_lite_chart")
    spec = str(projector.proto)
    assert "data:image/jpeg;base64," in spec  # the hover thumbnails, one per image


def test_a_link_opens_its_runs_and_names_an_unknown_one(app: AppTest, run_id: str) -> None:
    app.run()
    app.switch_page("app_pages/inside.py")
    app.query_params["run"] = [run_id, "20990101T000000Z_nope_000000"]
    app.run()
    assert not app.exception, app.exception
    assert app.multiselect(key="inside_runs").value == [run_id]
    assert any("No completed run '20990101T000000Z_nope_000000'" in w.value for w in app.warning)
