"""Dataset registry: lookup, directory resolution order, checksum-verified atomic download."""
from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest

from forecasting.data import REGISTRY, download, get_spec, load_series, md5sum, resolve_path, validate
from forecasting.core.errors import ForecastingError

BENCHMARKS = ["ETTh1", "ETTh2", "exchange_rate", "national_illness"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture
def serve():
    """Start a loopback HTTP server for a directory; returns its base URL."""
    servers = []

    def start(directory: Path) -> str:
        handler = functools.partial(_Quiet, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_registry_matches_shared_checksums(shared_data_dir):
    for name in BENCHMARKS:
        spec = REGISTRY[name]
        assert spec.target == "OT"
        assert md5sum(shared_data_dir / spec.filename) == spec.md5
    assert REGISTRY["ETTh1"].split.kind == "ett_months"
    assert REGISTRY["exchange_rate"].split.kind == "ratio"
    assert get_spec("ili").name == "national_illness" and get_spec("etth1").name == "ETTh1"


def test_resolution_order(shared_data_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("FORECASTING_DATA", raising=False)
    # explicit data_dir wins and is the only place searched
    with pytest.raises(ForecastingError, match="not found in .*--data-dir"):
        resolve_path("ETTh1", data_dir=tmp_path)
    # environment variable next
    monkeypatch.setenv("FORECASTING_DATA", str(shared_data_dir))
    monkeypatch.chdir(tmp_path)
    assert resolve_path("ETTh1") == shared_data_dir / "ETTh1.csv"
    # ../shared/data relative to the cwd
    monkeypatch.delenv("FORECASTING_DATA")
    (tmp_path / "work").mkdir()
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "ETTh2.csv").write_bytes((shared_data_dir / "ETTh2.csv").read_bytes())
    monkeypatch.chdir(tmp_path / "work")
    assert resolve_path("ETTh2").resolve() == (tmp_path / "shared" / "data" / "ETTh2.csv").resolve()


def test_unknown_name_suggests():
    with pytest.raises(ForecastingError, match="did you mean 'ETTh2'"):
        load_series("ETTh3")


def test_download_from_loopback(shared_data_dir, tmp_path, serve):
    base = serve(shared_data_dir)
    dest = tmp_path / "cache"
    for name in ("national_illness", "exchange_rate"):
        path = download(name, base, dest)
        assert path == dest / REGISTRY[name].filename
        assert md5sum(path) == REGISTRY[name].md5
    assert sorted(p.name for p in dest.iterdir()) == ["exchange_rate.csv", "national_illness.csv"]  # no temp files
    # the resolver downloads a missing file when given a base URL, then loads it
    frame = load_series("national_illness", data_dir=tmp_path / "other", base_url=base)
    assert frame.freq == "W-TUE" and (tmp_path / "other" / "national_illness.csv").is_file()


def test_checksum_mismatch_is_rejected_and_leaves_no_file(shared_data_dir, tmp_path, serve):
    tampered = tmp_path / "served"
    tampered.mkdir()
    original = (shared_data_dir / "ETTh1.csv").read_bytes()
    (tampered / "ETTh1.csv").write_bytes(original[:-10] + b"9999999999")
    dest = tmp_path / "cache"
    with pytest.raises(ForecastingError, match="checksum mismatch .* not saved"):
        download("ETTh1", serve(tampered), dest)
    assert list(dest.iterdir()) == []


def test_unreachable_url_fails_fast(tmp_path, serve):
    base = serve(tmp_path)  # serves an empty folder: 404
    with pytest.raises(ForecastingError, match="cannot download .*404"):
        download("ETTh1", base, tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []
    with pytest.raises(ForecastingError, match="cannot download"):
        download("ETTh1", "http://127.0.0.1:9", tmp_path / "cache", timeout=2)  # port 9: nothing listens


def test_validate_reports_a_modified_benchmark_file(shared_data_dir, tmp_path):
    copy = tmp_path / "ETTh1.csv"
    copy.write_bytes((shared_data_dir / "ETTh1.csv").read_bytes() + b"")
    lines = copy.read_text().splitlines(keepends=True)
    copy.write_text("".join(lines[:-1]))  # drop the last row
    problems = validate("ETTh1", data_dir=tmp_path)
    assert [p.kind for p in problems] == ["checksum"]
    assert load_series("ETTh1", data_dir=tmp_path).length == 17419  # loading only warns
