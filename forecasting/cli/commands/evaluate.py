"""``forecasting evaluate``: test-split metrics (CRPS, coverage, ...) of a trained model on a series."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from forecasting.cli.commands.arguments import (
    add_model_arguments,
    add_runtime_arguments,
    add_scoring_arguments,
    add_split_argument,
    reading_section,
)
from forecasting.cli.commands.common import (
    command_line,
    load_forecaster,
    load_frame,
    positive_int,
    read_run_meta,
    write_json,
)
from forecasting.core.errors import ForecastingError
from forecasting.data.seasonality import season_length

EPILOG = """Metrics (docs/evaluation.md): mse (of the sample mean), mae (of the median), crps (fair ensemble
estimator), mean_wql, coverage_50/80/90/95 and interval_width_*, msis, nll (KDE), pit_error;
on the original scale, and mse/mae/crps also on the standard-scaled data (the paper's scale).

examples:
  forecasting evaluate --model runs/demo
  forecasting evaluate --model runs/etth1-... --data ../shared/data/ETTh1.csv --samples 200 --out metrics.json"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="metrics of a trained model on a split of a series (test by default)",
                       description="Forecast every window of a split (the model's split rule) and score it.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p, data_help="series to evaluate on (default: the run's training data)")
    add_split_argument(p, "which part of the series (default %(default)s)")
    p.add_argument("--stride", type=positive_int, default=1, help="rows between window origins (default %(default)s: every window)")
    add_scoring_arguments(p, windows="windows")
    p.add_argument("--out", help="also write the metrics as JSON here")
    add_runtime_arguments(p, quiet_help="no progress bar")
    p.set_defaults(func=run)


def data_source(args: argparse.Namespace) -> str:
    """``--data``, else the dataset recorded in the run."""
    if args.data:
        return args.data
    meta = read_run_meta(args.model)
    if meta.get("dataset"):
        return meta["dataset"]
    raise ForecastingError(f"{args.model} records no dataset (not a `forecasting train` run); pass --data PATH_OR_NAME")


def run(args: argparse.Namespace) -> int:
    from forecasting.core.writable import ensure_writable
    from forecasting.forecaster.backtest import evaluate_split

    if args.out:  # before the scoring: a --out that cannot be written must not cost it
        ensure_writable(args.out, "--out")
    fc = load_forecaster(args.model, args.device)
    frame = load_frame(data_source(args), args, reading_section(fc.config.data, args))
    scores = evaluate_split(fc, frame, args.split, args.samples, args.seed, args.stride, args.max_windows or None,
                            season=season_length(fc.freq), progress=not args.quiet)
    result = {"command": command_line(), "model": str(args.model), "series": frame.name, "split": args.split,
              "windows": scores.n_windows, "samples": scores.n_samples, "metrics": scores.metrics,
              "metrics_scaled": scores.metrics_scaled, "reliability": scores.reliability}
    if args.out:
        write_json(Path(args.out), result)
    print(f"{frame.name} {args.split}: {scores.n_windows} windows x {scores.n_samples} samples, method {fc.method}", file=sys.stderr)
    print(format_metrics(scores.metrics, scores.metrics_scaled))
    return 0


def format_metrics(metrics: dict, scaled: dict) -> str:
    """Two-column text table: metric, original scale, scaled."""
    lines = [f"{'metric':<22}{'original':>14}{'scaled':>14}"]
    for key, value in metrics.items():
        if key == "n_points":
            continue
        s = scaled.get(key)
        lines.append(f"{key:<22}{_num(value):>14}{_num(s) if s is not None else '':>14}")
    return "\n".join(lines)


def _num(v) -> str:
    if v is None:
        return "-"
    try:
        return f"{float(v):.5g}"
    except (TypeError, ValueError):
        return json.dumps(v)
