"""Every ``--help`` of the command line reads as plain text.

argparse prints descriptions, epilogs and argument help verbatim, so reStructuredText from a
docstring (double backticks, ``:class:`` roles, ``..`` directives) would reach users raw.
The walk covers every command and sub-command: ``forecasting <cmd>``, ``forecasting data
<action>``, ``forecasting bench <suite>``.
"""
from __future__ import annotations

import argparse
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
