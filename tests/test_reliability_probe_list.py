"""The reliability issue's probe list, re-run as a new user and a tester would, through real processes.

Each probe is what a tester did to find a problem; each assertion is what must hold now:

1. two `forecasting train --run-id same` started a moment apart: one succeeds, the other fails at
   once (exit 2, one line) and the finished run is complete — no successful run silently lost;
2. SIGTERM during a training: exit 143 with one line; after the next start nothing is left in
   `--out` but the documented resumable folder, and `forecasting runs clean --interrupted` removes that;
3. no traceback: `predict` into a place it cannot write, a misplaced `--set` key;
4. every flag the tester was sent to by a message exists on `train`;
5. `streamlit run app/dashboard.py` (the README's second start command) listens on 127.0.0.1 only.

The deeper tests of each part live beside their code (tests/cli/test_cli_train_reliability.py,
tests/cli/test_cli_probes.py, tests/cli/test_cli_messages.py, tests/app/test_app_hardening.py).
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TINY = ["data.lookback=48", "data.horizon=24", "model.seg_len=24", "model.dynamic_dim=8", "model.hidden_dim=16",
        "model.hidden_layers=1", "model.num_blocks=1", "training.epochs=2", "training.max_batches_per_epoch=3",
        "inference.eval_samples=2", "inference.warm_start_epochs=1", "device=cpu"]
LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING) [\w.]+: ")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    import polars as pl

    from forecasting.data import load_series

    d = tmp_path_factory.mktemp("probes")
    f = load_series("vic_elec").tail(1500)
    pl.DataFrame({"Time": f.timestamps, "Demand": f.values[:, 0], "Temperature": f.values[:, 1]}).write_csv(d / "vic.csv")
    return d / "vic.csv"


def cli(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "forecasting", *args], cwd=REPO, env=ENV, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def train(data: Path, out: Path, run_id: str, *extra: str) -> subprocess.Popen:
    sets = [a for item in TINY for a in ("--set", item)]
    return cli("train", "--config", "configs/demo.yaml", "--data", str(data), *sets, "--eval-samples", "10",
               "--out", str(out), "--run-id", run_id, "-q", "--threads", "1", *extra)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def one_error_line(err: str) -> str:
    """The one line that says what went wrong (log lines of the work done before it are allowed)."""
    lines = [line for line in err.splitlines() if line.strip() and not LOG_LINE.match(line)]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_same_run_id_twice_loses_nothing(data, tmp_path):
    first = train(data, tmp_path, "same")
    time.sleep(1.0)
    second = train(data, tmp_path, "same")
    results = [finish(first), finish(second)]
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 2], results
    loser = next(err for rc, _, err in results if rc == 2)
    assert "same" in one_error_line(loser)
    run = tmp_path / "same"
    assert (run / "run.json").is_file() and (run / "model" / "manifest.json").is_file()
    assert hidden(tmp_path) == []


def test_sigterm_leaves_no_debris_after_the_next_start(data, tmp_path):
    # long enough that the signal surely lands mid-training, however fast the machine
    proc = train(data, tmp_path, "stopped", "--set", "training.epochs=200", "--set", "training.patience=1000")
    partial = tmp_path / ".stopped.partial"
    deadline = time.time() + 240
    while not (partial / "config.yaml").exists():  # the run is under way (config written, training next)
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    rc, _, err = finish(proc)
    assert rc == 143
    assert "--resume" in one_error_line(err)  # says how to continue

    rc, _, err = finish(train(data, tmp_path, "next"))  # the next start cleans what dead processes left
    assert rc == 0, err
    assert hidden(tmp_path) == [".stopped.partial"]  # only the documented, resumable folder stays
    rc, _, err = finish(cli("runs", "clean", "--out", str(tmp_path), "--interrupted"))
    assert rc == 0, err
    assert hidden(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["next"]


def test_no_traceback_and_no_dead_end(data, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    rc, _, err = finish(cli("predict", "--model", "runs/does-not-matter", "--input", str(data),
                            "--output", str(blocker / "out.csv")))
    assert rc == 2
    one_error_line(err)

    rc, _, err = finish(cli("train", "--config", "configs/demo.yaml", "--set", "missing=interpolate"))
    assert rc == 2
    assert "data.missing" in one_error_line(err)

    rc, help_text, _ = finish(cli("train", "--help"))
    assert rc == 0
    for flag in ("--time-format", "--target-cols", "--encoding", "--missing", "--delimiter", "--resume"):
        assert flag in help_text, flag


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> set[str]:
    """Local addresses listening on ``port`` (from /proc/net/tcp and tcp6: state 0A = LISTEN)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if int(hex_port, 16) == port and fields[3] == "0A":
                found.add(address)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_streamlit_run_binds_loopback_only():
    pytest.importorskip("streamlit")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app/dashboard.py", "--server.port", str(port)],
                            cwd=REPO, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while not _listening(port):
            assert proc.poll() is None, "streamlit exited"
            assert time.time() < deadline, "streamlit did not start listening"
            time.sleep(0.2)
        time.sleep(0.5)  # a second (IPv6) listener would appear right after the first
        addresses = _listening(port)
        assert addresses == {"0100007F"}, addresses  # 127.0.0.1 in /proc's little-endian hex, nothing else
    finally:
        proc.terminate()
        proc.wait(timeout=30)
