"""Worker for the distributed tests (launched by torchrun, or by hand with RANK/WORLD_SIZE set).

``python tests/distributed_worker.py MODE OUT_DIR [DATA_DIR]``

* ``fit``: ScoreVI-Koopa on a tiny slice of ETTh2 with per-rank batch ``B`` (``shared`` samples),
  then again with ``split`` samples; rank r writes ``OUT_DIR/rank{r}.pt`` with both posteriors and
  the loop's sync check. Single process (no torchrun) it uses batch ``B × WORLD`` (``--world``)
  and writes ``single.pt``: the reference the 2-process run must match.
* ``die``: rank 1 exits abruptly (``os._exit``) in its third training step; rank 0 must fail with a
  DistributedError well within the timeout.
* ``stall``: rank 1 stops responding (sleeps) in its third step; rank 0 must fail after the timeout.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from forecasting.core.config import from_dict  # noqa: E402
from forecasting.forecaster.config import ForecasterConfig  # noqa: E402

BATCH = 8


def tiny_frame(data_dir: Path):
    from forecasting.data.reader import read_series

    frame = read_series(data_dir / "ETTh2.csv")[0]
    return frame.select(("HUFL", "OT")).head(700)


def config(batch: int, samples: str = "shared", **training) -> ForecasterConfig:
    return from_dict(ForecasterConfig, {
        "data": {"lookback": 24, "horizon": 8},
        "model": {"dynamic_dim": 8, "hidden_dim": 16, "num_blocks": 1, "seg_len": 8, "dropout": 0.0},
        "inference": {"method": os.environ.get("TEST_METHOD", "scorevi"), "eval_samples": 4, "scorevi": {"mc_samples": 4},
                      "advi": {"mc_samples": 4}},
        "training": {"epochs": 1, "max_batches_per_epoch": 4, "batch_size": batch, "device": "cpu", "seed": 3,
                     "dist_samples": samples, "dist_timeout_s": float(os.environ.get("TEST_DIST_TIMEOUT", 60)), **training},
        "predict": {"samples": 8},
    })


def posterior(fc) -> dict:
    return {k: v.detach().cpu().clone() for k, v in fc.runtime.family.state_dict().items()}


def main() -> int:
    mode, out = sys.argv[1], Path(sys.argv[2])
    data_dir = Path(sys.argv[3]) if len(sys.argv) > 3 else REPO.parent / "shared" / "data"
    torch.set_num_threads(1)
    from forecasting.core import distributed as d
    from forecasting.forecaster.api import Forecaster

    world_env = int(os.environ.get("WORLD_SIZE", "1"))
    frame = tiny_frame(data_dir)
    if mode == "fit":
        if world_env == 1:  # the single-process reference with the doubled batch
            world = int(os.environ.get("TEST_REFERENCE_WORLD", "2"))
            fc = Forecaster.fit(frame, config(BATCH * world))
            torch.save({"shared": posterior(fc), "noise": fc.likelihood.state_dict()}, out / "single.pt")
            return 0
        fc = Forecaster.fit(frame, config(BATCH), run_dir=out / "run")
        shared = posterior(fc)
        noise = fc.likelihood.state_dict()
        from forecasting.bayes.distributed import state_divergence

        div_shared = state_divergence(fc.runtime.family.state_dict())
        fc2 = Forecaster.fit(frame, config(BATCH, "split"))
        div_split = state_divergence(fc2.runtime.family.state_dict())
        saved = fc.save(out / "model")
        torch.save({"shared": shared, "noise": noise, "split": posterior(fc2), "div_shared": div_shared,
                    "div_split": div_split, "rank": d.rank(), "world": d.world_size(),
                    "summary_steps": fc.summary.get("steps"), "saved": str(saved)}, out / f"rank{d.rank()}.pt")
        return 0
    if mode in ("die", "stall"):
        from forecasting.forecaster.methods import variational_task

        original = variational_task.VariationalTask.train_step

        def train_step(self, x, y, step):
            if d.rank() == 1 and step == 2:
                if mode == "die":
                    os._exit(17)
                time.sleep(3600)
            return original(self, x, y, step)

        variational_task.VariationalTask.train_step = train_step
        t0 = time.perf_counter()
        try:
            Forecaster.fit(frame, config(BATCH, max_batches_per_epoch=20, epochs=3))
        except d.DistributedError as exc:
            (out / f"error{d.rank()}.json").write_text(json.dumps({"message": str(exc), "seconds": time.perf_counter() - t0}))
            # Leave without running destructors: tearing down a gloo process group whose peer died can
            # abort in C++ ("terminate called without an active exception"), which would hide exit code 3.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(3)
        return 0
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    raise SystemExit(main())
