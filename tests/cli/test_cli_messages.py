"""No dead ends: every flag and config key that a user-facing message names exists where it is printed.

A tester followed messages to flags that ``train`` did not have (``--time-format``, ``--target-cols``,
``--encoding``, ``--missing``: only ``data validate`` had them) and ``--set missing=...`` answered
"did you mean 'training'?". Two walks keep that from coming back:

* **the source**: every string in ``forecasting/`` that can reach a user (messages, hints, problems;
  not docstrings or ``--help`` texts) is scanned for ``--flags``, dotted config keys (``data.missing``)
  and reader keywords (``missing='interpolate'``). A flag must exist on every command that can print
  the message (:data:`AUDIENCE`, by module), a flag inside a quoted command (`` `forecasting train
  --resume ID` ``) on that command, a dotted key in the config, a keyword in the config's ``data``
  section or the reader's signature;
* **the commands**: known data problems (day-first timestamps, latin-1, missing values, an empty
  column, text in a value column, a gap, several items, a benchmark file that is not there) are run
  through every command that reads data, and the flags and keys in what each prints are checked the
  same way against that command's own parser.

The parsers come from :func:`forecasting.cli.entry.build_parser`, the keys from the config dataclasses.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import dataclasses
import inspect
import io
import re
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.cli.entry import build_parser, main

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "forecasting"

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")
SECTIONS = "data|model|likelihood|inference|optim|training|predict"
DOTTED = re.compile(rf"(?<![\w./-])((?:{SECTIONS})\.[a-z_]+(?:\.[a-z_]+)*)(?![\w/])")
KEYWORD = re.compile(r"(?<![\w.-])([a-z][a-z_]*)=(?![=\d])")
QUOTED_COMMAND = re.compile(r"`forecasting ([a-z][a-z-]*)(?: ([a-z][a-z-]*))?([^`]*)`")
# flags of other programs that messages legitimately name (torchrun's rendezvous options)
FOREIGN_FLAGS = {"--master_addr", "--master_port", "--nproc_per_node"}
# calls whose string arguments are shown to a user, in the CLI modules (the rest there is --help and argv)
MESSAGE_CALLS = {"ForecastingError", "ArgumentTypeError", "print", "error", "warning", "info", "_say"}


# -- the parsers -----------------------------------------------------------------------------------
def _walk(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    yield " ".join(path), parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, (*path, name))


PARSERS = {name: p for name, p in _walk(build_parser()) if name}
OPTIONS = {name: {s for a in p._actions for s in a.option_strings} for name, p in PARSERS.items()}
ALL_OPTIONS = set().union(*OPTIONS.values())
READERS = ("train", "evaluate", "backtest", "tune", "demo", "data validate", "data describe")
# Which commands can print a message of a module (by path prefix). Elsewhere a flag must exist on
# some command, and a CLI module's messages go to the commands it registers.
AUDIENCE = {
    # load_series only (data validate/describe list problems through inspect_source instead)
    "forecasting/data/load.py": ("train", "evaluate", "backtest", "tune", "demo"),
    "forecasting/data/": READERS,  # the reader, checks, registry: every command that reads a series
    "forecasting/cli/commands/data.py": ("data validate", "data describe"),
    "forecasting/forecaster/batch/": ("predict",),
    "forecasting/forecaster/backtest.py": ("evaluate", "backtest"),
    "forecasting/tuning/": ("tune",),
    "forecasting/core/config.py": ("train", "tune", "demo"),  # --set
}


def _commands_of_module(module: str) -> tuple[str, ...]:
    return tuple(name for name, p in PARSERS.items()
                 if getattr(p._defaults.get("func"), "__module__", None) == module)


def audience(path: Path) -> tuple[str, ...] | None:
    rel = path.relative_to(REPO).as_posix()
    for prefix, commands in AUDIENCE.items():
        if rel.startswith(prefix):
            return commands
    if rel.startswith("forecasting/cli/commands/"):
        return _commands_of_module(rel[:-3].replace("/", ".")) or None
    return None


# -- the config keys -------------------------------------------------------------------------------
def _key_exists(root: type, dotted: str) -> bool:
    cls: typing.Any = root
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(cls):
            return False
        fields = {f.name for f in dataclasses.fields(cls)} | set(getattr(cls, "config_aliases", {}))
        if part not in fields:
            return False
        part = getattr(cls, "config_aliases", {}).get(part, part)
        cls = typing.get_type_hints(cls)[part]
    return True


def _config_for(path: Path) -> type:
    from forecasting.classifier.config import ClassifierConfig
    from forecasting.forecaster.config import ForecasterConfig

    rel = path.relative_to(REPO).as_posix()
    return ClassifierConfig if rel.startswith("forecasting/classifier/") or rel == "forecasting/models/vision.py" \
        else ForecasterConfig


# the reading pipeline, whose hints also serve Python callers (``missing='interpolate'``): keywords checked
READING_MODULES = ("reader.py", "checks.py", "load.py", "validation.py", "timeindex.py", "registry.py", "problems.py")


def _reader_keywords() -> set[str]:
    """What ``missing='interpolate'``-style hints of the data layer may name: a ``data`` key or a reader argument."""
    from forecasting.data.load import load_series
    from forecasting.data.reader import read_series
    from forecasting.forecaster.config import DataSection

    names = {f.name for f in dataclasses.fields(DataSection)} | set(DataSection.config_aliases)
    for func in (read_series, load_series):
        names |= set(inspect.signature(func).parameters)
    return names


# -- the source walk -------------------------------------------------------------------------------
def _texts(tree: ast.AST, cli_module: bool) -> list[tuple[int, str]]:
    """(line, text) of the strings a user can see; f-strings whole, with ``{}`` for their values."""
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                docstrings.add(id(first.value))
    roots: list[ast.AST] = [tree]
    if cli_module:  # only what the commands print or raise; --help texts and subprocess argv are not messages
        roots = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                 and (getattr(n.func, "id", None) or getattr(n.func, "attr", None)) in MESSAGE_CALLS]
    skip: set[int] = set()
    for node in ast.walk(tree):  # help texts of the parsers: checked by test_cli_help, not messages
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) in ("add_argument", "add_parser",
                                                                              "add_argument_group"):
            skip |= {id(n) for n in ast.walk(node)}
    out: dict[int, tuple[int, str]] = {}
    for root in roots:
        for node in ast.walk(root):
            if id(node) in skip or id(node) in docstrings:
                continue
            if isinstance(node, ast.JoinedStr):
                text = "".join(v.value if isinstance(v, ast.Constant) else "{}" for v in node.values)
                out[id(node)] = (node.lineno, text)
                skip |= {id(v) for v in node.values if isinstance(v, ast.Constant)}
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                out[id(node)] = (node.lineno, node.value)
    return [v for k, v in out.items() if k not in skip]


def _source_messages() -> list[tuple[Path, int, str]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        if rel.startswith("forecasting/bench/"):  # benchmark suites: their own parsers, checked by their tests
            continue
        cli_module = rel.startswith("forecasting/cli/")
        for line, text in _texts(ast.parse(path.read_text(encoding="utf-8")), cli_module):
            if FLAG.search(text) or DOTTED.search(text) or "=" in text:
                found.append((path, line, text))
    return found


def dead_ends(text: str, commands: tuple[str, ...] | None, config: type, keywords: set[str] | None = None) -> list[str]:
    """What ``text`` names that does not exist: flags missing from ``commands`` (``None``: from every
    command), flags of a quoted command missing from it, dotted keys missing from ``config``."""
    problems = []
    for match in QUOTED_COMMAND.finditer(text):
        first, second, rest = match.groups()
        name = f"{first} {second}" if second and f"{first} {second}" in PARSERS else first
        if name == first and second:  # not a sub-command: an argument (`forecasting train NAME ...`)
            rest = f" {second}{rest}"
        if name not in PARSERS:
            problems.append(f"`forecasting {name}` is not a command")
            continue
        problems += [f"`forecasting {name}` has no {f}" for f in FLAG.findall(rest) if f not in OPTIONS[name]]
    plain = QUOTED_COMMAND.sub("", text)
    for flag in FLAG.findall(plain):
        if flag in FOREIGN_FLAGS:
            continue
        where = commands if commands is not None else None
        if where is None:
            if flag not in ALL_OPTIONS:
                problems.append(f"no command has {flag}")
        else:
            problems += [f"`forecasting {c}` has no {flag}" for c in where if flag not in OPTIONS[c]]
    for key in DOTTED.findall(plain):
        if not _key_exists(config, key):
            problems.append(f"no config key {key}")
    if keywords is not None:
        problems += [f"the reader has no keyword {k}=" for k in KEYWORD.findall(plain) if k not in keywords]
    return problems


def test_the_checker_finds_dead_ends():
    from forecasting.forecaster.config import ForecasterConfig

    def check(text: str, commands: tuple[str, ...] | None = ("train",)) -> list[str]:
        return dead_ends(text, commands, ForecasterConfig, {"missing"})

    assert not check("pass --time-format; or set data.missing=interpolate; missing='ffill'")
    assert check("pass --bogus") == ["`forecasting train` has no --bogus"]
    # the tester's messages before the fix: a flag train lacked, as seen from train
    assert check("download it with --base-url URL") == ["`forecasting train` has no --base-url"]
    assert check("see `forecasting data describe ETTh1 --base-url URL`") == []
    assert check("run `forecasting evaluate --resume X`") == ["`forecasting evaluate` has no --resume"]
    assert check("`forecasting nope --x`") == ["`forecasting nope` is not a command"]
    assert check("set data.time_fmt=x and training.nope") == ["no config key data.time_fmt", "no config key training.nope"]
    assert check("encoding='latin-1'") == ["the reader has no keyword encoding="]
    assert check("pass --bogus", None) == ["no command has --bogus"]


def test_the_walk_sees_the_known_messages():
    texts = [t for _, _, t in _source_messages()]
    assert any("--time-format" in t for t in texts) and any("data.missing" in t for t in texts)
    assert {"train", "predict", "data validate", "tune"} <= set(PARSERS)


def test_every_flag_and_key_a_message_names_exists():
    keywords = _reader_keywords()
    found = []
    for path, line, text in _source_messages():
        data_layer = path.parent == PACKAGE / "data" and path.name in READING_MODULES
        for problem in dead_ends(text, audience(path), _config_for(path), keywords if data_layer else None):
            found.append(f"{path.relative_to(REPO)}:{line}: {problem} -- {text[:120]!r}")
    assert not found, "messages that point to something that does not exist:\n" + "\n".join(found)


def test_the_reading_flags_are_one_set_everywhere():
    """The same flags, each one option (destination, type, choices, default) on every command that reads data."""
    reading = {"--time-col", "--time-format", "--target-cols", "--columns", "--encoding", "--delimiter", "--missing",
               "--item-col"}
    commands = ("train", "predict", "evaluate", "backtest", "tune", "demo", "data validate", "data describe")
    for command in commands:
        assert reading <= OPTIONS[command], (command, reading - OPTIONS[command])
    for flag in reading:
        declared = {c: next(repr((a.option_strings, a.dest, a.type, a.choices, a.default, a.metavar))
                            for a in PARSERS[c]._actions if flag in a.option_strings) for c in commands}
        assert len(set(declared.values())) == 1, (flag, declared)


# -- the command walk ------------------------------------------------------------------------------
TINY = ["data.lookback=24", "data.horizon=12", "model.seg_len=12", "model.dynamic_dim=4", "model.hidden_dim=8",
        "model.hidden_layers=1", "model.num_blocks=1", "training.epochs=1", "training.max_batches_per_epoch=2",
        "inference.eval_samples=2", "inference.warm_start_epochs=0", "inference.method=deterministic", "device=cpu"]


def _cli(*args: object) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue() + err.getvalue()


def _bad_files(d: Path) -> dict[str, Path]:
    t = pd.date_range("2020-01-01", periods=200, freq="h")
    v = np.sin(np.arange(200) / 4.0)
    files = {}

    def csv(name: str, frame: pd.DataFrame) -> None:
        frame.to_csv(d / f"{name}.csv", index=False)
        files[name] = d / f"{name}.csv"

    csv("dayfirst", pd.DataFrame({"Date": t.strftime("%d/%m/%Y %H:%M"), "value": v}))
    with_nan = v.copy()
    with_nan[150] = np.nan
    csv("missing", pd.DataFrame({"timestamp": t, "value": with_nan}))
    csv("emptycol", pd.DataFrame({"timestamp": t, "value": v, "broken": np.nan}))
    csv("text", pd.DataFrame({"timestamp": t, "value": [*v[:150], "n.a.", *v[151:]]}))
    csv("gap", pd.DataFrame({"timestamp": t.delete(150), "value": np.delete(v, 150)}))
    csv("panel", pd.DataFrame({"item_id": ["a"] * 100 + ["b"] * 100, "timestamp": [*t[:100], *t[:100]], "value": v}))
    (d / "latin.csv").write_bytes(("timestamp,Maß\n" + "".join(f"{s},{x}\n" for s, x in zip(t, v))).encode("latin-1"))
    files["latin"] = d / "latin.csv"
    return files


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("messages")
    files = _bad_files(d)
    good = d / "good.csv"
    pd.DataFrame({"timestamp": pd.date_range("2020-01-01", periods=200, freq="h"),
                  "value": np.sin(np.arange(200) / 4.0)}).to_csv(good, index=False)
    code, text = _cli("train", "-c", "configs/demo.yaml", "--data", good, "--out", d / "runs", "--run-id", "m", "--no-eval",
                      "-q", *[a for s in TINY for a in ("--set", s)])
    assert code == 0, text
    return d, files, d / "runs" / "m"


def _invocations(d: Path, run: Path, source: Path | str) -> dict[str, list[object]]:
    sets = [a for s in TINY for a in ("--set", s)]
    return {
        "data validate": ["data", "validate", source],
        "data describe": ["data", "describe", source],
        "train": ["train", "-c", "configs/demo.yaml", "--data", source, "--out", d / "never", "-q", *sets],
        "demo": ["demo", "--data", source, "--out", d / "never-demo", "-q", *sets],
        "tune": ["tune", "-c", "configs/demo.yaml", "--data", source, "--trials", "1", "--out", d / "tune" / Path(source).stem,
                 *sets],
        "evaluate": ["evaluate", "--model", run, "--data", source, "-q"],
        "backtest": ["backtest", "--model", run, "--data", source, "-q", "--out", d / "bt"],
        "predict": ["predict", "--model", run, "--input", source, "--output", d / "fc.csv", "-q"],
    }


@pytest.mark.parametrize("problem", ["dayfirst", "missing", "emptycol", "text", "gap", "panel", "latin", "benchmark"])
def test_messages_printed_for_data_problems_name_flags_the_command_has(setup, problem, tmp_path):
    from forecasting.forecaster.config import ForecasterConfig

    d, files, run = setup
    extra: list[object] = []
    if problem == "benchmark":  # a registered dataset whose file is not in the data directory: where to get it
        source: Path | str = "ETTh1"
        extra = ["--data-dir", tmp_path]  # only this directory is searched
    else:
        source = files[problem]
    printed = {}
    for command, argv in _invocations(d, run, source).items():
        if command == "predict" and problem == "benchmark":
            continue  # predict takes files, not dataset names
        code, text = _cli(*argv, *(extra if command != "predict" else []))
        lines = [ln for ln in text.splitlines() if ln.startswith("error:") or "; " in ln]
        printed[command] = lines
        for line in lines:
            found = dead_ends(line, (command,), ForecasterConfig)
            assert not found, f"`forecasting {command}` on {problem}: {found}\n{line}"
    # every command that reads whole series reported it (predict reads only the last rows; data validate/describe
    # list a panel's items instead of asking for one)
    expected = [c for c in READERS if not (problem == "panel" and c.startswith("data "))]
    assert all(printed.get(c) for c in expected), printed
