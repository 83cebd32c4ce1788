"""A partial install (e.g. a GPU machine with torch but without polars/optuna) keeps the CLI usable."""
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

BLOCKER = """
import importlib.abc, sys
BLOCK = {"polars", "optuna", "gluonts", "streamlit"}
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCK:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, _Block())
"""


def _cli(tmp_path, *args):
    (tmp_path / "sitecustomize.py").write_text(textwrap.dedent(BLOCKER))
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "forecasting", *args], capture_output=True, text=True, env=env,
                          timeout=120, cwd=REPO)


def test_cli_without_polars_and_optuna(tmp_path):
    help_ = _cli(tmp_path, "bench", "--help")
    assert help_.returncode == 0, help_.stderr
    assert "vision" in help_.stdout and "gpu" in help_.stdout
    train = _cli(tmp_path, "train", "--config", "configs/demo.yaml")
    assert train.returncode == 1
    assert "needs the Python package 'polars'" in train.stderr and "Traceback" not in train.stderr
