"""Argument groups that several commands share, each declared once.

An option that more than one command takes (``--config``/``--set``, ``--model``, ``--split``, the
scoring options, ``--device``/``--threads``/``--quiet``) is added by one function here, so its
flag, short form, type, default and destination are the same everywhere and its help cannot
drift between commands; a command passes only what is its own (what the data or split is
*for*). ``--data``/``--data-dir``/``--item`` come from
:func:`forecasting.cli.commands.common.add_data_arguments` (shared with ``forecasting data``).
"""
from __future__ import annotations

import argparse

from forecasting.cli.commands.common import add_data_arguments, positive_int

SPLITS = ("train", "val", "test", "all")


def add_config_arguments(p: argparse.ArgumentParser, *, data_help: str,
                         config_help: str = "run config YAML (see configs/)",
                         set_help: str = "override a config value, e.g. --set training.epochs=2 "
                                         "--set inference.method=advi (repeatable)") -> None:
    """``--config``/``-c`` (required), ``--set KEY=VALUE`` (into ``args.overrides``) and the data options.

    Args:
        p: the command's parser (train, tune).
        data_help: what ``--data`` is used for, and its default.
        config_help / set_help: the command's wording (e.g. the sweep's *base* config).
    """
    p.add_argument("--config", "-c", required=True, help=config_help)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=set_help)
    add_data_arguments(p, help_text=data_help)


def add_model_arguments(p: argparse.ArgumentParser, *, data_help: str | None = None) -> None:
    """``--model``/``-m`` (a run or artifact directory) and, with ``data_help``, the series to run it on."""
    p.add_argument("--model", "-m", required=True, help="run directory from `forecasting train` (or its model/ artifact)")
    if data_help is not None:
        add_data_arguments(p, help_text=data_help)


def add_split_argument(p: argparse.ArgumentParser, help_text: str) -> None:
    """``--split {train,val,test,all}`` (default ``test``: never seen in training); ``help_text`` says what it ranges over."""
    p.add_argument("--split", choices=list(SPLITS), default="test", help=help_text)


def add_scoring_arguments(p: argparse.ArgumentParser, *, windows: str = "windows") -> None:
    """``--max-windows``, ``--samples``/``-n`` and ``--seed`` of a scored forecast (evaluate, backtest).

    Args:
        p: the command's parser.
        windows: what is counted (``windows`` or ``origins``).
    """
    p.add_argument("--max-windows", type=int, default=0, help=f"at most this many evenly spaced {windows} (0 = all)")
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
