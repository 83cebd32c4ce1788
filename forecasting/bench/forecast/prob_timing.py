"""Training-step cost of ScoreVI vs ADVI vs deterministic Koopa, measured in one process (docs/evaluation.md).

The per-method rows of the benchmark run in separate processes at different moments of a
shared machine, so their step times differ by the load as much as by the algorithm. This pseudo
method (``koopa-step-timing``) measures the three in **one process, interleaved** — ScoreVI
(diagonal), ADVI (diagonal) and the deterministic (MSE) model, each for ``TIMING_STEPS`` optimiser
steps on the cell's own data, network and batch size, at the same number of Monte-Carlo weight
samples ``S`` (both engines' default ``mc_samples``), repeated ``TIMING_ROUNDS`` times — and keeps
the fastest round of each (the least disturbed by other jobs). Only pure optimiser-step time
counts (the training loop's ``train_seconds``: validation excluded).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Any

TIMING_METHOD = "koopa-step-timing"
TIMING_STEPS = 8
TIMING_ROUNDS = 2
TIMED = {"scorevi": "scorevi-koopa", "advi": "advi-koopa", "deterministic": "koopa-conformal"}


def step_timing_row(spec: dict[str, Any], cell) -> dict[str, Any]:
    """A row with ``info.step_timing`` (seconds per step, ratios) for the cell of ``spec``."""
    from forecasting.bench.forecast.prob_methods import koopa_forecaster_config
    from forecasting.data.windows import WindowDataset
    from forecasting.forecaster.api import Forecaster

    prepared = cell.prepared
    val = prepared.val
    # A few validation windows only: validation is not timed, but it still costs wall time.
    small_val = WindowDataset(prepared.scaled, val.lookback, val.horizon, val.start, val.end,
                              stride=max(1, len(val) * val.stride // 16))
    data = dataclasses.replace(prepared, val=small_val)
    budget = {**spec["budget"], "koopa_epochs": 2, "koopa_batches": TIMING_STEPS, "warm_start_epochs": 1,
              "eval_samples": 2}
    per_step: dict[str, list[float]] = {k: [] for k in TIMED}
    samples_s: dict[str, int] = {}
    t0 = time.perf_counter()
    for _ in range(TIMING_ROUNDS):
        for key, method in TIMED.items():
            config = koopa_forecaster_config({**spec, "method": method, "budget": budget})
            fc = Forecaster.fit(data, config)
            steps, seconds = fc.summary.get("steps") or 0, fc.summary.get("train_seconds") or 0.0
            per_step[key].append(seconds / steps if steps else float("nan"))
            inf = config.inference
            if inf.method == "scorevi":
                samples_s[key] = inf.scorevi.mc_samples
            elif inf.method == "advi":
                samples_s[key] = inf.advi.mc_samples
    best = {k: min(v) for k, v in per_step.items()}
    timing = {"seconds_per_step": best, "all_rounds": per_step, "mc_samples": samples_s,
              "batch_size": spec["budget"]["batch_size"], "steps_per_round": TIMING_STEPS, "rounds": TIMING_ROUNDS,
              "ratio_scorevi_advi": best["scorevi"] / best["advi"],
              "ratio_scorevi_deterministic": best["scorevi"] / best["deterministic"],
              "ratio_advi_deterministic": best["advi"] / best["deterministic"]}
    return {"seconds": {"total": time.perf_counter() - t0}, "info": {"step_timing": timing}}
