"""``forecasting predict``: forecast many series from files with a trained model (streaming, atomic)."""
from __future__ import annotations

import argparse
import sys

from forecasting.cli.commands.arguments import (
    add_model_arguments,
    add_reading_arguments,
    add_runtime_arguments,
    reading_section,
)
from forecasting.cli.commands.common import load_forecaster, positive_int, quantile_list

DESCRIPTION = """Forecast every series in the input files with a trained model and write one long table.

INPUT is a .csv/.parquet file, a directory of them, or a quoted glob ('data/*.parquet').
Each file is either
  long:  an item column (item_id | unique_id | series_id | item), a timestamp column, and
         - one column per training channel, named as at training (e.g. Demand, Temperature), or
         - for a one-channel model, a single 'target' (or 'value') column, or
         - a 'channel' column naming the training channel plus a 'value' (or 'target') column
           (one row per item, timestamp and channel);
  wide:  no item column: timestamp + the training channels; the file is one series whose
         item_id is the file name.
Rows may come in any order. Each series needs at least `lookback` rows; its last `lookback`
rows are used and must be regular at the model's frequency, complete and without duplicates.

OUTPUT (.parquet or .csv) has one row per item, (channel,) and step:
  item_id, channel (multi-channel models only), timestamp, mean, median, q0.05 ... q0.95
ordered by input file (sorted paths), then item_id (sorted), channel and time.
It is written to a temporary file and renamed when complete: on any error or Ctrl-C nothing
is written and an existing OUTPUT is left untouched. Memory stays flat in the number of
series (items are read --chunk-items at a time, forecast --batch-size at a time)."""

EPILOG = """examples:
  forecasting predict --model runs/demo --input history.csv --output forecast.parquet
  forecasting predict --model runs/etth1-... --input 'shards/*.parquet' --output fc.csv --samples 200 --quantiles 0.1,0.5,0.9
  forecasting predict --model runs/demo --input panel/ --output fc.parquet --horizon 24 --skip-invalid
  forecasting predict --model runs/demo --input panel/ --output fc.parquet --shard 0/4   # ... 1/4, 2/4, 3/4 anywhere
  forecasting merge-shards fc.parquet --shards 4     # = the single-process fc.parquet"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="forecast series from files with a trained model (streaming)",
                       description=DESCRIPTION, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_model_arguments(p)
    p.add_argument("--input", "-i", required=True, action="append", metavar="FILE|GLOB|DIR",
                   help="input file, directory or quoted glob (repeatable)")
    p.add_argument("--output", "-o", required=True, metavar="FILE.parquet|FILE.csv", help="where to write the forecasts")
    p.add_argument("--samples", "-n", type=positive_int, help="predictive samples per series (default: the model's predict.samples)")
    p.add_argument("--quantiles", type=quantile_list, metavar="Q,Q,...",
                   help="quantile levels of the q<level> columns (default: the model's predict.quantiles)")
    p.add_argument("--horizon", "-H", type=positive_int, help="steps to forecast (at most the model's horizon; default: all)")
    p.add_argument("--seed", type=int, help="sampling seed (default: the model's; same seed -> identical output)")
    p.add_argument("--batch-size", type=positive_int, default=512, help="series per model call (default %(default)s)")
    p.add_argument("--chunk-items", type=positive_int, default=4096, help="series read from a file at once (default %(default)s)")
    p.add_argument("--skip-invalid", action="store_true",
                   help="leave out series that fail a check (too short, gaps, missing values) instead of stopping; "
                        "if every series fails, nothing is written and the command fails")
    p.add_argument("--value-col", help="value column for a one-channel model or with --channel-col (default: target/value)")
    p.add_argument("--channel-col", help="column naming the channel of each row (default: channel, if present)")
    # --time-col, --time-format, --target-cols, --item-col, --encoding, --delimiter, --missing: as train's,
    # defaulting to what the model was trained with (a model trained on 31/12/2016 23:00 reads them again)
    add_reading_arguments(p, defaults="model", series=False)
    add_runtime_arguments(p, threads=True, quiet_help="no progress bar or summary")
    p.add_argument("--shard", metavar="I/N",
                   help="forecast only shard I of N (0-based) into OUTPUT.shard-I-of-N.EXT; after all N ran, "
                        "`forecasting merge-shards OUTPUT --shards N` gives the single-process output. Under torchrun "
                        "(no --shard) each rank is a shard and rank 0 merges")
    p.set_defaults(func=run)
    m = sub.add_parser("merge-shards", help="merge the outputs of `forecasting predict --shard I/N` into one file",
                       description="Merge OUTPUT.shard-0-of-N.EXT ... OUTPUT.shard-(N-1)-of-N.EXT into OUTPUT "
                                   "(rows and order as a single-process run); the shard files are then removed.")
    m.add_argument("output", metavar="OUTPUT", help="the --output given to the shard runs")
    m.add_argument("--shards", type=positive_int, required=True, metavar="N", help="number of shards")
    m.add_argument("--keep", action="store_true", help="keep the shard files")
    m.set_defaults(func=run_merge)


def run(args: argparse.Namespace) -> int:
    from forecasting.forecaster.batch.predict import InputSpec, PredictOptions, check_output, predict_files
    from forecasting.forecaster.batch.sharding import parse_shard, shard_from_env, shard_path

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    launched = args.shard is None and shard_from_env() is not None  # torchrun: one shard per rank
    shard = parse_shard(args.shard) if args.shard is not None else shard_from_env()
    # Before the model is loaded: an output that cannot be written must not cost a forecast.
    check_output(args.output)
    if shard:
        check_output(shard_path(args.output, *shard))
    fc = load_forecaster(args.model, args.device)
    cfg = fc.config.predict
    options = PredictOptions(
        n_samples=args.samples or cfg.samples,
        quantiles=args.quantiles or tuple(cfg.quantiles),
        horizon=args.horizon,
        seed=cfg.seed if args.seed is None else args.seed,
        batch_size=args.batch_size,
        chunk_items=args.chunk_items,
        on_invalid="skip" if args.skip_invalid else "error",
        progress=not args.quiet,
        shard=shard,
    )
    data = reading_section(fc.config.data, args)
    spec = InputSpec(item_col=data.item_col, time_col=data.time_col, channel_col=args.channel_col,
                     value_col=args.value_col, time_format=data.time_format, value_cols=args.target_cols,
                     encoding=data.encoding, delimiter=data.delimiter, missing=data.missing)
    summary = predict_files(fc, args.input, shard_path(args.output, *shard) if shard else args.output, options, spec)
    if launched:
        _merge_on_rank0(args.output, shard[1])
    if not args.quiet:
        skipped = f", skipped {len(summary.skipped)} invalid" if summary.skipped else ""
        print(f"forecast {summary.series} series from {summary.files} file(s){skipped} in {summary.seconds:.2f}s "
              f"({summary.series_per_second:.0f} series/s); {summary.rows} rows", file=sys.stderr)
    print(summary.output)
    return 0


def _merge_on_rank0(output: str, n: int) -> None:
    """torchrun-launched predict: wait for every rank (gloo, CPU only), then rank 0 merges."""
    import os

    from forecasting.core.distributed import barrier, init_distributed, is_main_process
    from forecasting.forecaster.batch.sharding import merge_shards, shard_path

    # Ranks finish at different times: allow long waits (a dead rank still fails at once).
    init_distributed(backend="gloo", timeout=float(os.environ.get("FORECASTING_DIST_TIMEOUT", 3600)))
    barrier("waiting for every predict shard")
    if is_main_process():
        paths = [shard_path(output, i, n) for i in range(n)]
        merge_shards(paths, output)
        for p in paths:
            p.unlink()


def run_merge(args: argparse.Namespace) -> int:
    from forecasting.core.writable import ensure_writable
    from forecasting.forecaster.batch.sharding import merge_shards, shard_path

    ensure_writable(args.output, "OUTPUT")
    paths = [shard_path(args.output, i, args.shards) for i in range(args.shards)]
    rows = merge_shards(paths, args.output)
    if not args.keep:
        for p in paths:
            p.unlink()
    print(f"merged {args.shards} shards: {rows} rows", file=sys.stderr)
    print(args.output)
    return 0
