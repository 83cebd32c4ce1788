"""Background training for the dashboard: ``python train_worker.py JOB_DIR`` (started by :mod:`jobs`).

Training runs in its own process so that the page stays responsive, the *Cancel* button can
stop it at once (SIGTERM; the half-built run directory is removed), and a crash cannot take the
server down. The process writes its run through the facade's run writer,
:func:`forecasting.forecaster.runs.write_run` (the one the CLI uses, so the layout and the
``run.json`` schema are the CLI's)::

    runs/<id>/model/                      the ScoreVI-Koopa artifact (what `--model runs/<id>` loads)
    runs/<id>/config.yaml                 resolved config
    runs/<id>/run.json                    what was trained on what, training summary (source "dashboard")
    runs/<id>/baselines/deterministic/    the deterministic Koopa peer (optional)

The directory is staged under a hidden temporary name and renamed when complete. Progress goes
to ``JOB_DIR/status.json`` (replaced atomically), read by the page: :meth:`Forecaster.fit` reports
every epoch of every phase (``on_epoch``), which :func:`epoch_hook` turns into status updates.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

log = logging.getLogger("forecasting.dashboard.worker")



class Status:
    """The job's ``status.json``: state, current phase and epoch, timestamps."""

    def __init__(self, job_dir: Path, phases: list[tuple[str, int]], budget_s: float | None = None):
        self.path = job_dir / "status.json"
        self.data: dict[str, Any] = {
            "state": "running", "phases": [[n, e] for n, e in phases], "phase": 0, "epochs_done": 0,
            "phase_epochs_done": 0, "phase_started": time.time(), "budget_s": budget_s,
            "last_epoch": 0, "started": time.time(), "updated": time.time(), "message": "starting", "pid": os.getpid(),
        }
        self.write()

    def update(self, **changes: Any) -> None:
        self.data.update(changes, updated=time.time())
        self.write()

    def write(self) -> None:
        # The page polls this file while the worker rewrites it: readers must never see half of it.
        from forecasting.core.atomic import atomic_write_text

        atomic_write_text(self.path, json.dumps(self.data))


def epoch_hook(status: Status, phase_index: dict[str, int]):
    """``on_epoch`` for :meth:`Forecaster.fit`: maps the fit's phases (``warm_start``, ``posterior``,
    ``train``) to the page's phase rows and records each finished epoch."""

    def on_epoch(phase: str, record: dict[str, Any]) -> None:
        d = status.data
        idx = phase_index.get(phase, d["phase"])
        if idx != d["phase"]:
            d["phase_started"] = time.time()
            in_phase = 1
        else:
            in_phase = d["phase_epochs_done"] + 1
        epoch = int(record["epoch"])
        status.update(phase=idx, last_epoch=epoch, epochs_done=d["epochs_done"] + 1, phase_epochs_done=in_phase,
                      message=f"{d['phases'][idx][0]}: epoch {epoch} done")

    return on_epoch


def _load_frame(path: Path):
    import numpy as np

    from forecasting.data.series import SeriesFrame

    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        return SeriesFrame(meta["name"], z["timestamps"].astype("datetime64[ns]"), z["values"], tuple(meta["columns"]),
                           meta["freq"], meta["item_id"], {"source": meta.get("source", "")})


def _prepared(frame, config, val_windows: int):
    """Windows per the config, with the validation set thinned to ``val_windows`` evenly spaced windows
    (early stopping needs a stable estimate, not every stride-1 window)."""
    import dataclasses

    from forecasting.data.windows import WindowDataset, prepare

    data = prepare(frame, config.data.lookback, config.data.horizon, config.data.split)
    val = data.val
    if val_windows and len(val) > val_windows:
        stride = -(-len(val) // val_windows)
        data = dataclasses.replace(data, val=WindowDataset(data.scaled, val.lookback, val.horizon, val.start, val.end, stride))
    return data


def run(job_dir: Path) -> int:
    job = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    det_cfg_dict = job.get("deterministic_config")
    main_cfg = job["config"]
    from forecasting.forecaster.config import InferenceSection

    phases = []
    if main_cfg["inference"].get("warm_start_epochs", InferenceSection.warm_start_epochs) > 0:
        phases.append(("MAP warm start", int(main_cfg["inference"]["warm_start_epochs"])))
    phases.append(("ScoreVI posterior", int(main_cfg["training"]["epochs"])))
    if det_cfg_dict:
        phases.append(("deterministic Koopa (peer)", int(det_cfg_dict["training"]["epochs"])))
    status = Status(job_dir, phases, main_cfg["training"].get("time_budget_s"))

    def _term(signum, frame):  # noqa: ARG001 - signal handler signature
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _term)
    try:
        from forecasting.core.config import from_dict
        from forecasting.forecaster.config import ForecasterConfig
        from forecasting.forecaster.runs import write_run

        import torch

        torch.set_num_threads(int(job.get("threads") or torch.get_num_threads()))
        status.update(message="preparing data")
        frame = _load_frame(job_dir / "frame.npz")
        config = from_dict(ForecasterConfig, main_cfg)
        data = _prepared(frame, config, int(job.get("val_windows", 0)))
        final = Path(job["runs_dir"]) / job["run_id"]
        with write_run(final, source="dashboard", cache_key=job.get("key")) as run:
            n_main = len(phases) - (1 if det_cfg_dict else 0)
            warm = n_main == 2
            run.record_data(frame, job.get("dataset"), data_file=job.get("data_file"), data_digest=job.get("data_digest"))
            status.update(phase_started=time.time(), message=f"{phases[0][0]}: training")
            run.fit(data, config, on_epoch=epoch_hook(status, {"warm_start": 0, "posterior": int(warm), "train": 0}))
            run.write_config(main_cfg)
            if det_cfg_dict:
                status.update(phase=n_main, last_epoch=0, phase_epochs_done=0, phase_started=time.time(),
                              message=f"{phases[n_main][0]}: training")
                run.fit_baseline("deterministic", data, from_dict(ForecasterConfig, det_cfg_dict),
                                 on_epoch=epoch_hook(status, {"train": n_main}))
            status.update(message="saving")
        status.update(state="done", run_dir=str(final), message="done", finished=time.time())
        return 0
    except KeyboardInterrupt:
        status.update(state="cancelled", message="cancelled; no run directory was written", finished=time.time())
        return 130
    except Exception as exc:  # noqa: BLE001 - reported to the page; bugs keep their traceback in the job log
        from forecasting.core.errors import ForecastingError

        user = isinstance(exc, ForecastingError)
        if not user:
            traceback.print_exc()
        status.update(state="error", message=str(exc) if user else f"internal error: {type(exc).__name__}: {exc}",
                      user_error=user, finished=time.time())
        return 2 if user else 1


if __name__ == "__main__":  # pragma: no cover - exercised through jobs.TrainJob in the tests
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    sys.exit(run(Path(sys.argv[1])))
