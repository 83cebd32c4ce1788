"""Progress bars draw on a terminal and stay out of logs (forecasting.core.progress).

The bug: ``make demo > log 2>&1`` wrote thousands of carriage-return frames of the training loop's
tqdm bar into the log. A fit with stderr on a pipe must now write none; on a terminal (a pty) the
bar must still be there.
"""
from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from forecasting.core.progress import interactive, progress

REPO = Path(__file__).resolve().parents[2]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_is_drawn_on_a_terminal_only():
    tty, log = _Terminal(), io.StringIO()
    for stream in (tty, log):
        with progress(total=5, desc="work", stream=stream, mininterval=0) as bar:
            for _ in range(5):
                bar.update(1)
    assert "\r" in tty.getvalue() and "work" in tty.getvalue()
    assert log.getvalue() == ""
    assert interactive(tty) and not interactive(log)


def test_disabled_bar_keeps_the_interface():
    tty = _Terminal()
    assert list(progress(range(3), enabled=False, stream=tty)) == [0, 1, 2]  # iterates like tqdm
    bar = progress(total=3, enabled=False, stream=tty)
    bar.update(2)
    bar.set_postfix(loss="0.1")
    bar.close()
    assert tty.getvalue() == ""


def test_a_closed_or_odd_stream_is_not_interactive():
    closed = io.StringIO()
    closed.close()
    assert not interactive(closed) and not interactive(object())


# A small real fit + scoring with progress on: the training loop's bar and the backtest's bar.
FIT = textwrap.dedent("""
    import numpy as np, pandas as pd, torch
    torch.set_num_threads(1)
    from forecasting.core.config import from_dict
    from forecasting.data.series import SeriesFrame
    from forecasting.forecaster.api import Forecaster
    from forecasting.forecaster.backtest import evaluate_split
    from forecasting.forecaster.config import ForecasterConfig
    t = np.arange(600)
    vals = np.sin(2 * np.pi * t / 24)[:, None] + np.random.default_rng(0).normal(size=(600, 1)) * 0.3
    frame = SeriesFrame("s", pd.date_range("2020-01-01", periods=600, freq="h").values, vals, ("a",), "h")
    config = from_dict(ForecasterConfig, {
        "data": {"lookback": 24, "horizon": 8}, "model": {"dynamic_dim": 8, "hidden_dim": 16, "num_blocks": 1, "seg_len": 8},
        "inference": {"method": "deterministic", "eval_samples": 4},
        "training": {"epochs": 2, "max_batches_per_epoch": 40, "batch_size": 8, "device": "cpu"},
        "predict": {"samples": 8}})
    fc = Forecaster.fit(frame, config, progress=True)
    evaluate_split(fc, frame, "test", n_samples=8, progress=True)
    print("done")
""")


def _run_fit(stderr) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", FIT], cwd=REPO, stdout=subprocess.PIPE, stderr=stderr, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})


def test_fit_with_stderr_on_a_pipe_writes_no_progress_frames():
    done = _run_fit(subprocess.PIPE)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"done" in done.stdout
    assert b"\r" not in done.stderr, f"progress frames in a non-terminal stderr: {done.stderr[:500]!r}"
    assert b"epoch 1/2" not in done.stderr and b"score" not in done.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="pty semantics checked on Linux")
def test_fit_with_stderr_on_a_terminal_draws_bars():
    """The control: the same fit on a pseudo-terminal shows the training and scoring bars."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    chunks: list[bytes] = []

    def drain() -> None:  # keep the pty buffer empty so the child never blocks on a write
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # the child side closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        done = _run_fit(slave)
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    out = b"".join(chunks).decode(errors="replace")
    assert done.returncode == 0, out[-2000:]
    assert "\r" in out and re.search(r"epoch 1/2", out) and "score" in out


def test_every_progress_bar_comes_from_the_factory():
    """tqdm is imported in one place only, so no bar can bypass the terminal check."""
    offenders = [str(p.relative_to(REPO)) for root in ("forecasting", "app") for p in (REPO / root).rglob("*.py")
                 if p != REPO / "forecasting" / "core" / "progress.py"
                 and re.search(r"^\s*(from tqdm|import tqdm)", p.read_text(encoding="utf-8"), re.MULTILINE)]
    assert not offenders, f"tqdm used outside forecasting/core/progress.py: {offenders}"
