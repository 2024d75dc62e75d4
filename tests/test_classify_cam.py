"""The Classify page computes each CAM once: moving the opacity slider reruns no model pass."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core import paths
from core.inference.explain import METHOD_CAPTIONS
from core.training.fit import fit
from core.ui.classify import load_predictor
from tests.test_training import tiny_request


@pytest.fixture
def run_id(demo_dataset_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A one-epoch model of the demo data, the only run in this test's checkpoints folder."""
    monkeypatch.setenv(paths.CHECKPOINTS_ENV, str(tmp_path / "checkpoints"))
    return fit(tiny_request(demo_dataset_dir, epochs=1, subset_per_class=10)).run_id


def upload(app: AppTest, files: list[tuple[str, bytes, str]]) -> None:
    """Set the uploader's files, where this Streamlit's AppTest can (1.50+ has set_value)."""
    uploaders = app.get("file_uploader")
    assert uploaders, "the Classify page shows no uploader"
    if not hasattr(uploaders[0], "set_value"):
        pytest.skip("this Streamlit's AppTest cannot set a file uploader's files")
    uploaders[0].set_value(files).run()


def overlay_caption(app: AppTest) -> str:
    """The overlay's caption, which names its method ('HiResCAM: where the score of ...')."""
    captions = [element.proto.imgs[0].caption for element in app.get("image")]
    names = {text.split(":")[0] for text in METHOD_CAPTIONS.values()}
    return next(caption for caption in captions if caption.split(":")[0] in names)


def test_opacity_reuses_the_cam_and_a_new_method_computes_one(
    app: AppTest, run_id: str, demo_dataset_dir: Path
) -> None:
    png = sorted((demo_dataset_dir / "Testing" / "glioma").glob("*.png"))[0]
    app.run()
    app.switch_page("app_pages/classify.py").run()
    assert not app.exception
    assert app.selectbox(key="classify_run").value.run_id == run_id
    upload(app, [("slice.png", png.read_bytes(), "image/png")])
    assert not app.exception
    assert app.selectbox(key="classify_cam").value == "hirescam"  # the default method
    assert overlay_caption(app).startswith("HiResCAM: where the score of")

    predictor = load_predictor(run_id)  # memoised process-wide: the page's own predictor
    forwards = []
    hook = predictor.model.register_forward_hook(lambda *_: forwards.append(1))
    try:
        for opacity in (0.8, 0.1, 0.45):
            app.slider(key="classify_opacity").set_value(opacity).run()
            assert not app.exception
            assert app.slider(key="classify_opacity").value == opacity
        assert len(forwards) == 0, "moving the opacity slider reran the model"

        app.selectbox(key="classify_cam").select("eigencam").run()
        assert not app.exception
        assert overlay_caption(app).startswith("EigenCAM:")
        assert "same for every class" in overlay_caption(app)
        assert not any(box.key.startswith("classify_target") for box in app.selectbox)
        computed = len(forwards)
        assert computed > 0, "a new CAM method did not compute a new map"

        app.slider(key="classify_opacity").set_value(0.9).run()
        app.selectbox(key="classify_cam").select("hirescam").run()  # computed before: kept
        assert not app.exception
        assert overlay_caption(app).startswith("HiResCAM:")
        assert len(forwards) == computed
    finally:
        hook.remove()
