"""``forecasting tune``: Optuna sweep over config keys; writes the best config, plots and a summary."""
from __future__ import annotations

import argparse
import sys

from forecasting.cli.commands.arguments import add_config_arguments, reading_overrides
from forecasting.cli.commands.common import command_line, positive_int

EPILOG = """examples:
  forecasting tune --config configs/ETTh2.yaml --space configs/sweeps/default.yaml --trials 30
  forecasting tune --config configs/demo.yaml --space configs/sweeps/default.yaml --trials 12 --workers 2 \\
      --set training.epochs=2 --set training.max_batches_per_epoch=50
  forecasting tune --config configs/ETTh2.yaml --space configs/sweeps/pareto.yaml --trials 20   # CRPS vs train time
  forecasting train --config runs/tune/ETTh2-default/best.yaml                                  # retrain the best

Many machines, one study (each machine runs the same command; trials add up):
  forecasting tune --config configs/ETTh2.yaml --space configs/sweeps/default.yaml --trials 20 --workers 4 \\
      --storage postgresql://USER:PASSWORD@HOST:5432/optuna --study etth2-lambda-S

The search space names dotted config keys with distributions (float/int, uniform or log, categorical);
unknown keys are errors. The same storage + --study name continues a study; --trials 0 only rewrites
the report from the storage. Outputs (default runs/tune/<study>/): best.yaml, trials.csv, summary.md,
history/importances/contour/intermediate PNG + HTML, and study.journal (the default storage)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tune", help="hyperparameter sweep with Optuna (proximal weight, MC samples, ...)",
                       description="Search config values with Optuna on the validation CRPS (optionally also the "
                                   "training time: Pareto front), with pruning, parallel workers and shared storage.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(p, config_help="base run config YAML (see configs/)",
                         set_help="override a base config value before the sweep, e.g. --set training.epochs=3 "
                                  "(repeatable)",
                         data_help="data to tune on: a .csv/.parquet file or a registered name "
                                   "(default: the config's 'dataset')")
    p.add_argument("--space", "-s", default="configs/sweeps/default.yaml",
                   help="search-space YAML (default %(default)s)")
    p.add_argument("--trials", "-n", type=int, default=20,
                   help="trials this command runs, split among the workers (default %(default)s; 0 = only write the report)")
    p.add_argument("--workers", "-j", type=positive_int, default=1, help="local worker processes sharing the study (default %(default)s)")
    p.add_argument("--storage", help="Optuna storage: an RDB URL (postgresql://..., mysql+pymysql://..., sqlite:///f.db) "
                                     "or a journal file path (default: <out>/study.journal)")
    p.add_argument("--study", help="study name (default <config stem>-<space stem>); same name + storage = same study")
    p.add_argument("--timeout", type=float, help="seconds after which no new trial starts (per worker)")
    p.add_argument("--out", help="output folder (default runs/tune/<study>)")
    p.add_argument("--objectives", help="comma-separated objectives replacing the space file's: val_crps or "
                                        "val_crps,train_seconds (Pareto front; no pruning)")
    p.add_argument("--seed", type=int, help="sampler seed (replaces the space file's)")
    p.add_argument("--threads", type=positive_int, help="torch threads per worker (default: CPU cores / workers)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from forecasting.tuning.study import TuneJob, tune

    objectives = tuple(o.strip() for o in args.objectives.split(",") if o.strip()) if args.objectives else None
    job = TuneJob(config=args.config, space=args.space, trials=args.trials, workers=args.workers, storage=args.storage,
                  study=args.study, timeout=args.timeout, out=args.out,
                  overrides=tuple(args.overrides) + tuple(reading_overrides(args)), data=args.data,
                  data_dir=args.data_dir, objectives=objectives, seed=args.seed, threads=args.threads,
                  command=command_line())
    result = tune(job)
    counts = ", ".join(f"{k.lower()} {v}" for k, v in sorted(result.states.items()))
    line = f"study {result.study_name}: {result.n_trials} trials ({counts})"
    if result.best_values is not None:
        line += f"; best val_crps {result.best_values[0]:.5g} with " + ", ".join(
            f"{k.split('.')[-1]}={v:.4g}" if isinstance(v, float) else f"{k.split('.')[-1]}={v}"
            for k, v in (result.best_params or {}).items())
    print(line, file=sys.stderr)
    print(f"summary: {result.summary_md}", file=sys.stderr)
    print(result.out)
    return 0
