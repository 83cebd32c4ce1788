"""``forecasting train``: fit a forecaster from a config and write a self-contained run directory.

``runs/<id>/`` holds::

    config.yaml      the resolved config (dataset + every forecaster setting, defaults filled in)
    model/           the artifact (safetensors + JSON, checksummed) read by predict/evaluate/backtest
    metrics.json     test-split metrics (original and scaled), unless --no-eval
    run.json         command, data source, timings, versions, training summary (the schema of
                     forecasting.forecaster.runs.RunRecord, shared with the dashboard)
    train/           per-epoch metrics.jsonl and checkpoints of the training loop

The directory is written by :func:`forecasting.forecaster.runs.write_run`: built under a hidden
temporary name and renamed when complete, so a failed or interrupted run leaves nothing that
looks like a finished run. The run directory is the last line on stdout, so
``RUN=$(forecasting train ...)`` works in scripts.
"""
from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from forecasting.cli.commands.arguments import add_config_arguments, add_runtime_arguments, reading_overrides
from forecasting.cli.commands.common import (
    command_line,
    load_frame,
    positive_int,
)
from forecasting.core.errors import ForecastingError
from forecasting.core.writable import ensure_writable
from forecasting.data.seasonality import season_length
from forecasting.forecaster.runs import RunWriter, load_run_config, new_run_id, write_run

log = logging.getLogger(__name__)

EPILOG = """examples:
  forecasting train --config configs/ETTh1.yaml
  forecasting train --config configs/demo.yaml --set training.epochs=1 --set training.max_batches_per_epoch=20
  forecasting train --config configs/ETTh2.yaml --data my_copy_of_ETTh2.csv --out runs/ --run-id etth2-a
  forecasting train --config configs/demo.yaml --data meter.csv --time-format '%d/%m/%Y %H:%M' --target-cols kWh
  RUN=$(forecasting train --config configs/exchange_rate.yaml) && forecasting evaluate --model "$RUN"

The config is YAML: an optional top-level 'dataset' (registry name or file) and the forecaster
sections data/model/likelihood/inference/optim/training/predict/device; unknown keys are errors."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="fit a forecaster from a config; writes runs/<id>/",
                       description="Fit a forecaster (default: ScoreVI-Koopa) and write runs/<id>/ with the resolved "
                                   "config, the model artifact and test metrics. Prints the run directory.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(p, data_help="data to train on: a .csv/.parquet file or a registered name "
                                      "(default: the config's 'dataset')")
    p.add_argument("--out", default="runs", help="parent folder of run directories (default: %(default)s/)")
    p.add_argument("--run-id", help="name of the run directory (default: <config>-<UTC time>-<suffix>)")
    p.add_argument("--no-eval", action="store_true", help="skip the test-split evaluation")
    p.add_argument("--eval-samples", type=positive_int, default=100, help="predictive samples per test window (default %(default)s)")
    p.add_argument("--eval-windows", type=int, default=500,
                   help="evaluate on at most this many evenly spaced test windows (0 = all; default %(default)s)")
    add_runtime_arguments(p, device_default=None, threads=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    # Before the data is read and the model fitted: a run that could not be saved must not be trained.
    ensure_writable(args.out, "--out", kind="dir")
    # reading flags after --set: a flag wins, and lands in the saved config.yaml like any data.* key
    overrides = list(args.overrides) + reading_overrides(args) + ([f"device={args.device}"] if args.device else [])
    config, dataset, resolved = load_run_config(args.config, overrides, args.data)
    if not dataset:
        raise ForecastingError(f"{args.config} names no dataset; pass --data PATH_OR_NAME or add 'dataset: NAME' to the config")
    frame = load_frame(dataset, args, config.data)
    from forecasting.core.distributed import init_distributed, is_main_process

    init_distributed(timeout=config.training.dist_timeout_s)  # no-op unless launched by torchrun
    if not is_main_process():  # torchrun: the other ranks only take part in the fit; rank 0 writes the run
        from forecasting.forecaster.api import Forecaster

        Forecaster.fit(frame, config, progress=False)
        return 0
    run_id = args.run_id or new_run_id(Path(args.config).stem)
    final = Path(args.out) / run_id
    result = train_run(config, resolved, frame, dataset, final, args, progress=not args.quiet)
    _print_summary(result, final)
    print(final)
    return 0


def train_run(config, resolved: dict, frame, dataset: str, final: Path, args: argparse.Namespace | None = None,
              progress: bool = True) -> dict:
    """Fit, save and (unless ``--no-eval``) evaluate into the run directory ``final`` (built atomically);
    returns the run record as written to ``run.json``."""
    evaluate = not getattr(args, "no_eval", False)
    eval_samples = getattr(args, "eval_samples", 100)
    eval_windows = getattr(args, "eval_windows", 500)
    with write_run(final, source="cli", command=command_line(), config_source=getattr(args, "config", None)) as run:
        fc = fit_into(run, config, resolved, frame, dataset, progress)
        if evaluate:
            evaluate_into(run, fc, frame, eval_samples, eval_windows or None, progress)
    return run.record.to_dict()


def fit_into(run: RunWriter, config, resolved: dict, frame, dataset: str, progress: bool = True):
    """Write ``config.yaml``, fit (checkpoints under ``train/``) and save ``model/`` into ``run``; returns the forecaster."""
    run.write_config(resolved)
    run.record_data(frame, dataset)
    return run.fit(frame, config, checkpoints=True, progress=progress)


def evaluate_into(run: RunWriter, fc, frame, samples: int = 100, max_windows: int | None = 500, progress: bool = True):
    """Score the test split into ``run`` (record and ``metrics.json``); returns the
    :class:`~forecasting.forecaster.backtest.Scores`."""
    from forecasting.forecaster.backtest import evaluate_split

    t1 = time.perf_counter()
    scores = evaluate_split(fc, frame, "test", samples, seed=fc.config.predict.seed, max_windows=max_windows,
                            season=season_length(fc.freq), progress=progress)
    run.record_evaluation(scores, time.perf_counter() - t1)
    return scores


def _print_summary(record: dict, final: Path) -> None:
    import sys

    secs = record.get("seconds", {})
    line = f"trained {record['training_summary'].get('method', '?')} on {record['series']} in {secs.get('fit', 0):.1f}s"
    m = record.get("metrics_scaled")
    if m:
        orig = record.get("metrics", {})
        line += (f"; test ({record['test']['windows']} windows): mse {m['mse']:.4f}, mae {m['mae']:.4f} (scaled), "
                 f"crps {orig.get('crps', float('nan')):.4g}, coverage_90 {orig.get('coverage_90', float('nan')):.3f}")
    print(line, file=sys.stderr)
