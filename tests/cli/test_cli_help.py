"""Every ``--help`` of the command line reads as plain text.

argparse prints descriptions, epilogs and argument help verbatim, so reStructuredText from a
docstring (double backticks, ``:class:`` roles, ``..`` directives) would reach users raw.
The walk covers every command and sub-command: ``forecasting <cmd>``, ``forecasting data
<action>``, ``forecasting bench <suite>``.
"""
from __future__ import annotations

import argparse
import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from forecasting.cli.entry import build_parser, main

RST_MARKUP = re.compile(r"``|:(?:class|func|mod|meth|attr|data|obj|exc|ref|doc|py:\w+):`|^\s*\.\.\s+[\w-]+::", re.MULTILINE)


def walk_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("forecasting",)
                 ) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """``(command line, parser)`` for ``parser`` and every sub-command below it."""
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from walk_parsers(sub, (*path, name))


PARSERS = dict(walk_parsers(build_parser()))


def test_the_walk_reaches_every_level():
    assert {"forecasting demo", "forecasting data describe", "forecasting bench forecast",
            "forecasting bench inference"} <= set(PARSERS)


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_help_has_no_restructuredtext_markup(command):
    text = PARSERS[command].format_help()
    found = sorted({m.group(0).strip() for m in RST_MARKUP.finditer(text)})
    assert not found, f"`{command} --help` shows reStructuredText markup {found}:\n{text}"


def test_demo_help_printed_by_the_cli(capsys):
    """The real entry point, end to end, for the command whose description used to be a docstring."""
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "vic_elec" in out and not RST_MARKUP.search(out)


# -- documents named in --help exist in the repository ------------------------------------------
REPO = Path(__file__).resolve().parents[2]
DOC_PATH = re.compile(r"(?<![\w/<{.-])(docs/[\w./-]*\w)")
BARE_DOC = re.compile(r"(?<![\w/.-])([\w-]+\.md)\b")
# File names that --help texts give as *outputs* of a command (not documents to read).
OUTPUT_NAMES = {"calibration.md", "summary.md", "gpu.md"}


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_documents_named_in_help_exist(command):
    """A --help that says "see docs/x.md" must point to a file users have (not an out-of-repo note)."""
    text = PARSERS[command].format_help()
    missing = [p for p in DOC_PATH.findall(text) if not (REPO / p).exists()]
    bare = [n for n in BARE_DOC.findall(text) if n not in OUTPUT_NAMES]
    assert not missing, f"`{command} --help` names documents that are not in the repository: {missing}"
    assert not bare, f"`{command} --help` names documents without their path in the repository: {bare}"


# -- stated defaults cannot go stale -------------------------------------------------------------
# "default 100", "default: runs/" (not "torch's default)" or "0 = torch's default."): the help states a default.
STATES_DEFAULT = re.compile(r"\bdefault\b\s*:?\s*(?![\s).;,])")
LITERAL_DEFAULT_NUMBER = re.compile(r"\bdefault\b:?\s*\d")
HELP_SOURCES = [*(REPO / "forecasting" / "cli").rglob("*.py"), *(REPO / "forecasting" / "bench").rglob("*.py")]


def _options(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    skip = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)
    for action in parser._actions:
        if action.help and action.help is not argparse.SUPPRESS and not isinstance(action, skip):
            yield action


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_help_states_a_default_through_argparse(command):
    """An option with a real default that says "default ..." must say it with %(default)s (argparse fills it in)."""
    stale_prone = [f"{'/'.join(a.option_strings) or a.dest}: {a.help!r}" for a in _options(PARSERS[command])
                   if a.default not in (None, False, [], argparse.SUPPRESS)
                   and STATES_DEFAULT.search(a.help) and "%(default)" not in a.help]
    assert not stale_prone, f"`{command} --help` spells defaults by hand (use %(default)s):\n" + "\n".join(stale_prone)


def _help_strings(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, literal text) of every ``help=`` given to ``add_argument``; f-strings yield their literal parts."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
            for kw in node.keywords:
                if kw.arg != "help":
                    continue
                parts = kw.value.values if isinstance(kw.value, ast.JoinedStr) else [kw.value]
                for part in parts:
                    if isinstance(part, ast.Constant) and isinstance(part.value, str):
                        yield node.lineno, part.value


def test_no_help_string_spells_a_default_number():
    """Numbers after "default" come from the code (``%(default)s`` or an f-string of the constant the code
    applies), never typed into the help text, where they went stale (--koopa-epochs said 3 while 5 ran)."""
    found = [f"{path.relative_to(REPO)}:{line}: {text!r}" for path in HELP_SOURCES
             for line, text in _help_strings(ast.parse(path.read_text(encoding="utf-8")))
             if LITERAL_DEFAULT_NUMBER.search(text)]
    assert not found, "help texts with a hand-written default number:\n" + "\n".join(found)


def _stated(help_text: str, label: str) -> int:
    match = re.search(rf"\b{label}:?\s*(\d+)", help_text)
    assert match, (label, help_text)
    return int(match.group(1))


@pytest.mark.parametrize("quick", [False, True])
def test_probabilistic_budget_help_matches_the_budget_that_runs(quick):
    """The reported case, end to end: the numbers --help gives are the budget the suite applies."""
    from forecasting.bench.forecast.probabilistic import make_budget

    parser = PARSERS["forecasting bench forecast"]
    budget = make_budget(parser.parse_args(["--quick"] if quick else []))
    helps = {a.dest: a.help for a in _options(parser)}
    label = "quick" if quick else "default"
    assert _stated(helps["koopa_epochs"], label) == budget.koopa_epochs
    assert _stated(helps["koopa_batches"], label) == budget.koopa_batches
    assert _stated(helps["max_test_windows"], label) == budget.max_test_windows
    assert _stated(helps["stat_windows"], label) == budget.stat_windows
