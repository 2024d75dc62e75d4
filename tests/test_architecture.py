"""The shape of `core`: imports point one way, no circles, no private names across packages."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PROJECT = Path(__file__).resolve().parent.parent
CORE = PROJECT / "core"
MAX_MODULE_LINES = 400


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PROJECT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def core_modules() -> dict[str, Path]:
    return {module_name(path): path for path in CORE.rglob("*.py")}


def imports_of(path: Path, modules: dict[str, Path]) -> list[tuple[str, str | None]]:
    """(imported core module, imported name or None) for every import in the file, lazy ones too."""
    found: list[tuple[str, str | None]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names if alias.name in modules]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module in modules:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                # `from core.data import audit` imports the module core.data.audit.
                is_module = submodule in modules
                found.append((submodule, None) if is_module else (node.module, alias.name))
    return found


def import_graph() -> nx.DiGraph:
    modules = core_modules()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        for target, _ in imports_of(path, modules):
            if target != name:
                graph.add_edge(name, target)
    return graph


def test_core_has_no_import_circle() -> None:
    cycles = list(nx.simple_cycles(import_graph()))
    assert cycles == [], f"import circles: {cycles}"


def test_the_cycle_check_sees_real_edges() -> None:
    # Guards the test above against passing vacuously (an empty or wrong graph).
    graph = import_graph()
    assert graph.has_edge("core.training.fit", "core.training.loops")
    assert graph.has_edge("core.imaging.dicom", "core.imaging.pixels")
    assert graph.number_of_edges() > 100


def test_no_private_name_is_imported_across_packages() -> None:
    modules = core_modules()
    offenders = []
    for name, path in modules.items():
        package = name.rsplit(".", 1)[0]
        for target, imported in imports_of(path, modules):
            if imported and imported.startswith("_") and target.rsplit(".", 1)[0] != package:
                offenders.append(f"{name} imports {target}.{imported}")
    assert offenders == []


@pytest.mark.parametrize("name", sorted(core_modules()))
def test_no_module_is_over_the_size_limit(name: str) -> None:
    lines = len(core_modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{name} has {lines} lines"


def test_every_package_says_what_it_holds() -> None:
    undocumented = [
        str(path.relative_to(PROJECT))
        for path in CORE.rglob("__init__.py")
        if not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    ]
    assert undocumented == []
