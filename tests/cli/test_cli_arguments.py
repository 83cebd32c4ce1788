"""Shared argument groups (:mod:`forecasting.cli.commands.arguments`): an option that several commands take
is the same option (flags, destination, type, default, choices) in each."""
from __future__ import annotations

import argparse

import pytest

from forecasting.cli.entry import build_parser


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _option(parser: argparse.ArgumentParser, flag: str) -> tuple:
    action = next(a for a in parser._actions if flag in a.option_strings)
    return (tuple(action.option_strings), action.dest, action.default, action.type, action.choices, action.required,
            type(action).__name__, action.metavar)


@pytest.mark.parametrize(("flag", "commands"), [
    ("--model", ("evaluate", "backtest", "predict")),
    ("--data", ("evaluate", "backtest", "train", "tune")),
    ("--data-dir", ("evaluate", "backtest", "train", "tune")),
    ("--split", ("evaluate", "backtest")),
    ("--max-windows", ("evaluate", "backtest")),
    ("--samples", ("evaluate", "backtest")),
    ("--seed", ("evaluate", "backtest")),
    ("--device", ("evaluate", "backtest", "predict")),
    ("--threads", ("train", "predict")),
    ("--quiet", ("evaluate", "backtest", "predict", "train")),
    ("--config", ("train", "tune")),
    ("--set", ("train", "tune")),
])
def test_shared_option_is_one_option(flag, commands):
    parsers = _commands()
    declared = {name: _option(parsers[name], flag) for name in commands}
    if flag == "--config":  # the one intended difference: train --resume RUN takes the run's own config
        declared = {name: d[:5] + d[6:] for name, d in declared.items()}
    first = declared[commands[0]]
    assert all(d == first for d in declared.values()), declared


def test_train_device_defaults_to_the_config():
    # the one intended difference: train's device comes from the config unless --device is given
    assert _option(_commands()["train"], "--device")[2] is None


def test_train_config_is_needed_only_without_resume():
    assert _option(_commands()["train"], "--config")[5] is False and _option(_commands()["tune"], "--config")[5] is True


@pytest.mark.parametrize("argv", [
    ["train", "--config", "configs/demo.yaml", "--run-id", "a/../../b"],   # would have written outside --out
    ["train", "--config", "configs/demo.yaml", "--run-id", ".hidden"],     # listings skip hidden folders
    ["train", "--config", "configs/demo.yaml", "--eval-windows", "-5"],     # was silently "all"
    ["evaluate", "--model", "runs/x", "--max-windows", "-1"],               # was silently "all"
    ["backtest", "--model", "runs/x", "--max-windows", "-1"],
])
def test_values_that_cannot_mean_anything_are_refused(argv, capsys):
    from forecasting.cli.entry import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
