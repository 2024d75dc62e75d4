"""The one architectural rule: only the UI layer imports streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parent.parent / "core"


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_core_outside_ui_never_imports_streamlit() -> None:
    offenders = [
        str(path.relative_to(CORE))
        for path in CORE.rglob("*.py")
        if "ui" not in path.relative_to(CORE).parts and "streamlit" in imported_modules(path)
    ]
    assert offenders == []


def test_the_check_sees_the_ui_layer() -> None:
    # Guards the test above against passing vacuously (e.g. a wrong folder).
    assert "streamlit" in imported_modules(CORE / "ui" / "memo.py")


def test_the_engine_loads_without_streamlit() -> None:
    import subprocess
    import sys

    code = (
        "import sys, core.cli.main, core.data.audit, core.data.image_cache, core.data.splits, "
        "core.data.statistics, core.device; "
        "print('streamlit' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=CORE.parent, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_pages_do_not_live_in_a_pages_folder() -> None:
    # A pages/ folder beside Home.py puts Streamlit in legacy multipage mode until Home.py has
    # run once, so a first visit straight to a page URL would bypass the entrypoint.
    project = CORE.parent
    assert not (project / "pages").exists()
    assert (project / "app_pages" / "train.py").is_file()
