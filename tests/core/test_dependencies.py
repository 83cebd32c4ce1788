"""Every runtime dependency declared in pyproject.toml is imported by the package.

A declared but unused dependency costs every user an install (and a possible version conflict)
for nothing; this test catches one left behind after the code that needed it went away.
"""
from __future__ import annotations

import ast
import importlib.metadata as metadata
import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    return {_normalise(re.split(r"[\[<>=!~ ;]", d, maxsplit=1)[0]) for d in deps}


def _imported_modules() -> set[str]:
    """Top-level names of absolute imports anywhere in forecasting/ (lazy imports inside functions too)."""
    mods: set[str] = set()
    for path in (REPO / "forecasting").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                mods |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                mods.add(node.module.split(".")[0])
    return mods


def test_every_declared_dependency_is_imported():
    by_module = metadata.packages_distributions()  # import name -> installing distributions
    used = {_normalise(dist) for mod in _imported_modules() for dist in by_module.get(mod, [])}
    unused = sorted(_declared() - used)
    assert not unused, f"declared in pyproject.toml but never imported by forecasting/: {unused}"
