"""``forecasting data describe|validate|list`` through a real subprocess: output and exit codes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "forecasting", "data", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def _bad_csv(tmp_path: Path, kind: str) -> Path:
    lines = ["date,load,temp\n"] + [f"2023-05-01 {h:02d}:00:00,{h}.5,{20 + h}\n" for h in range(24)]
    if kind == "duplicate":
        lines.insert(8, lines[7])
    elif kind == "text":
        lines[10] = "2023-05-01 09:00:00,high,29\n"
    elif kind == "gap":
        del lines[15]
    path = tmp_path / f"{kind}.csv"
    path.write_text("".join(lines))
    return path


def test_validate_benchmark_files(shared_data_dir):
    expected = {
        "ETTh1": "freq h, 17420 rows x 7 channels, 2016-07-01 00:00:00 .. 2018-06-26 19:00:00; "
                 "split train 8640 / val 2880 / test 2880 rows",
        "exchange_rate": "freq D, 7588 rows x 8 channels",
        "national_illness": "freq W-TUE, 966 rows x 7 channels",
    }
    for name, text in expected.items():
        result = _run("validate", str(shared_data_dir / f"{name}.csv"))
        assert result.returncode == 0, result.stderr
        assert text in result.stdout
    result = _run("validate", "exchange_rate", "--data-dir", str(shared_data_dir), "-L", "96", "-H", "96")
    assert "split train 5311 / val 760 / test 1517 rows" in result.stdout
    assert "windows L=96 H=96: train 5120 / val 665 / test 1422" in result.stdout


@pytest.mark.parametrize("kind, expected", [
    ("duplicate", "row 8 (line 9): duplicate timestamp '2023-05-01 06:00:00'"),
    ("text", "column 'load', row 10 (line 11): non-numeric value 'high'"),
    ("gap", "row 15 (line 16): gap in timestamps: 2023-05-01 15:00:00 follows 2023-05-01 13:00:00"),
])
def test_bad_csv_is_one_line_exit_2(tmp_path, kind, expected):
    path = _bad_csv(tmp_path, kind)
    for action in ("validate", "describe"):
        result = _run(action, str(path))
        assert result.returncode == 2
        out = (result.stdout + result.stderr).strip()
        assert len(out.splitlines()) == 1, out
        assert expected in out and "Traceback" not in out


def test_describe_embedded_default(tmp_path):
    result = _run("describe", cwd=tmp_path)  # default source: vic_elec, no data dir needed
    assert result.returncode == 0, result.stderr
    assert "frequency   30min" in result.stdout
    assert "52608 rows" in result.stdout and "Demand, Temperature" in result.stdout
    assert "windows     L=96 H=48: train 36682 / val 5215 / test 10474" in result.stdout


def test_user_errors_exit_2_without_traceback(tmp_path):
    for args in (("describe", "ETTh3"), ("describe", str(tmp_path / "missing.csv")), ("describe", "vic_elec", "-L", "96")):
        result = _run(*args)
        assert result.returncode == 2
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
