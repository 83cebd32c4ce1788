"""Data-reading options are config keys and the same flags on every command (no dead ends).

The reported case: a file with ``31/12/2016 23:00`` timestamps validated with ``data validate
--time-format`` but could not be trained (``train`` had no such flag and ``--set data.time_format=...``
was rejected as invalid YAML), a latin-1 file had no ``--encoding`` outside ``data validate``, and a
column left out with ``data.columns`` was still checked. Here each is trained (tiny budget) through the
real entry point and the run then predicts and evaluates with the saved reading options.
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from forecasting.cli.entry import main

DMY = "%d/%m/%Y %H:%M"
TINY = ["data.lookback=48", "data.horizon=24", "model.seg_len=24", "model.dynamic_dim=8", "model.hidden_dim=16",
        "model.hidden_layers=1", "model.num_blocks=1", "training.epochs=1", "training.max_batches_per_epoch=3",
        "inference.eval_samples=2", "inference.warm_start_epochs=1", "device=cpu"]
QUICK = ["--eval-windows", "4", "--eval-samples", "10", "-q", *[a for s in TINY for a in ("--set", s)]]


def cli(*args: str) -> tuple[int, str, str]:
    """``forecasting ARGS`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def ok(*args: str) -> str:
    code, out, err = cli(*args)
    assert code == 0, f"forecasting {' '.join(map(str, args))} -> {code}\n{err[-3000:]}"
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("reading")
    t = pd.date_range("2016-11-01", periods=400, freq="h")
    rng = np.random.default_rng(0)
    load = 10 + np.sin(np.arange(400) * 2 * np.pi / 24) + rng.normal(0, 0.1, 400)
    # day-first timestamps (01/11/2016 reads as January 11th unless told) and an all-empty column
    pd.DataFrame({"Date": t.strftime(DMY), "load": load, "temp": load * 2 + 1, "empty": np.nan}).to_csv(d / "dmy.csv", index=False)
    # a German export: latin-1, ';'-separated, a non-ASCII column name
    text = "Zeit;Last;Temperatur°C\n" + "".join(f"{s};{a:.4f};{b:.4f}\n" for s, a, b in
                                                 zip(t.strftime("%Y-%m-%d %H:%M"), load, load / 3))
    (d / "latin.csv").write_bytes(text.encode("latin-1"))
    return d


def _config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text())["data"]


# -- time format ----------------------------------------------------------------------------------
def test_day_first_file_names_a_flag_train_has(files):
    code, _, err = cli("train", "-c", "configs/demo.yaml", "--data", files / "dmy.csv", "--out", files / "r0", *QUICK)
    assert code == 2 and "cannot parse timestamps" in err and "--time-format" in err, err


@pytest.fixture(scope="module")
def flag_run(files) -> Path:
    out = ok("train", "-c", "configs/demo.yaml", "--data", files / "dmy.csv", "--out", files / "runs", "--run-id", "flag",
             "--time-format", DMY, "--target-cols", "load,temp", *QUICK)
    return Path(out.strip().splitlines()[-1])


def test_time_format_flag_trains_and_is_saved_with_the_run(flag_run):
    data = _config(flag_run)
    # the all-empty column 'empty' was never selected, so never checked
    assert data["time_format"] == DMY and data["columns"] == ["load", "temp"]


def test_the_run_predicts_and_evaluates_with_its_own_reading_options(flag_run, files):
    # no --time-format: the model's data.time_format applies (the same file would not parse without it)
    out = ok("predict", "--model", flag_run, "--input", files / "dmy.csv", "--output", files / "fc.csv", "-q",
             "--samples", "10")
    fc = pd.read_csv(out.strip())
    assert len(fc) == 2 * 24 and set(fc["channel"]) == {"load", "temp"}
    assert str(fc["timestamp"].iloc[0]).startswith("2016-11-17 16:00")  # day-first: 17 November, after the data
    table = ok("evaluate", "--model", flag_run, "--max-windows", "2", "--samples", "10", "-q")
    assert "crps" in table


def test_set_data_time_format_trains(files):
    """`--set data.time_format=%d/%m/%Y %H:%M` (a plain scalar that is not valid YAML) is taken as the string it is."""
    out = ok("train", "-c", "configs/demo.yaml", "--data", files / "dmy.csv", "--out", files / "runs", "--run-id", "set",
             "--set", f"data.time_format={DMY}", "--set", "data.columns=[load, temp]", *QUICK)
    data = _config(Path(out.strip().splitlines()[-1]))
    assert data["time_format"] == DMY and data["columns"] == ["load", "temp"]


def test_a_flag_wins_over_set_and_the_yaml(tmp_path):
    from forecasting.cli.commands.arguments import reading_overrides
    from forecasting.cli.entry import build_parser
    from forecasting.forecaster.config import read_forecaster_config

    (tmp_path / "c.yaml").write_text("data: {time_format: '%Y', encoding: cp1252, delimiter: ','}\n")
    args = build_parser().parse_args(["train", "-c", str(tmp_path / "c.yaml"), "--set", "data.time_format=%m",
                                      "--time-format", DMY, "--delimiter", "tab", "--columns", "a, b"])
    config, _, resolved = read_forecaster_config(args.config, list(args.overrides) + reading_overrides(args))
    assert (config.data.time_format, config.data.encoding, config.data.columns) == (DMY, "cp1252", ("a", "b"))
    assert config.data.read_options()["delimiter"] == "\t"  # 'tab' as a shell user types it
    assert resolved["data"]["time_format"] == DMY  # what config.yaml holds


# -- encoding ---------------------------------------------------------------------------------------
def test_latin1_file_with_encoding(files):
    code, out, _ = cli("data", "validate", files / "latin.csv")
    assert code == 2 and "not valid UTF-8" in out and "--encoding" in out, out
    out = ok("train", "-c", "configs/demo.yaml", "--data", files / "latin.csv", "--out", files / "runs", "--run-id", "latin",
             "--encoding", "latin-1", *QUICK)
    run = Path(out.strip().splitlines()[-1])
    assert _config(run)["encoding"] == "latin-1"
    meta = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert meta["columns"] == ["Last", "Temperatur°C"]
    # predict reads the same latin-1 file with the model's encoding and delimiter detection
    fc = pd.read_csv(ok("predict", "--model", run, "--input", files / "latin.csv", "--output", files / "fc_latin.csv",
                        "-q", "--samples", "10").strip())
    assert set(fc["channel"]) == {"Last", "Temperatur°C"}


# -- column selection before per-column checks -----------------------------------------------------
def test_columns_are_selected_before_they_are_checked(files):
    code, out, _ = cli("data", "validate", files / "dmy.csv", "--time-format", DMY)
    assert code == 2 and "column 'empty'" in out and "--target-cols" in out
    for flag in ("--target-cols", "--columns"):
        code, out, _ = cli("data", "validate", files / "dmy.csv", "--time-format", DMY, flag, "load,temp")
        assert code == 0 and "2 channels" in out, out


# -- did-you-mean for a data key given at the top --------------------------------------------------
def test_set_missing_suggests_data_missing(files):
    code, _, err = cli("train", "-c", "configs/demo.yaml", "--data", files / "dmy.csv", "--set", "missing=interpolate")
    assert code == 2 and "did you mean 'data.missing'?" in err, err
    code, _, err = cli("train", "-c", "configs/demo.yaml", "--data", files / "dmy.csv", "--out", files / "r1",
                       "--set", "data.time_format=%d/%m/%Y %H:%M", "--set", "data.target_cols=[load]", "--set", "data.lookback=1")
    assert code == 2 and "lookback must be >= 2" in err, err  # alias accepted, the format taken as text


def test_predict_maps_other_column_names_and_fills_by_the_flags(flag_run, files, tmp_path):
    """predict takes the same flags: --target-cols names the columns holding the model's channels (in order),
    --missing fills a hole in the rows it reads, --delimiter/--time-col as everywhere."""
    frame = pd.read_csv(files / "dmy.csv")
    frame = frame.rename(columns={"Date": "when", "load": "kWh", "temp": "degC"}).drop(columns="empty")
    frame.loc[len(frame) - 3, "kWh"] = np.nan
    frame.to_csv(tmp_path / "other.csv", index=False, sep="|")
    base = ["predict", "--model", flag_run, "--input", tmp_path / "other.csv", "--output", tmp_path / "fc.csv", "-q",
            "--samples", "10", "--time-col", "when", "--delimiter", "|"]
    code, _, err = cli(*base)
    assert code == 2 and "the model forecasts 2 channels ['load', 'temp']" in err, err
    code, _, err = cli(*base, "--target-cols", "kWh,degC")
    assert code == 2 and "missing value in channel 'load'" in err and "--missing" in err, err
    fc = pd.read_csv(ok(*base, "--target-cols", "kWh,degC", "--missing", "interpolate").strip())
    assert set(fc["channel"]) == {"load", "temp"} and fc["mean"].notna().all()
