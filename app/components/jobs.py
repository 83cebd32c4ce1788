"""Training jobs (a background process per run) and the saved runs in ``runs/`` (no Streamlit here).

:class:`TrainJob` starts :mod:`train_worker` in a subprocess, reads its ``status.json`` for the
progress bar and stops it on *Cancel*. :func:`list_runs` finds every run directory with a
complete model artifact — runs written by ``forecasting train`` and by the dashboard alike
(both through :mod:`forecasting.forecaster.runs`).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from forecasting.data.series import SeriesFrame

WORKER = Path(__file__).resolve().with_name("train_worker.py")


def save_frame(frame: SeriesFrame, path: Path) -> Path:
    """The series as ``.npz`` (no pickle) for the worker process."""
    meta = {"name": frame.name, "columns": list(frame.columns), "freq": frame.freq, "item_id": frame.item_id,
            "source": str(frame.meta.get("source", ""))}
    np.savez(path, timestamps=frame.timestamps.astype("datetime64[ns]").astype(np.int64),
             values=np.asarray(frame.values, dtype=np.float64), meta=np.array(json.dumps(meta)))
    return path


@dataclass
class Progress:
    """What the progress bar shows."""

    state: str  # running | done | error | cancelled
    fraction: float
    message: str
    run_dir: Path | None = None
    elapsed_s: float = 0.0


class TrainJob:
    """One background training run.

    Args:
        frame: the series to train on.
        config: the ScoreVI-Koopa :class:`ForecasterConfig` as a dict.
        runs_dir: where the finished run directory goes.
        run_id: its name.
        deterministic_config: optional config of the deterministic peer.
        val_windows: validation windows for early stopping.
        extra: recorded in ``run.json`` (dataset, data_file, data_digest, key).
    """

    def __init__(self, frame: SeriesFrame, config: dict[str, Any], runs_dir: str | Path, run_id: str, *,
                 deterministic_config: dict[str, Any] | None = None, val_windows: int = 0,
                 extra: dict[str, Any] | None = None):
        self.run_id = run_id
        self.runs_dir = Path(runs_dir).resolve()
        self.key = (extra or {}).get("key")
        self.job_dir = Path(tempfile.mkdtemp(prefix="forecasting-dashboard-job-"))
        save_frame(frame, self.job_dir / "frame.npz")
        from app.components.settings import torch_threads

        job = {"config": config, "deterministic_config": deterministic_config, "val_windows": val_windows,
               "threads": torch_threads(),
               "runs_dir": str(self.runs_dir), "run_id": run_id, **(extra or {})}
        (self.job_dir / "job.json").write_text(json.dumps(job, default=str), encoding="utf-8")
        self.log_path = self.job_dir / "worker.log"
        self.started = time.time()
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        with open(self.log_path, "wb") as log:
            # A new session: SIGTERM reaches the worker only, never the Streamlit server.
            self.proc = subprocess.Popen([sys.executable, str(WORKER), str(self.job_dir)], stdout=log,
                                         stderr=subprocess.STDOUT, env=env, start_new_session=True)
        self._final: Progress | None = None

    # -- status ---------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        try:
            return json.loads((self.job_dir / "status.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {"state": "running", "message": "starting Python and torch", "phases": [], "epochs_done": 0}

    def running(self) -> bool:
        return self.proc.poll() is None

    def progress(self) -> Progress:
        """State, a 0..1 fraction (finished epochs plus a time estimate of the current one) and a message."""
        if self._final is not None:
            return self._final
        st = self.status()
        now = time.time()
        state = st.get("state", "running")
        if state == "running" and not self.running():
            tail = self.log_tail()
            state, st["message"] = "error", f"the training process stopped unexpectedly (exit code {self.proc.returncode}): {tail}"
        fraction = 1.0 if state == "done" else _fraction(st, now)
        run_dir = Path(st["run_dir"]) if st.get("run_dir") else None
        prog = Progress(state, fraction, str(st.get("message", "")), run_dir, now - self.started)
        if state != "running" and not self.running():
            self._final = prog
        return prog

    def log_tail(self, lines: int = 3) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    # -- control --------------------------------------------------------------------------------
    def cancel(self, timeout: float = 10.0) -> None:
        """Stop the worker (its staged run directory is removed) and wait for it."""
        if self.running():
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            except ProcessLookupError:
                pass
        self._final = Progress("cancelled", 0.0, "cancelled; no run directory was written", None, time.time() - self.started)

    def wait(self, timeout: float | None = None) -> Progress:
        """Block until the worker ends (tests, scripts)."""
        self.proc.wait(timeout=timeout)
        return self.progress()

    def cleanup(self) -> None:
        """Remove the job's scratch directory (the run directory stays)."""
        if not self.running():
            shutil.rmtree(self.job_dir, ignore_errors=True)


def _fraction(st: dict[str, Any], now: float) -> float:
    """Finished phases count fully; the current one by epochs done or by its share of the time budget
    (a phase ends at its budget even when epochs remain), whichever is further."""
    phases = [int(e) for _, e in st.get("phases", [])]
    total = sum(phases)
    if not total:
        return 0.0
    k = min(int(st.get("phase", 0)), len(phases) - 1)
    by_epochs = int(st.get("phase_epochs_done", 0)) / max(phases[k], 1)
    budget = st.get("budget_s")
    by_time = (now - float(st.get("phase_started", now))) / float(budget) if budget else 0.0
    current = min(0.97, max(by_epochs, by_time))
    return min(0.99, (sum(phases[:k]) + current * phases[k]) / total)


def list_runs(runs_dir: str | Path) -> list[dict[str, Any]]:
    """Run directories under ``runs_dir`` holding a complete model (newest first), as the page uses them.

    The listing is :func:`forecasting.forecaster.runs.list_runs` (runs of ``forecasting train``, of
    the dashboard and of the old layouts alike). Each entry: ``path``, ``name``, ``created``
    (mtime), ``meta`` (the normalized ``run.json``, or ``{}``), ``model`` (the artifact directory)
    and ``deterministic`` (the peer's artifact or ``None``).
    """
    from forecasting.forecaster.runs import list_runs as _list_runs

    return [{"path": r.path, "name": r.name, "created": r.created, "meta": r.meta, "model": r.model,
             "deterministic": r.baselines.get("deterministic")} for r in _list_runs(runs_dir)]
