"""Accessibility basics: every image the pages show has alt text, and charts tell runs and
classes apart by more than colour, from one colour-blind-safe palette."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import numpy as np
import pytest

from core.figures.palette import RUN_COLOURS, SPLIT_COLOURS, class_colours
from core.ui.charts import class_counts_chart, intensity_histogram_chart

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PAGE_SOURCES = sorted([*PROJECT_ROOT.glob("app_pages/*.py"), *PROJECT_ROOT.glob("core/ui/*.py")])


def image_calls(path: Path) -> list[ast.Call]:
    """Every `<something>.image(...)` call in a module (st.image, column.image, ...)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "image"
    ]


def test_the_check_finds_the_pages_images() -> None:
    assert sum(len(image_calls(path)) for path in PAGE_SOURCES) >= 10


@pytest.mark.parametrize("path", PAGE_SOURCES, ids=lambda path: path.name)
def test_every_image_on_a_page_has_alt_text(path: Path) -> None:
    missing = [
        f"{path.relative_to(PROJECT_ROOT)}:{call.lineno}"
        for call in image_calls(path)
        if not any(keyword.arg == "alt" for keyword in call.keywords)
    ]
    assert not missing, f"st.image without alt text at {', '.join(missing)}"


CHART_SOURCES = sorted(
    path
    for path in [
        *PROJECT_ROOT.glob("app_pages/*.py"),
        *PROJECT_ROOT.glob("core/ui/*.py"),
        *PROJECT_ROOT.glob("core/figures/*.py"),
    ]
    if path.name != "palette.py"
)
# A colour written out in a chart module: hex, rgb(a), or a name given to a colour argument.
NAMED = "red|green|blue|grey|gray|black|orange|crimson|purple|yellow|pink|brown|teal|magenta"
COLOUR_LITERAL = re.compile(
    r"#[0-9A-Fa-f]{6}\b|rgba?\(|(?:color|colour|fillcolor)[\"']?\s*[:=]\s*[\"']"
    rf"(?:{NAMED})[\"']"
)


def test_the_colour_check_catches_a_written_out_colour() -> None:
    for source in ('line_color="crimson"', '{"color": "#4C78A8"}', "fillcolor='rgba(1,2,3,0.1)'"):
        assert COLOUR_LITERAL.search(source), source
    assert not COLOUR_LITERAL.search('line_color=HIGHLIGHT, names = ["grey"], color="split"')


@pytest.mark.parametrize("path", CHART_SOURCES, ids=lambda path: path.name)
def test_charts_take_their_colours_from_the_one_palette(path: Path) -> None:
    found = [
        f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}"
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if COLOUR_LITERAL.search(line)
    ]
    assert not found, "colours outside core/figures/palette.py:\n" + "\n".join(found)


def test_classes_keep_one_colour_and_a_dash_of_their_own() -> None:
    classes = ["pituitary", "glioma", "notumor", "meningioma"]
    colours = class_colours(classes)
    assert colours == class_colours(sorted(classes))  # the order given does not matter
    assert len(set(colours.values())) == 4 and set(colours.values()) <= set(RUN_COLOURS)
    histograms = {name: np.full(256, 1 / 256) for name in classes}
    figure = intensity_histogram_chart(histograms)
    lines = {trace.name: trace.line for trace in figure.data}
    assert {name: line.color for name, line in lines.items()} == colours
    assert len({line.dash for line in lines.values()}) == 4  # not by colour alone


def test_splits_differ_by_hatching_as_well_as_colour() -> None:
    figure = class_counts_chart({"train": {"a": 5}, "val": {"a": 2}, "test": {"a": 1}})
    assert len({trace.marker.pattern.shape for trace in figure.data}) == 3
    assert [trace.marker.color for trace in figure.data] == [
        SPLIT_COLOURS[name] for name in ("train", "val", "test")
    ]
