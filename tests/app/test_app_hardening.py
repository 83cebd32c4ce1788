"""Dashboard hardening: loopback-only server config and a warning when the page is reachable from the
network; the calibration view says when its backtest is too small to judge."""
from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from app.components import serving  # noqa: E402
from app.components.calibration import MIN_RELIABLE_ORIGINS, CalibrationResult, MethodScores  # noqa: E402

APP = str(REPO / "app" / "dashboard.py")


# ----------------------------------------------------------------------------------- server config
def test_committed_streamlit_config_is_loopback_only_and_matches_the_cli():
    import argparse

    from forecasting.cli.commands import dashboard as command

    root, script_level = REPO / ".streamlit" / "config.toml", REPO / "app" / ".streamlit" / "config.toml"
    assert root.read_text() == script_level.read_text()  # one setting whatever the working directory
    conf = tomllib.loads(root.read_text())
    sub = argparse.ArgumentParser().add_subparsers()
    command.register(sub)
    defaults = sub.choices["dashboard"].parse_args([])
    assert conf["server"]["address"] == defaults.host == "127.0.0.1"
    assert conf["server"]["headless"] is True
    assert conf["server"]["maxUploadSize"] == defaults.max_upload_mb
    assert conf["browser"]["gatherUsageStats"] is False


def test_exposure_warnings():
    for address in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert serving.is_loopback(address), address
    for address in (None, "", "0.0.0.0", "::", "192.168.1.5", "example.org"):
        assert not serving.is_loopback(address), address
    assert serving.exposure_warnings("127.0.0.1", False) == []
    [warning] = serving.exposure_warnings(None, False)
    assert "every network interface" in warning and "forecasting dashboard" in warning
    assert len(serving.exposure_warnings("0.0.0.0", True)) == 2


# ----------------------------------------------------------------------------------- calibration
def _calibration(n_windows: int) -> CalibrationResult:
    m = MethodScores("ScoreVI-Koopa", {"crps": 1.0, "coverage_80": 0.8}, {"crps": 0.5},
                     {"nominal": [0.1, 0.5, 0.9], "observed": [0.1, 0.5, 0.9]}, np.ones(100))
    return CalibrationResult([m], n_windows, 50, "2024-01-01", "2024-02-01", 24)


def test_small_backtest_is_flagged():
    assert "only 7 forecast origins" in _calibration(7).too_few_origins()
    assert _calibration(MIN_RELIABLE_ORIGINS).too_few_origins() is None


def _render_calibration(repo: str, n_windows: int) -> None:  # AppTest runs its body as the script
    import sys

    import numpy as np

    sys.path.insert(0, repo)
    from app.components import views
    from app.components.calibration import CalibrationResult, MethodScores

    m = MethodScores("ScoreVI-Koopa", {"crps": 1.0}, {"crps": 0.5}, {"nominal": [0.5], "observed": [0.4]}, np.ones(100))
    views.calibration_view(CalibrationResult([m], n_windows, 50, "2024-01-01", "2024-02-01", 24), key="k")


@pytest.mark.parametrize("n_windows, warned", [(7, True), (40, False)])
def test_calibration_view_warns_below_30_origins(n_windows, warned):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_render_calibration, args=(str(REPO), n_windows), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    texts = [w.value for w in at.warning]
    assert any(f"only {n_windows} forecast origins" in t and "~30" in t for t in texts) == warned, texts


# ----------------------------------------------------------------------------------- the page
@pytest.fixture
def page(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FORECASTING_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("FORECASTING_DASHBOARD_PRESET", "tiny")

    def start() -> AppTest:
        at = AppTest.from_file(APP, default_timeout=120)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        at.sidebar.radio(key="source").set_value("Upload a CSV or parquet file").run()
        return at

    return start


def _errors(at) -> list[str]:
    return [str(e.value) for e in at.error]



def test_page_warns_when_reachable_from_the_network(page):
    from streamlit import config

    before = config.get_option("server.address")
    try:
        config.set_option("server.address", "127.0.0.1")  # what the repo's config.toml sets
        at = page()
        assert not [w.value for w in at.warning if "listens on" in w.value]
        config.set_option("server.address", "0.0.0.0")
        at.run()
    finally:
        config.set_option("server.address", before)
    assert any("listens on address 0.0.0.0" in w.value for w in at.warning), [w.value for w in at.warning]
