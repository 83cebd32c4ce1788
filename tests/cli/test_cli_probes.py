"""User mistakes against the real CLI: every one ends in exit code 2 and one ``error:`` line, never a traceback.

Most probes call ``forecasting.cli.entry.main`` in-process (the code path of the console script); a
few run ``python -m forecasting`` in a subprocess to pin down the exact stderr and exit code.

Outputs that cannot be written: tests run as root, where a ``chmod 0o500`` folder is still
writable, so most probes use a path whose parent is a regular FILE (``blocker/out.csv``); one
subprocess probe writes into a read-only tmpfs mount (the ``readonly_dir`` fixture; skipped where
mounting is not allowed). Probes of writing commands also patch the first step of the real work
(loading the model, reading the data, opening the study, running the suite) to fail the test, so
they prove the output is checked *before* any work, not merely that an error appears at the end.
"""
from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from forecasting.cli.entry import main

REPO = Path(__file__).resolve().parents[2]
TINY = ["data.lookback=48", "data.horizon=24", "model.seg_len=24", "model.dynamic_dim=8", "model.hidden_dim=16",
        "model.hidden_layers=1", "model.num_blocks=1", "training.epochs=1", "training.max_batches_per_epoch=2",
        "inference.method=deterministic", "inference.eval_samples=2", "device=cpu"]
BLOCKER_TEXT = "a regular file where a folder is expected\n"
LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING) \S+: ")


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    """A tiny trained run and the files the probes point at; returns the ``{name}`` placeholders."""
    from forecasting.data import load_series

    d = tmp_path_factory.mktemp("probes")
    f = load_series("vic_elec").tail(2000)
    pl.DataFrame({"Time": f.timestamps, "Demand": f.values[:, 0], "Temperature": f.values[:, 1]}).write_csv(d / "vic.csv")
    pl.DataFrame({"item_id": ["a"] * 100, "timestamp": f.timestamps[:100], "Demand": f.values[:100, 0],
                  "Temperature": f.values[:100, 1]}).write_csv(d / "good.csv")
    # every series shorter than the lookback (48): --skip-invalid leaves nothing
    pl.DataFrame({"item_id": ["a"] * 10 + ["b"] * 5, "timestamp": np.concatenate([f.timestamps[:10], f.timestamps[:5]]),
                  "Demand": f.values[:15, 0], "Temperature": f.values[:15, 1]}).write_csv(d / "short.csv")
    (d / "header_only.csv").write_text("item_id,timestamp,Demand,Temperature\n")
    (d / "header_wide.csv").write_text("timestamp,Demand,Temperature\n")
    (d / "zero.csv").write_bytes(b"")
    (d / "blocker").write_text(BLOCKER_TEXT)
    (d / "adir").mkdir()
    (d / "fc_dir.csv").mkdir()
    (d / "not_yaml.yaml").write_text("data: [1, 2\n")
    (d / "list.yaml").write_text("- data\n- model\n")
    (d / "binary.yaml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    assert main(["train", "--config", "configs/demo.yaml", "--data", str(d / "vic.csv"), "--out", str(d / "runs"),
                 "--run-id", "m", "--no-eval", "-q", *[a for s in TINY for a in ("--set", s)]]) == 0
    truncated = d / "truncated"
    (truncated / "model").mkdir(parents=True)
    for p in (d / "runs" / "m" / "model").iterdir():
        (truncated / "model" / p.name).write_bytes(p.read_bytes())
    manifest = truncated / "model" / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:40])
    return {"d": str(d), "m": str(d / "runs" / "m"), "blocker": str(d / "blocker")}


@dataclass(frozen=True)
class Probe:
    """One mistake: the command line (``{d}``, ``{m}``, ``{blocker}`` filled in), a phrase the message must
    hold, and optionally ``module:attribute`` of the first step of the real work, which must not be reached."""

    name: str
    argv: tuple[str, ...]
    expect: str
    before: str | None = None


def probe(name: str, cmd: str, expect: str, before: str | None = None) -> Probe:
    return Probe(name, tuple(cmd.split()), expect, before)


PREDICT = "predict -q --model {m} --input {d}/good.csv"
PREDICT_OUT = "predict -q --model {m} --input {d}/good.csv --output {d}/fc.csv"
NOT_A_FOLDER = "blocker is a file, not a folder"
TRAIN = "train -q --config configs/demo.yaml --data {d}/vic.csv"

PROBES = [
    # -- outputs that cannot be written, for every command that writes: checked before any work
    probe("predict --output under a file", PREDICT + " --output {blocker}/fc.csv", NOT_A_FOLDER,
          "forecasting.cli.commands.predict:load_forecaster"),
    probe("predict --output is a directory", PREDICT + " --output {d}/fc_dir.csv", "fc_dir.csv is a directory",
          "forecasting.cli.commands.predict:load_forecaster"),
    probe("predict --output folder missing", PREDICT + " --output {d}/nope/fc.csv", "does not exist; create it first",
          "forecasting.cli.commands.predict:load_forecaster"),
    probe("predict --shard output under a file", PREDICT + " --output {blocker}/fc.csv --shard 0/2", NOT_A_FOLDER,
          "forecasting.cli.commands.predict:load_forecaster"),
    probe("merge-shards OUTPUT under a file", "merge-shards {blocker}/fc.csv --shards 2", "OUTPUT",
          "forecasting.forecaster.batch.sharding:merge_shards"),
    probe("evaluate --out under a file", "evaluate -q --model {m} --out {blocker}/m.json", NOT_A_FOLDER,
          "forecasting.cli.commands.evaluate:load_forecaster"),
    probe("evaluate --out is a directory", "evaluate -q --model {m} --out {d}/adir", "adir is a directory",
          "forecasting.cli.commands.evaluate:load_forecaster"),
    probe("backtest --out under a file", "backtest -q --model {m} --out {blocker}/bt", NOT_A_FOLDER,
          "forecasting.cli.commands.backtest:load_forecaster"),
    probe("backtest --out is a file", "backtest -q --model {m} --out {blocker}", "--out {blocker} is a file, not a folder",
          "forecasting.cli.commands.backtest:load_forecaster"),
    probe("train --out under a file", TRAIN + " --out {blocker}/runs", NOT_A_FOLDER,
          "forecasting.cli.commands.train:load_frame"),
    probe("train --out is a file", TRAIN + " --out {blocker}", "--out {blocker} is a file, not a folder",
          "forecasting.cli.commands.train:load_frame"),
    probe("demo --out is a file (was replaced by the demo folder)", "demo -q --out {blocker}",
          "--out {blocker} is a file, not a folder", "forecasting.cli.commands.demo:load_frame"),
    probe("demo --out under a file", "demo -q --out {blocker}/demo", NOT_A_FOLDER, "forecasting.cli.commands.demo:load_frame"),
    probe("tune --out under a file", "tune --config configs/demo.yaml --trials 0 --out {blocker}/tune", NOT_A_FOLDER,
          "forecasting.tuning.study:open_study"),
    probe("tune --storage under a file", "tune --config configs/demo.yaml --trials 0 --out {d}/tune "
          "--storage {blocker}/study.journal", "--storage", "forecasting.tuning.study:open_study"),
    probe("bench --out under a file", "bench gpu --out {blocker}/results", NOT_A_FOLDER, "forecasting.bench.gpu:run"),
    probe("data download under a file", "data describe ETTh1 --data-dir {blocker}/data --base-url http://127.0.0.1:9/",
          "download target (--data-dir)", "urllib.request:urlopen"),
    # -- inputs
    probe("missing input file", "predict -q --model {m} --input {d}/missing.csv --output {d}/fc.csv", "input not found"),
    probe("empty input glob", "predict -q --model {m} --input {d}/nomatch*.csv --output {d}/fc.csv", "no files match"),
    probe("input folder without data files", "predict -q --model {m} --input {d}/adir --output {d}/fc.csv",
          "holds no .csv or .parquet files"),
    probe("CSV with a header and no rows (long)", "predict -q --model {m} --input {d}/header_only.csv --output {d}/fc.csv",
          "no series to forecast"),
    probe("CSV with a header and no rows (wide)", "predict -q --model {m} --input {d}/header_wide.csv --output {d}/fc.csv",
          "has 0 rows"),
    probe("CSV of zero bytes", "predict -q --model {m} --input {d}/zero.csv --output {d}/fc.csv", "the file is empty"),
    probe("train on a header-only CSV", "train -q --config configs/demo.yaml --data {d}/header_wide.csv --out {d}/runs",
          "header but no data rows"),
    probe("data describe of a header-only CSV", "data describe {d}/header_wide.csv", "header but no data rows"),
    probe("a directory as --data", "evaluate -q --model {m} --data {d}/adir", "is a directory, not a file"),
    # -- models
    probe("model dir that is not a run", "predict -q --model {d}/adir --input {d}/good.csv --output {d}/fc.csv",
          "not a run or model directory"),
    probe("model dir that does not exist", "predict -q --model {d}/nomodel --input {d}/good.csv --output {d}/fc.csv",
          "model not found"),
    probe("truncated artifact", "predict -q --model {d}/truncated --input {d}/good.csv --output {d}/fc.csv", "corrupt"),
    probe("predict --horizon beyond the model's", PREDICT_OUT + " --horizon 100", "beyond the model's horizon 24"),
    probe("backtest --horizon beyond the model's", "backtest -q --model {m} --horizon 100", "beyond the model's horizon 24"),
    # -- option values (argparse: one line, not the usage block)
    probe("--samples 0", PREDICT_OUT + " --samples 0", "expected a positive integer, got 0"),
    probe("--samples negative", PREDICT_OUT + " --samples -3", "expected a positive integer, got -3"),
    probe("evaluate --samples 0", "evaluate -q --model {m} --samples 0", "expected a positive integer, got 0"),
    probe("--quantiles out of range", PREDICT_OUT + " --quantiles 0.1,1.5", "strictly between 0 and 1"),
    probe("--quantiles not numbers", PREDICT_OUT + " --quantiles low,high", "must be numbers"),
    probe("--split not a choice", "evaluate -q --model {m} --split bogus", "invalid choice: 'bogus'"),
    probe("missing required options", "predict --model {m}", "the following arguments are required"),
    probe("unknown command", "frobnicate", "invalid choice: 'frobnicate'"),
    # -- configs
    probe("unknown --set key", TRAIN + " --out {d}/runs --set training.epoch=1", "did you mean 'epochs'"),
    probe("malformed --set", TRAIN + " --out {d}/runs --set training.epochs", "must look like key.subkey=value"),
    probe("--set with an empty key", TRAIN + " --out {d}/runs --set =3", "empty key"),
    probe("config that is not YAML", "train -q --config {d}/not_yaml.yaml --out {d}/runs", "invalid YAML at line 2"),
    probe("config that is a list", "train -q --config {d}/list.yaml --out {d}/runs", "top level must be a mapping"),
    probe("config that is binary", "train -q --config {d}/binary.yaml --out {d}/runs", "not a text file"),
    probe("config that is a directory", "train -q --config {d}/adir --out {d}/runs", "is a directory, not a config file"),
    probe("config that does not exist", "train -q --config {d}/nope.yaml --out {d}/runs", "config file not found"),
    probe("search space that is not YAML", "tune --config configs/demo.yaml --trials 0 --out {d}/tune "
          "--space {d}/not_yaml.yaml", "invalid YAML"),
]


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "__pycache__" not in p.parts}


def _fill(parts, env: dict[str, str]) -> list[str]:
    return [p.format(**env) for p in parts]


def _must_not_run(name: str):
    def fail(*args, **kwargs):
        raise AssertionError(f"{name} was reached: the mistake should have been reported before any work")

    return fail


def _one_error_line(err: str) -> str:
    """The single ``error:`` line; any other line must be a log record (pytest may route logging to stderr)."""
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert len(errors) == 1, err
    assert all(ln in errors or LOG_LINE.match(ln) for ln in lines), err
    return errors[0]


@pytest.mark.parametrize("p", PROBES, ids=[p.name for p in PROBES])
def test_user_mistake_is_one_line_and_exit_2(p: Probe, env, capsys, monkeypatch):
    if p.before:
        module, attr = p.before.split(":")
        monkeypatch.setattr(importlib.import_module(module), attr, _must_not_run(p.before))
    root = Path(env["d"])
    before = _files(root)
    capsys.readouterr()
    code = main(_fill(p.argv, env))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    line = _one_error_line(captured.err)
    assert code == 2, captured.err
    assert p.expect.format(**env) in line, line
    # nothing written: no output, no temporary or probe file, no empty folder; the blocking file untouched
    assert _files(root) == before
    assert Path(env["blocker"]).read_text() == BLOCKER_TEXT


def test_skip_invalid_that_skips_every_series_writes_nothing(env, capsys):
    d = Path(env["d"])
    argv = ["predict", "-q", "--model", env["m"], "--input", str(d / "short.csv"), "--skip-invalid"]
    out = d / "fresh.csv"
    capsys.readouterr()
    assert main(argv + ["--output", str(out)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "all 2 series were skipped" in line and f"the first in {d / 'short.csv'}" in line
    assert "item 'a' has 10 rows" in line and "item 'b' has 5 rows" in line and "lookback" in line
    assert f"nothing was written to {out}" in line
    assert not out.exists()  # not a header-only file
    keep = d / "keep.csv"
    keep.write_text("previous forecast\n")
    assert main(argv + ["--output", str(keep)]) == 2
    assert keep.read_text() == "previous forecast\n"
    assert not [p.name for p in d.iterdir() if p.name.startswith((".fresh.csv", ".keep.csv"))]  # no temp files


def test_skip_invalid_that_keeps_some_series_still_succeeds(env, capsys):
    d = Path(env["d"])
    pl.concat([pl.read_csv(d / "good.csv"), pl.read_csv(d / "short.csv").filter(pl.col("item_id") == "b")
               .with_columns(pl.lit("short").alias("item_id"))]).write_csv(d / "mixed.csv")
    out = d / "mixed_fc.csv"
    assert main(["predict", "-q", "--model", env["m"], "--input", str(d / "mixed.csv"), "--output", str(out),
                 "--skip-invalid"]) == 0
    assert pl.read_csv(out)["item_id"].unique().to_list() == ["a"]


@pytest.fixture
def unwritable_output(readonly_dir) -> str:
    return str(readonly_dir / "fc.csv")


@pytest.mark.parametrize("case", ["read-only folder", "all skipped", "samples 0", "config not YAML"])
def test_console_entry_point_prints_one_line(case, env, request):
    """The tester's report, through ``python -m forecasting``: exit 2 and exactly one stderr line."""
    d = env["d"]
    argv = {
        "read-only folder": lambda: ["predict", "-q", "--model", env["m"], "--input", f"{d}/good.csv",
                                     "--output", request.getfixturevalue("unwritable_output")],
        "all skipped": lambda: ["predict", "-q", "--model", env["m"], "--input", f"{d}/short.csv", "--skip-invalid",
                                "--output", f"{d}/sub_fc.csv"],
        "samples 0": lambda: ["predict", "--model", env["m"], "--input", f"{d}/good.csv", "--output", f"{d}/x.csv",
                              "--samples", "0"],
        "config not YAML": lambda: ["train", "--config", f"{d}/not_yaml.yaml", "--out", f"{d}/runs"],
    }[case]()
    proc = subprocess.run([sys.executable, "-m", "forecasting", *argv], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr
    # the default verbosity shows INFO records (the batch predictor logs one): everything else is the one line
    lines = [ln for ln in proc.stderr.splitlines() if not LOG_LINE.match(ln)]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    if case == "read-only folder":
        assert "does not accept new files" in lines[0] and "--output" in lines[0]
    assert not Path(f"{d}/sub_fc.csv").exists()
