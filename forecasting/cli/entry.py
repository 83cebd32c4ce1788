"""The ``forecasting`` command line: one entry point, thin over the public API.

Each command group lives in ``forecasting/cli/commands/<name>.py`` and exposes
``register(subparsers)``, adding its parser(s) with ``set_defaults(func=...)``.
User errors (:class:`ForecastingError`) print one line and exit 2; bugs keep their traceback.
SIGTERM is handled like Ctrl-C (:mod:`forecasting.core.signals`): the command stops cleanly
(temporary files removed, an interrupted ``train`` kept resumable), prints one line and exits
130 (SIGINT) or 143 (SIGTERM).
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import NoReturn

from forecasting import __version__
from forecasting.core.errors import ForecastingError
from forecasting.core.signals import Interrupted, stop_signals_raise

# Command modules, in the order they appear in --help. Add a module here to add commands.
COMMAND_MODULES = [
    "forecasting.cli.commands.data",
    "forecasting.cli.commands.train",
    "forecasting.cli.commands.runs",
    "forecasting.cli.commands.predict",
    "forecasting.cli.commands.evaluate",
    "forecasting.cli.commands.backtest",
    "forecasting.cli.commands.demo",
    "forecasting.cli.commands.tune",
    "forecasting.cli.commands.bench",
    "forecasting.cli.commands.dashboard",
]


class UsageError(ForecastingError):
    """A command line argparse rejects: unknown option, bad value, missing argument."""


class Parser(argparse.ArgumentParser):
    """argparse with the CLI's one-line errors.

    argparse prints the whole usage block (ten lines and more for a command with many options) and
    exits from inside ``parse_args``; a mistyped value is a user error like any other, so it is raised
    as :class:`UsageError` and :func:`main` prints one line and returns 2. Subparsers inherit the
    class (``add_subparsers`` uses the parent's class), so every command and suite behaves the same.
    """

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}; see `{self.prog} --help`")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="forecasting",
        description="Probabilistic forecasting with Bayesian Koopa (ScoreVI).",
    )
    parser.add_argument("--version", action="version", version=f"forecasting {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # the module is not written yet; others must still work
                continue
            if is_third_party(exc):
                add_unavailable(sub, name.rsplit(".", 1)[1], exc)
                continue
            raise
        module.register(sub)
    return parser


def is_third_party(exc: ModuleNotFoundError) -> bool:
    """A missing package of the install (not a missing module of this project)."""
    return bool(exc.name) and exc.name.split(".")[0] != "forecasting"


def missing_package_message(what: str, exc: ModuleNotFoundError) -> str:
    return (f"{what} needs the Python package {exc.name.split('.')[0]!r}, which is not installed here; "
            f"install the project with its dependencies (pip install -e .) or that package")


def add_unavailable(sub: argparse._SubParsersAction, name: str, exc: ModuleNotFoundError) -> None:
    """Register ``name`` as a command that explains which package it lacks (a partial install, e.g.
    a GPU machine with only torch and the scientific stack, keeps every other command working)."""
    parser = sub.add_parser(name, help=f"(unavailable: needs the package {exc.name.split('.')[0]!r})", add_help=False)
    parser.add_argument("rest", nargs=argparse.REMAINDER)

    def run(args: argparse.Namespace) -> int:
        raise ForecastingError(missing_package_message(f"'{name}'", exc))

    parser.set_defaults(func=run)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    args.argv = argv  # the exact arguments, for result files that record their command
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose + 1, 2),
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with stop_signals_raise():
            result = args.func(args)
    except ForecastingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except ModuleNotFoundError as exc:
        if not is_third_party(exc):
            raise
        print(f"error: {missing_package_message('this command', exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        # A command may say what the interruption left (train: how to resume); else the general promise.
        what = exc.args[0] if exc.args and isinstance(exc.args[0], str) else "outputs written so far are intact"
        by = f" by {exc.signal_name}" if isinstance(exc, Interrupted) else ""
        print(f"interrupted{by}; {what}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, Interrupted) else 130
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
