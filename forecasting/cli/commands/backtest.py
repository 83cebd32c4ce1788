"""``forecasting backtest``: rolling-origin evaluation, metrics per window and aggregated."""
from __future__ import annotations

import argparse
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
    atomic_write_text,
    command_line,
    load_forecaster,
    load_frame,
    positive_int,
    write_json,
)
from forecasting.cli.commands.evaluate import data_source, format_metrics
from forecasting.data.seasonality import season_length

EPILOG = """Origins advance by --step rows (default: the horizon, so windows do not overlap) over the
chosen range; the model is not refitted (it was trained on its own training split). Writes
  OUT/windows.csv   one row per origin: window, origin, crps, mae, mse, coverage_90, interval_width_90
  OUT/summary.json  aggregated metrics (original and scaled) and the command
and prints the aggregated metrics.

examples:
  forecasting backtest --model runs/demo
  forecasting backtest --model runs/etth1-... --split all --step 24 --horizon 24 --out bt/"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("backtest", help="rolling-origin backtest of a trained model: metrics per window and aggregated",
                       description="Forecast from rolling origins and score each window and all together.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p, data_help="series to backtest on (default: the run's training data)")
    add_split_argument(p, "range of the origins (default %(default)s; 'all' = the whole series)")
    p.add_argument("--step", type=positive_int, help="rows between origins (default: the model's horizon)")
    p.add_argument("--horizon", "-H", type=positive_int, help="steps scored per window (default: the model's horizon)")
    add_scoring_arguments(p, windows="origins")
    p.add_argument("--out", help="output folder (default: <model>/backtest)")
    add_runtime_arguments(p, quiet_help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import polars as pl

    from forecasting.forecaster.backtest import backtest
    from forecasting.core.errors import ForecastingError
    from forecasting.core.writable import ensure_writable

    # Before the backtest: a folder that cannot be written (e.g. a read-only model directory) must not cost it.
    # The default folder is checked once the model has loaded, so a wrong --model is reported as such.
    out = Path(args.out) if args.out else Path(args.model) / "backtest"
    if args.out:
        ensure_writable(out, "--out", kind="dir")
    fc = load_forecaster(args.model, args.device)
    if not args.out:
        ensure_writable(out, "the default --out (<model>/backtest)", kind="dir")
    if args.horizon and args.horizon > fc.horizon:
        raise ForecastingError(f"--horizon {args.horizon} is beyond the model's horizon {fc.horizon}; ask for at most {fc.horizon}")
    frame = load_frame(data_source(args), args, reading_section(fc.config.data, args))
    scores = backtest(fc, frame, args.split, args.step, args.max_windows or None, args.samples, args.seed, args.horizon,
                      season=season_length(fc.freq), progress=not args.quiet)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "windows.csv", pl.DataFrame(scores.per_window).write_csv())
    write_json(out / "summary.json", {
        "command": command_line(), "model": str(args.model), "series": frame.name, "split": args.split,
        "step": args.step or fc.horizon, "horizon": args.horizon or fc.horizon, "windows": scores.n_windows,
        "samples": scores.n_samples, "metrics": scores.metrics, "metrics_scaled": scores.metrics_scaled,
        "reliability": scores.reliability,
    })
    print(f"{frame.name} {args.split}: {scores.n_windows} origins every {args.step or fc.horizon} rows; "
          f"per-window table {out / 'windows.csv'}", file=sys.stderr)
    print(format_metrics(scores.metrics, scores.metrics_scaled))
    return 0
