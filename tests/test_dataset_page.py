"""The Dataset page's audit views under AppTest: pair thumbnails, the pager, the order of pairs,
an opened image's copies, readable chart axes and counted nouns."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import streamlit
from streamlit.testing.v1 import AppTest

from core import paths
from core.data.index import open_dataset
from core.ui.memo import shared_memo
from core.ui.wording import counted
from tests.conftest import PROJECT_ROOT, TIMEOUT
from tests.test_data import make_kaggle

AUDIT_TAB = 3
BOTH_SCOPES = ["cross-split", "within split"]


def open_audit(app: AppTest) -> AppTest:
    """The Dataset page with the audit computed (once per test session's cache)."""
    app.run()
    app.switch_page("app_pages/dataset.py").run()
    if any(button.key == "run_audit" for button in app.button):
        app.button(key="run_audit").click().run()
    assert not app.exception
    return app


def pairs_table(app: AppTest) -> pd.DataFrame:
    return next(frame.value for frame in app.dataframe if "a_path" in frame.value.columns)


def pairs_drawn(app: AppTest, dataset_dir: Path) -> list[tuple[str, str]]:
    """(a path, b path) of each pair drawn as thumbnails, in page order (from Enlarge keys)."""
    frame_paths = open_dataset(dataset_dir).frame["path"].tolist()
    drawn = []
    for button in app.button:
        if button.key and button.key.startswith("enlarge_") and button.key.endswith("_a"):
            _, first, second, _ = button.key.split("_")
            drawn.append((frame_paths[int(first)], frame_paths[int(second)]))
    return drawn


def table_pairs(table: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(table["a_path"], table["b_path"], strict=True))


def captions(app: AppTest) -> list[str]:
    return [str(element.value) for element in app.caption]


def test_counted_nouns() -> None:
    assert counted(1, "file") == "1 file"
    assert counted(2, "file") == "2 files"
    assert counted(0, "image") == "0 images"
    assert counted(7019, "image") == "7,019 images"
    assert counted(1, "copy", "copies") == "1 copy"
    assert counted(3, "copy", "copies") == "3 copies"


def test_pair_images_are_thumbnails_that_enlarge(
    app: AppTest, demo_dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    widths_by_caller: dict[str, list[Any]] = {}
    draw_image = streamlit.image

    def recording_image(*args: Any, **kwargs: Any) -> Any:
        caller = sys._getframe(1).f_code.co_name
        widths_by_caller.setdefault(caller, []).append(kwargs.get("width"))
        return draw_image(*args, **kwargs)

    monkeypatch.setattr(streamlit, "image", recording_image)
    open_audit(app)
    pair_widths = widths_by_caller["show_pair"]
    assert len(pair_widths) == 2 * len(pairs_table(app))  # two images a pair
    assert all(isinstance(width, int) and 150 <= width <= 200 for width in pair_widths)
    first, second = pairs_drawn(app, demo_dataset_dir)[0]
    enlarge = next(button for button in app.button if button.key.startswith("enlarge_"))
    enlarge.click().run()
    assert not app.exception
    assert widths_by_caller["show_full_image"][-1] == "stretch"  # the dialog: full width
    shown = captions(app)
    assert any("px" in caption and "split" in caption for caption in shown)
    # The dialog of one side of a pair lists the other side among its copies (the captions
    # under the page's thumbnails name paths too, but no distance).
    copies = [caption for caption in shown if "distance" in caption]
    assert any(second in caption for caption in copies), shown
    assert not any(first in caption for caption in copies)  # not a copy of itself


def test_the_pairs_table_is_the_page_of_pairs_drawn(app: AppTest, demo_dataset_dir: Path) -> None:
    open_audit(app)
    app.multiselect(key="pair_scopes").set_value(BOTH_SCOPES).run()
    assert app.number_input(key="pair_page").label == "Page (of 2)"  # 7 pairs, 6 a page
    first_page = pairs_table(app)
    assert len(first_page) == 6
    assert table_pairs(first_page) == pairs_drawn(app, demo_dataset_dir)
    app.button(key="pair_next").click().run()
    assert app.number_input(key="pair_page").value == 2
    second_page = pairs_table(app)
    assert len(second_page) == 1
    assert table_pairs(second_page) == pairs_drawn(app, demo_dataset_dir)
    assert not set(table_pairs(second_page)) & set(table_pairs(first_page))
    assert any("Pairs 7–7 of 7" in caption for caption in captions(app))


def test_near_pairs_come_borderline_first_unless_asked_otherwise(
    app: AppTest, demo_dataset_dir: Path
) -> None:
    open_audit(app)
    app.multiselect(key="pair_kinds").set_value(["near"]).run()
    distances = pairs_table(app)["distance"].tolist()
    assert len(distances) == 3
    assert distances == sorted(distances, reverse=True) and distances[0] > distances[-1]
    assert table_pairs(pairs_table(app)) == pairs_drawn(app, demo_dataset_dir)
    app.radio(key="pair_order").set_value("closest first").run()
    assert pairs_table(app)["distance"].tolist() == sorted(distances)


def test_the_pager_follows_the_number_of_pages(app: AppTest) -> None:
    open_audit(app)
    app.multiselect(key="pair_scopes").set_value(BOTH_SCOPES).run()
    app.number_input(key="pair_page").set_value(2).run()
    assert len(pairs_table(app)) == 1
    app.slider(key="audit_threshold").set_value(0.0).run()  # only the 4 exact pairs: 1 page
    pager = app.number_input(key="pair_page")
    assert not app.exception and not app.error
    assert pager.value == 1 and pager.label == "Page (of 1)"
    assert len(pairs_table(app)) == 4
    app.slider(key="audit_threshold").set_value(0.05).run()
    app.number_input(key="pair_page").set_value(99).run()  # typed past the end: the last page
    assert app.number_input(key="pair_page").value == 2
    assert len(pairs_table(app)) == 1
    assert not app.exception
    # No upper bound in the browser, whose range message would outlive a change of page count.
    assert not app.number_input(key="pair_page").proto.has_max


def test_chart_axes_have_readable_log_ticks(app: AppTest) -> None:
    open_audit(app)
    intensity = json.loads(app.tabs[2].get("plotly_chart")[-1].proto.spec)["layout"]["yaxis"]
    assert intensity["type"] == "log" and intensity["dtick"] == 1
    assert intensity["tickformat"] == "~%"  # 0.1%, 0.001%: not plotly's SI "100n", "1μ"
    distances = json.loads(app.tabs[AUDIT_TAB].get("plotly_chart")[0].proto.spec)["layout"]
    assert distances["yaxis"]["type"] == "log" and distances["yaxis"]["dtick"] == 1
    assert distances["yaxis"]["tickformat"] == ",d"


def small_dataset_app(root: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv(paths.DATA_DIR_ENV, str(root))
    shared_memo.clear()
    app = AppTest.from_file(str(PROJECT_ROOT / "Home.py"), default_timeout=TIMEOUT).run()
    app.switch_page("app_pages/dataset.py").run()
    assert not app.exception
    return app


@pytest.mark.parametrize(("strays", "label"), [(1, "1 file skipped"), (2, "2 files skipped")])
def test_skipped_files_are_counted_in_words(
    strays: int, label: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_kaggle(tmp_path / "strays", per_class=3)
    for number in range(strays):
        (root / "Training" / "a" / f"notes_{number}.txt").write_text("not an image")
    app = small_dataset_app(root, monkeypatch)
    assert [expander.label for expander in app.expander if "skipped" in expander.label] == [label]


def test_an_opened_image_says_whether_it_has_copies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_kaggle(tmp_path / "fresh", per_class=3)  # a new dataset: not audited yet
    app = small_dataset_app(root, monkeypatch)
    open_first = next(button for button in app.button if button.label == "Open")
    open_first.click().run()
    assert any("Run the audit" in caption for caption in captions(app))
    app.button(key="run_audit").click().run()
    assert not app.exception
    next(button for button in app.button if button.label == "Open").click().run()
    assert not app.exception
    assert any(caption.startswith("No copies found") for caption in captions(app))
    assert not any("Run the audit" in caption for caption in captions(app))
