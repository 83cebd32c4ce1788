"""The layer contract (``.importlinter``) holds, and it is not vacuous: a forbidden import breaks it.

``lint-imports`` (import-linter) builds the import graph of ``forecasting`` and ``app`` statically
and checks the contracts; these tests run it on the real tree and on a copy with one forbidden
import added, so a contract that stopped checking anything would fail here too.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).parent / "lint-imports"

pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is not installed (pip install -e '.[dev]')")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}  # `app` is not installed: it is found from the root
    return subprocess.run([str(LINT), "--no-cache", "--no-logo", str(root / ".importlinter")],
                          cwd=root, env=env, capture_output=True, text=True, timeout=120)


def _copy_tree(dst: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("forecasting", "app"):
        shutil.copytree(REPO / name, dst / name, ignore=ignore)
    shutil.copy(REPO / ".importlinter", dst / ".importlinter")
    return dst


def test_layer_contract_holds():
    result = _lint(REPO)
    assert result.returncode == 0, "layer contract broken:\n" + result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        # the engine imports only core
        ("forecasting/bayes/_probe.py", "import forecasting.data.series\n",
         "forecasting.bayes._probe -> forecasting.data.series"),
        # a facade never imports a surface
        ("forecasting/forecaster/_probe.py", "from forecasting.cli import entry\n",
         "forecasting.forecaster._probe -> forecasting.cli.entry"),
        # surfaces never import each other
        ("app/components/_probe.py", "import forecasting.bench.predict\n",
         "app.components._probe -> forecasting.bench.predict"),
        # the dashboard uses the facades' public API, not the engine's internals
        ("app/components/_probe.py", "from forecasting.bayes import build\n",
         "app.components._probe -> forecasting.bayes"),
    ],
)
def test_forbidden_import_breaks_the_contract(tmp_path, module, source, expected):
    root = _copy_tree(tmp_path)
    assert _lint(root).returncode == 0, "the copied tree should pass before the probe is added"
    (root / module).write_text(source)
    result = _lint(root)
    assert result.returncode != 0
    assert expected in result.stdout, result.stdout  # the message names the offending import


def test_package_top_level_holds_no_modules():
    """Every module lives in a package named for its layer; only the package's own files sit on top."""
    top = {p.name for p in (REPO / "forecasting").iterdir() if p.is_file()}
    assert top <= {"__init__.py", "__main__.py", "py.typed"}, sorted(top)
