"""Dashboard hardening: loopback-only server config, private per-session uploads that are cleaned up,
messages that name the file as uploaded, the upload limit in words, and the small-backtest warning."""
from __future__ import annotations

import gc
import os
import stat
import sys
import time
import tomllib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from app.components import serving, uploads  # noqa: E402
from app.components.calibration import MIN_RELIABLE_ORIGINS, CalibrationResult, MethodScores  # noqa: E402

APP = str(REPO / "app" / "dashboard.py")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


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


# ----------------------------------------------------------------------------------- uploads
def test_upload_is_private_in_a_folder_per_session(tmp_path, monkeypatch):
    monkeypatch.setenv(uploads.ROOT_ENV, str(tmp_path / "up"))
    root = uploads.upload_root()
    assert _mode(root) == 0o700
    folder = uploads.session_folder(root, "abc-123")
    path = uploads.save(folder, "my data.csv", b"date,value\n2024-01-01,1\n")
    assert folder.name == f"{os.getpid()}-abc-123" and path.is_relative_to(folder)
    assert _mode(path) == 0o600 and _mode(path.parent) == 0o700 and _mode(folder) == 0o700
    other = uploads.session_folder(root, "xyz")
    assert other != folder and _mode(other) == 0o700
    second = uploads.save(folder, "next.csv", b"a,b\n1,2\n")
    assert second.exists() and not path.exists()  # a session keeps its current upload only
    assert [p.name for p in folder.iterdir()] == [second.parent.name]


def test_root_not_owned_by_us_is_not_used(tmp_path, monkeypatch):
    target = tmp_path / "elsewhere"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)  # a planted symlink must not receive the uploads
    monkeypatch.setenv(uploads.ROOT_ENV, str(tmp_path / "link"))
    monkeypatch.setattr(uploads.tempfile, "tempdir", str(tmp_path))  # the private fallback lands here
    monkeypatch.setattr(uploads, "_fallback_root", None)
    root = uploads.upload_root()
    assert root.parent == tmp_path and root.name.startswith("forecasting-dashboard-uploads-") and _mode(root) == 0o700
    assert uploads.upload_root() == root  # one fallback per process


def test_sweep_removes_ended_sessions_and_stale_folders(tmp_path):
    me, dead, live = os.getpid(), 999_001, 999_002
    names = {"mine_active": f"{me}-active", "mine_ended": f"{me}-ended", "dead_server": f"{dead}-s1",
             "live_recent": f"{live}-s2", "live_old": f"{live}-s3", "legacy_old": "0123abcd", "legacy_new": "4567cdef"}
    for name in names.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "f.csv").write_text("x")
    now = time.time()
    for key in ("live_old", "legacy_old"):
        os.utime(tmp_path / names[key], (now - 13 * 3600, now - 13 * 3600))
    removed = uploads.sweep(tmp_path, is_active=lambda sid: sid == "active", now=now,
                            pid_alive=lambda pid: pid == live)
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([names["mine_active"], names["live_recent"], names["legacy_new"]])
    assert len(removed) == 4
    # without a session registry (no Streamlit runtime) this process's folders are kept
    (tmp_path / f"{me}-ended").mkdir()
    uploads.sweep(tmp_path, None, now=now, pid_alive=lambda pid: True)
    assert (tmp_path / f"{me}-ended").is_dir()
    assert uploads.sweep(tmp_path / "missing") == []


def test_old_shared_upload_folder_is_emptied_of_stale_files(tmp_path, monkeypatch):
    monkeypatch.delenv(uploads.ROOT_ENV, raising=False)
    monkeypatch.setattr(uploads.tempfile, "tempdir", str(tmp_path))
    legacy = tmp_path / uploads.LEGACY_ROOT
    (legacy / "0123abcd").mkdir(parents=True)
    (legacy / "0123abcd" / "ETTh2.csv").write_text("x")
    (legacy / "4567cdef").mkdir()
    old = time.time() - 13 * 3600
    os.utime(legacy / "0123abcd", (old, old))
    uploads.sweep_all(None)
    assert [p.name for p in legacy.iterdir()] == ["4567cdef"]
    os.utime(legacy / "4567cdef", (old, old))
    uploads.sweep_all(None)
    assert not legacy.exists()
    assert (tmp_path / f"forecasting-dashboard-uploads-{os.getuid()}").is_dir()


def test_session_folder_goes_with_the_session_state(tmp_path):
    folder = uploads.session_folder(tmp_path, "s")
    uploads.save(folder, "a.csv", b"x\n1\n")
    state = {"_upload_folder": uploads.SessionFolder(folder)}  # what st.session_state holds
    state.clear()  # Streamlit dropping (or the user clearing) the session's state
    gc.collect()
    assert not folder.exists()


def test_redact_and_size_message(tmp_path):
    stored = tmp_path / "123-s" / "d1" / "my_data.csv"
    text = f"{stored}: row 2: non-numeric value 'x'; also {tmp_path}/123-s/d1"
    shown = uploads.redact(text, stored, "my data.csv", tmp_path)
    assert shown.startswith("my data.csv: row 2") and str(tmp_path) not in shown
    assert uploads.too_large_message("a.csv", 10 * 2**20, 200) is None
    msg = uploads.too_large_message("big.csv", 250 * 2**20, 200)
    assert msg.startswith("big.csv is 250 MB; the limit is 200 MB") and "--max-upload-mb 300" in msg
    assert "200.40 MB" in uploads.too_large_message("b.csv", int(200.4 * 2**20), 200)


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
    monkeypatch.setenv(uploads.ROOT_ENV, str(tmp_path / "uploads"))

    def start() -> AppTest:
        at = AppTest.from_file(APP, default_timeout=120)
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        at.sidebar.radio(key="source").set_value("Upload a CSV or parquet file").run()
        return at

    return start


def _errors(at) -> list[str]:
    return [str(e.value) for e in at.error]


def test_broken_upload_names_the_file_not_the_server_path(page, tmp_path):
    at = page()
    name = "my sales (march).csv"
    at.sidebar.file_uploader(key="upload").set_value((name, b"date,value\n2024-01-01,1\n2024-01-02,abc\n", "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    errors = _errors(at)
    assert any(e.startswith(f"{name}: ") and "non-numeric value 'abc'" in e for e in errors), errors
    assert not any(str(tmp_path / "uploads") in e or "my_sales" in e for e in errors), errors
    [folder] = (tmp_path / "uploads").iterdir()
    [stored] = folder.rglob("*.csv")
    assert _mode(stored) == 0o600 and _mode(folder) == 0o700 and folder.name.startswith(f"{os.getpid()}-")


def test_over_limit_upload_is_explained_in_the_main_area(page):
    from streamlit import config

    before = config.get_option("server.maxUploadSize")
    config.set_option("server.maxUploadSize", 1)
    try:
        at = page()
        assert any("up to 1 MB" in i.value and "--max-upload-mb" in i.value for i in at.info), [i.value for i in at.info]
        at.sidebar.file_uploader(key="upload").set_value(("big.csv", b"a,b\n" + b"1,2\n" * 600_000, "text/csv")).run()
    finally:
        config.set_option("server.maxUploadSize", before)
    assert not at.exception, [e.value for e in at.exception]
    errors = _errors(at)
    assert any(e.startswith("big.csv is 2 MB; the limit is 1 MB") and "--max-upload-mb 10" in e for e in errors), errors


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


@pytest.mark.browser
def test_in_chromium_upload_is_private_named_and_gone_with_the_session(tmp_path, monkeypatch):
    """A real server and browser: the error names the file as uploaded, the stored copy is 0600 in the
    session's 0700 folder, and once that browser session ends the next page load removes the folder."""
    from app import browser

    if not Path(browser.CHROMIUM).exists():
        pytest.skip(f"{browser.CHROMIUM} is absent (scripts/ensure_chromium.sh installs it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    root = tmp_path / "uploads"
    monkeypatch.setenv(uploads.ROOT_ENV, str(root))  # the server inherits it
    csv = tmp_path / "my sales (march).csv"
    csv.write_text("date,value\n2024-01-01,1\n2024-01-02,abc\n2024-01-03,3\n")
    with browser.serve(tmp_path / "runs", preset="tiny", log_path=tmp_path / "server.log") as url, \
            sync_api.sync_playwright() as pw:
        chromium = browser.launch(pw)
        try:
            first = chromium.new_context()
            page = first.new_page()
            page.set_default_timeout(60_000)
            page.goto(url, wait_until="domcontentloaded")
            page.get_by_text("Upload a CSV or parquet file").click()
            page.locator("input[type='file']").set_input_files(str(csv))
            page.get_by_text("non-numeric value").first.wait_for()
            errors = browser.error_texts(page)
            assert any(e.startswith(f"{csv.name}: ") for e in errors) and not any(str(root) in e for e in errors), errors
            [folder] = root.iterdir()
            [stored] = folder.rglob("*.csv")
            assert _mode(stored) == 0o600 and _mode(folder) == 0o700
            first.close()  # the browser session ends
            second = chromium.new_context().new_page()
            deadline = time.time() + 30
            while folder.exists() and time.time() < deadline:  # each page load sweeps ended sessions
                second.goto(url, wait_until="domcontentloaded")
                second.get_by_text("Probabilistic forecasting").first.wait_for()
                second.wait_for_timeout(1000)
            assert not folder.exists()
        finally:
            chromium.close()
