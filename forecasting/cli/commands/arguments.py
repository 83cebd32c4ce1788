"""Argument groups that several commands share, each declared once.

An option that more than one command takes (``--config``/``--set``, ``--model``, ``--split``, the
scoring options, ``--device``/``--threads``/``--quiet``, the data-reading options) is added by one
function here, so its flag, short form, type, default and destination are the same everywhere and
its help cannot drift between commands; a command passes only what is its own (what the data or
split is *for*). ``--data``/``--data-dir``/``--item`` come from
:func:`forecasting.cli.commands.common.add_data_arguments`.

The data-reading options (:func:`add_reading_arguments`: ``--time-col``, ``--time-format``,
``--target-cols``/``--columns``, ``--item-col``, ``--encoding``, ``--delimiter``, ``--missing``,
and for whole series ``--freq``, ``--max-mb``) are the keys of the config's ``data`` section:
``forecasting data validate`` reads with them, ``train``/``tune`` write them into the config
(a flag wins over ``--set`` and the YAML), and ``evaluate``/``backtest``/``predict`` start from the
values saved with the model. An error message that names one of these flags therefore names a
flag of the command that printed it.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any, Literal

from forecasting.cli.commands.common import add_data_arguments, count_or_zero, positive_int

SPLITS = ("train", "val", "test", "all")
MISSING_POLICIES = ("error", "interpolate", "ffill")  # forecasting.data.checks.MISSING_POLICIES (polars-free here)
# flag destination -> key of the config's data section
READING_KEYS = {"time_col": "time_col", "time_format": "time_format", "target_cols": "columns", "item_col": "item_col",
                "encoding": "encoding", "delimiter": "delimiter", "missing": "missing", "freq": "freq", "max_mb": "max_mb"}
ReadingDefaults = Literal["detected", "config", "model"]


def add_config_arguments(p: argparse.ArgumentParser, *, data_help: str,
                         config_help: str = "run config YAML (see configs/)",
                         set_help: str = "override a config value, e.g. --set training.epochs=2 "
                                         "--set inference.method=advi (repeatable)") -> None:
    """``--config``/``-c`` (required), ``--set KEY=VALUE`` (into ``args.overrides``), ``--data`` and the reading options.

    Args:
        p: the command's parser (train, tune).
        data_help: what ``--data`` is used for, and its default.
        config_help / set_help: the command's wording (e.g. the sweep's *base* config).
    """
    p.add_argument("--config", "-c", required=True, help=config_help)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    add_data_arguments(p, help_text=data_help)
    add_reading_arguments(p, defaults="config")


def add_model_arguments(p: argparse.ArgumentParser, *, data_help: str | None = None) -> None:
    """``--model``/``-m`` (a run or artifact directory) and, with ``data_help``, the series to run it on
    (``--data`` and the reading options, defaulting to the model's)."""
    p.add_argument("--model", "-m", required=True, help="run directory from `forecasting train` (or its model/ artifact)")
    if data_help is not None:
        add_data_arguments(p, help_text=data_help)
        add_reading_arguments(p, defaults="model")


def add_split_argument(p: argparse.ArgumentParser, help_text: str) -> None:
    """``--split {train,val,test,all}`` (default ``test``: never seen in training); ``help_text`` says what it ranges over."""
    p.add_argument("--split", choices=list(SPLITS), default="test", help=help_text)


def add_scoring_arguments(p: argparse.ArgumentParser, *, windows: str = "windows") -> None:
    """``--max-windows``, ``--samples``/``-n`` and ``--seed`` of a scored forecast (evaluate, backtest).

    Args:
        p: the command's parser.
        windows: what is counted (``windows`` or ``origins``).
    """
    p.add_argument("--max-windows", type=count_or_zero, default=0, help=f"at most this many evenly spaced {windows} (0 = all)")
    p.add_argument("--samples", "-n", type=positive_int, default=100,
                   help="predictive samples per window (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default %(default)s)")


def add_runtime_arguments(p: argparse.ArgumentParser, *, device_default: str | None = "auto", threads: bool = False,
                          quiet_help: str = "no progress bars") -> None:
    """``--device``, optionally ``--threads``, and ``--quiet``/``-q``.

    Args:
        p: the command's parser.
        device_default: ``auto`` (CUDA if available), or ``None`` when the config's ``device`` applies.
        threads: add ``--threads`` (torch's CPU threads).
        quiet_help: what ``--quiet`` silences for this command.
    """
    if device_default is None:
        p.add_argument("--device", help="auto, cpu or cuda (default: the config's device)")
    else:
        p.add_argument("--device", default=device_default, help="auto, cpu or cuda (default %(default)s)")
    if threads:
        p.add_argument("--threads", type=positive_int,
                       help="torch CPU threads (default: torch's choice; 1 is often faster for small models or on a "
                            "busy machine)")
    p.add_argument("--quiet", "-q", action="store_true", help=quiet_help)


def column_list(text: str) -> tuple[str, ...]:
    """argparse type: ``Demand,Temperature`` -> ``("Demand", "Temperature")``."""
    names = tuple(c.strip() for c in text.split(",") if c.strip())
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got {text!r}")
    return names


def add_reading_arguments(p: argparse.ArgumentParser, *, defaults: ReadingDefaults, series: bool = True) -> None:
    """The data-reading options as one argument group (destinations: :data:`READING_KEYS`).

    Args:
        p: the command's parser.
        defaults: what applies without the flag, for the help: ``detected`` (``data validate``: the
            reader's detection), ``config`` (train, tune: the config's ``data`` section) or ``model``
            (evaluate, backtest, predict: the reading options saved with the model).
        series: also ``--freq`` and ``--max-mb`` (commands that read whole series through
            :func:`forecasting.data.load_series`; ``predict`` streams files and uses the model's frequency).
    """
    src = {"detected": "", "config": "the config's data.{key}, else ", "model": "as the model was trained (data.{key}), else "}[defaults]
    g = p.add_argument_group("data reading options", {
        "detected": "how the file is read; train, evaluate, backtest, tune and predict take the same options",
        "config": "how the file is read, as in `forecasting data validate`; each sets the config key data.<name>",
        "model": "how the file is read, as in `forecasting data validate`; by default as the model was trained"}[defaults])

    def add(*flags: str, key: str, text: str, fallback: str, **kw: Any) -> None:
        g.add_argument(*flags, help=f"{text} (default: {src.format(key=key)}{fallback})", **kw)

    add("--time-col", key="time_col", metavar="NAME", text="timestamp column", fallback="auto-detected")
    # %% : argparse formats help strings with %
    add("--time-format", key="time_format", metavar="FORMAT",
        text="strftime format of the timestamps, e.g. '%%d/%%m/%%Y %%H:%%M' for 31/12/2016 23:00", fallback="auto-detected")
    add("--target-cols", "--columns", dest="target_cols", type=column_list, metavar="COLS", key="columns",
        text="comma-separated value columns to use, in this order; the others are not read or checked",
        fallback="every numeric column" if defaults != "model" else "the model's channels, by name")
    add("--item-col", key="item_col", metavar="NAME", text="item column of a long-format file",
        fallback="item_id, unique_id, series_id or item if present")
    add("--encoding", key="encoding", metavar="CODEC", text="text encoding of a CSV file, e.g. latin-1, cp1252, utf-16",
        fallback="utf-8")
    add("--delimiter", key="delimiter", metavar="CHAR", text="CSV delimiter, e.g. ';' or tab",
        fallback="sniffed from the header")
    add("--missing", key="missing", choices=list(MISSING_POLICIES), text="missing values and gaps: report them as errors, "
        "or fill them", fallback="error")
    if series:
        add("--freq", key="freq", metavar="ALIAS", text="pandas frequency alias (h, D, W-TUE, 30min)",
            fallback="inferred from the timestamps")
        g.add_argument("--max-mb", type=float, metavar="MB", help=_max_mb_help(src.format(key="max_mb")))


def _max_mb_help(src: str) -> str:
    """--max-mb's help with the reader's own limit (a hand-written "2048" was not it: 2 GiB = 2147 MB)."""
    try:
        from forecasting.data.reader import DEFAULT_MAX_BYTES
    except ModuleNotFoundError:  # a partial install without polars: the command reports that when run
        return "refuse files larger than this many MB"
    return f"refuse files larger than this many MB (default: {src}{DEFAULT_MAX_BYTES / 1e6:.0f})"


def reading_values(args: argparse.Namespace) -> dict[str, Any]:
    """The ``data`` section keys that the reading flags given on the command line set."""
    return {key: getattr(args, dest) for dest, key in READING_KEYS.items() if getattr(args, dest, None) is not None}


def reading_overrides(args: argparse.Namespace) -> list[str]:
    """The reading flags as ``data.KEY=VALUE`` overrides, applied after ``--set`` (a flag wins).

    Values are JSON-quoted: a JSON string is a YAML double-quoted scalar, so any text (``%d/%m/%Y``,
    ``;``, a tab) arrives exactly as given.
    """
    return [f"data.{key}={json.dumps(list(v) if isinstance(v, tuple) else v)}" for key, v in reading_values(args).items()]


def reading_section(data: Any, args: argparse.Namespace) -> Any:
    """A model's saved ``data`` section with the reading flags given applied (a flag wins)."""
    return dataclasses.replace(data, **reading_values(args))
