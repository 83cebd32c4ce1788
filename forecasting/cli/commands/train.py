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
looks like a finished run. The run id is claimed when the run starts (``runs/<id>/`` holding only
a ``.incomplete`` marker), so a second run with the same id fails at once (exit 2). The run
directory is the last line on stdout, so ``RUN=$(forecasting train ...)`` works in scripts.

Ctrl-C or SIGTERM stops a run cleanly (exit 130 / 143) and keeps it resumable: its config and
checkpoints stay in ``runs/.<id>.partial/``, and ``forecasting train --resume <id>`` continues
from the last finished epoch with the same settings (a setting that changes results is refused)
to the result an uninterrupted run gives. ``forecasting runs list|clean`` shows and removes
unfinished runs.
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
    count_or_zero,
    positive_int,
    run_id,
)
from forecasting.core.claims import partial_path
from forecasting.core.errors import ForecastingError
from forecasting.core.writable import ensure_writable
from forecasting.data.seasonality import season_length
from forecasting.forecaster.runs import (
    CONFIG_FILE,
    RunWriter,
    config_changes,
    load_run_config,
    new_run_id,
    read_resumable,
    unfinished_message,
    unfinished_run,
    write_run,
)

log = logging.getLogger(__name__)

# The test-split evaluation after training (the options' defaults; a resumed run keeps its own).
EVAL_DEFAULTS = {"no_eval": False, "eval_samples": 100, "eval_windows": 500}

EPILOG = """examples:
  forecasting train --config configs/ETTh1.yaml
  forecasting train --config configs/demo.yaml --set training.epochs=1 --set training.max_batches_per_epoch=20
  forecasting train --config configs/ETTh2.yaml --data my_copy_of_ETTh2.csv --out runs/ --run-id etth2-a
  forecasting train --config configs/demo.yaml --data meter.csv --time-format '%d/%m/%Y %H:%M' --target-cols kWh
  forecasting train --resume etth2-a --out runs/      # continue an interrupted run (Ctrl-C, SIGTERM, a crash)
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
    p.add_argument("--run-id", type=run_id, help="name of the run directory (default: <config>-<UTC time>-<suffix>)")
    p.add_argument("--resume", metavar="RUN",
                   help="continue the interrupted run RUN (an id in --out, or runs/<id>) from its last checkpoint, "
                        "with its own config (--config/--set may not change a setting that affects results)")
    # Defaults applied in run() (None = not given), so a resumed run can tell a changed option from an omitted one.
    p.add_argument("--no-eval", action="store_true", default=None, help="skip the test-split evaluation")
    p.add_argument("--eval-samples", type=positive_int,
                   help=f"predictive samples per test window (default {EVAL_DEFAULTS['eval_samples']})")
    p.add_argument("--eval-windows", type=count_or_zero,
                   help=f"evaluate on at most this many evenly spaced test windows (0 = all; default "
                        f"{EVAL_DEFAULTS['eval_windows']})")
    for action in p._actions:  # --resume takes the run's own config, so --config is needed only without it
        if action.dest == "config":
            action.required = False
    add_runtime_arguments(p, device_default=None, threads=True)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    final, saved = _target(args)
    # Before the data is read and the model fitted: a run that could not be saved must not be trained.
    # The run's own folder, not --out: `--resume runs/<id>` names its run by path.
    ensure_writable(final.parent, "--resume" if args.resume else "--out", kind="dir")
    # reading flags after --set: a flag wins, and lands in the saved config.yaml like any data.* key
    overrides = list(args.overrides) + reading_overrides(args) + ([f"device={args.device}"] if args.device else [])
    config, dataset, resolved = load_run_config(args.config, overrides, args.data)
    if not dataset:
        raise ForecastingError(f"{args.config} names no dataset; pass --data PATH_OR_NAME or add 'dataset: NAME' to the config")
    if saved is not None:
        _check_same_settings(final, saved, resolved)
    frame = load_frame(dataset, args, config.data)
    from forecasting.core.distributed import init_distributed, is_main_process

    init_distributed(timeout=config.training.dist_timeout_s)  # no-op unless launched by torchrun
    if not is_main_process():  # torchrun: the other ranks only take part in the fit; rank 0 writes the run
        from forecasting.forecaster.api import Forecaster

        # resuming: every rank joins the loop's broadcast of rank 0's checkpoint
        Forecaster.fit(frame, config, progress=False, resume=bool(args.resume))
        return 0
    try:
        result = train_run(config, resolved, frame, dataset, final, args, progress=not args.quiet)
    except KeyboardInterrupt as exc:  # the CLI prints this one line (forecasting.cli.entry)
        exc.args = (_interrupted_hint(final),)
        raise
    _print_summary(result, final)
    print(final)
    return 0


def _target(args: argparse.Namespace) -> tuple[Path, dict | None]:
    """The run directory, and for ``--resume`` the run's saved config (``args.config`` then defaults to it).

    A new run whose id is taken is refused here, before any data is read (the atomic claim is
    made when the run directory is opened; this only makes the common case fail at once).
    Unset evaluation options get their defaults, or a resumed run's own values.
    """
    from forecasting.core.distributed import rank

    if args.resume:
        if args.run_id:
            raise ForecastingError("--resume names the run to continue; leave out --run-id")
        given = Path(args.resume)
        final = given if len(given.parts) > 1 else Path(args.out) / given
        if rank() != 0:  # torchrun: rank 0 checks and owns the run (and may hold its claim already); others read the config
            args.config = args.config or str(partial_path(final) / CONFIG_FILE)
            return final, None
        unfinished, saved = read_resumable(final)
        if not args.config:
            args.config = str(unfinished.staging / CONFIG_FILE)
        options = {**EVAL_DEFAULTS, **(unfinished.marker.get("options") or {})}
        changed = [f"--{k.replace('_', '-')} {getattr(args, k)!r} (was {v!r})" for k, v in options.items()
                   if getattr(args, k) is not None and getattr(args, k) != v]
        if changed:
            raise ForecastingError(f"--resume {final.name}: {', '.join(changed)} would change the run's results; "
                                   "leave it out to resume, or start a new run")
    else:
        if not args.config:
            raise ForecastingError("train needs --config CONFIG (or --resume RUN to continue an interrupted run)")
        final = Path(args.out) / (args.run_id or new_run_id(Path(args.config).stem))
        unfinished = unfinished_run(final)
        stale = unfinished is not None and unfinished.state == "interrupted" and not unfinished.resumable
        if final.exists() and rank() == 0 and not stale:  # a stale placeholder is cleaned when the run starts
            raise ForecastingError(unfinished_message(final))
        options, saved = EVAL_DEFAULTS, None
    for k, v in options.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    return final, saved


def _check_same_settings(final: Path, saved: dict, resolved: dict) -> None:
    """Refuse a resume whose --config/--set/--data would change a setting that affects results."""
    changes = config_changes(saved, resolved)
    if changes:
        more = f" and {len(changes) - 4} more" if len(changes) > 4 else ""
        raise ForecastingError(f"--resume {final.name}: the run was started with other settings ({'; '.join(changes[:4])}"
                               f"{more}); resume without the options that change them, or start a new run")


def _interrupted_hint(final: Path) -> str:
    """What an interruption left, for the CLI's one line."""
    unfinished = unfinished_run(final)
    if unfinished is not None and unfinished.resumable:
        return (f"run {final.name} kept for resuming ({unfinished.staging}): forecasting train --resume {final.name} "
                f"--out {final.parent}")
    if unfinished is None and final.is_dir():
        return f"run {final} was complete before the interruption took effect"
    return "nothing was kept (the run had not started training)"


def train_run(config, resolved: dict, frame, dataset: str, final: Path, args: argparse.Namespace | None = None,
              progress: bool = True) -> dict:
    """Fit, save and (unless ``--no-eval``) evaluate into the run directory ``final`` (built atomically;
    kept resumable on an interruption; with ``--resume`` continued from its checkpoints); returns the
    run record as written to ``run.json``."""
    options = {k: v if getattr(args, k, None) is None else getattr(args, k) for k, v in EVAL_DEFAULTS.items()}
    evaluate, eval_samples, eval_windows = not options["no_eval"], options["eval_samples"], options["eval_windows"]
    with write_run(final, source="cli", command=command_line(), config_source=getattr(args, "config", None),
                   resumable=True, resume=bool(getattr(args, "resume", None)), options=options) as run:
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
