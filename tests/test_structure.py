"""The package's shape, read with ``ast``: no import cycle between modules or between
packages, and SimPy behind the engine's clock alone."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "swarmsim"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth, outside ``if TYPE_CHECKING:``."""
    tree = ast.parse(path.read_text())
    skip = {
        id(node)
        for guard in ast.walk(tree)
        if isinstance(guard, ast.If) and "TYPE_CHECKING" in ast.unparse(guard.test)
        for node in ast.walk(guard)
    }
    here = module_name(path).split(".")
    if path.name != "__init__.py":
        here = here[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(here[: len(here) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def graph(group) -> nx.DiGraph:
    g = nx.DiGraph()
    for name, path in MODULES.items():
        for target in imports(path):
            if target in MODULES and group(target) != group(name):
                g.add_edge(group(name), group(target))
    return g


def package_of(name: str) -> str:
    """``swarmsim.engine.swarm`` -> ``swarmsim.engine``; a top-level module is its own."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else name


@pytest.mark.parametrize(("what", "group"), [("module", lambda n: n), ("package", package_of)])
def test_no_import_cycle(what, group):
    cycles = list(nx.simple_cycles(graph(group)))
    assert not cycles, f"{what} import cycles: {cycles}"


def test_only_the_clock_touches_simpy():
    users = sorted(
        name
        for name, path in MODULES.items()
        if any(t == "simpy" or t.startswith("simpy.") for t in imports(path))
    )
    assert users == ["swarmsim.engine.clock"]


def test_the_checks_see_imports():
    """The reader finds relative, nested and aliased imports (so the tests above can fail)."""
    assert "swarmsim.engine.clock" in imports(MODULES["swarmsim.engine.network"])
    assert "simpy" in imports(MODULES["swarmsim.engine.clock"])
    assert graph(lambda n: n).number_of_edges() > 50
