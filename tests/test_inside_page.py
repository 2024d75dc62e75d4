"""The Inside page under AppTest, on a run trained on the demo data: filters, feature maps of
an uploaded slice, layer probes and the embedding, computed from the page's buttons."""

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
    assert images == ["input channel: grey"]  # the filter grid of a 1-channel model
    _click(app, "Compute layer probes")
    assert any("nearest-neighbour" in caption.value for caption in app.caption)
    _click(app, "Compute the embedding")
    assert any("Click a point" in caption.value for caption in app.caption)
    assert app.radio(key="inside_projection").options == ["PCA", "t-SNE"]
    assert len(app.get("plotly_chart")) == 2  # probes and the embedding
