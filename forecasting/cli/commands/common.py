"""Helpers shared by the run commands (train, predict, evaluate, backtest, demo): argument types,
``--data`` reading, the command line for records.

Run directories (``runs/<id>/``, ``run.json``), ``--model`` resolution and run-config reading
live in the facade, :mod:`forecasting.forecaster.runs`, shared with the dashboard; the names
are re-exported here for the commands.
"""
from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from forecasting.core.atomic import atomic_write_text  # noqa: F401  (re-exported for commands)
from forecasting.forecaster.runs import (  # noqa: F401  (re-exported for commands)
    load_forecaster,
    load_run_config,
    new_run_id,
    read_run_meta,
    resolve_model_dir,
    write_json,
)

if TYPE_CHECKING:
    from forecasting.forecaster.config import DataSection

log = logging.getLogger(__name__)


def command_line() -> str:
    """The command as typed (``forecasting ...``), for run records and result files."""
    import shlex

    return "forecasting " + " ".join(shlex.quote(a) for a in sys.argv[1:])


# ------------------------------------------------------------------------------------ arguments
def add_data_arguments(p: argparse.ArgumentParser, required: bool = False, help_text: str | None = None) -> None:
    """``--data``, ``--data-dir`` and ``--item`` (the reading options: :mod:`forecasting.cli.commands.arguments`)."""
    p.add_argument("--data", required=required, metavar="PATH_OR_NAME",
                   help=help_text or "a .csv/.parquet file or a registered dataset name (ETTh1, ETTh2, exchange_rate, "
                                     "national_illness, vic_elec)")
    p.add_argument("--data-dir", help="directory holding the benchmark files (else $FORECASTING_DATA, ../shared/data)")
    p.add_argument("--item", help="for a long-format file with several items, the item to use")


def load_frame(source: str, args: argparse.Namespace, data: DataSection):
    """One :class:`SeriesFrame` from a name or path, read with the reading options of the config's
    ``data`` section (columns selected before any per-column check; the data layer reports any problem)."""
    from forecasting.data import load_series

    return load_series(source, data_dir=getattr(args, "data_dir", None), item=getattr(args, "item", None),
                       **data.read_options())


def _int_at_least(text: str, minimum: int, expected: str) -> int:
    """``int(text)`` if it is >= ``minimum``, else argparse's error saying what was ``expected``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def count_or_zero(text: str) -> int:
    """argparse type: an integer >= 0 (for options where 0 means "all")."""
    return _int_at_least(text, 0, "a whole number >= 0 (0 = all)")


def run_id(text: str) -> str:
    """argparse type: a run directory's name — one path component, not hidden, so the run lands in --out."""
    name = text.strip()
    if not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name or "\0" in name:
        raise argparse.ArgumentTypeError(f"expected a plain folder name (letters, digits, '-', '_', no '/' and not "
                                         f"starting with '.'), got {text!r}")
    return name


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return _int_at_least(text, 1, "a positive integer")


def quantile_list(text: str) -> tuple[float, ...]:
    """argparse type: ``0.05,0.5,0.95`` -> sorted unique levels in (0, 1)."""
    try:
        levels = sorted({round(float(t), 6) for t in text.replace(" ", ",").split(",") if t})
    except ValueError:
        raise argparse.ArgumentTypeError(f"quantiles must be numbers like 0.05,0.5,0.95, got {text!r}") from None
    if not levels or any(not 0.0 < q < 1.0 for q in levels):
        raise argparse.ArgumentTypeError(f"quantiles must lie strictly between 0 and 1, got {text!r}")
    return tuple(levels)


