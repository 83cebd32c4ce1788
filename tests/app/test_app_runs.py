"""CLI and dashboard share runs: a run written by the dashboard's training worker predicts with
``forecasting predict --model``, a run written by ``forecasting train`` is listed and loaded by the
dashboard, and both run.json files follow the one schema (forecasting.forecaster.runs)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from app.components import data_source as ds  # noqa: E402
from app.components import jobs  # noqa: E402
from app.components import settings as cfg  # noqa: E402
from forecasting.cli.entry import main  # noqa: E402
from forecasting.forecaster import runs  # noqa: E402

TINY = ["data.lookback=48", "data.horizon=24", "model.seg_len=24", "model.dynamic_dim=8", "model.hidden_dim=16",
        "model.hidden_layers=1", "model.num_blocks=1", "training.epochs=1", "training.max_batches_per_epoch=2",
        "inference.eval_samples=2", "inference.warm_start_epochs=1", "device=cpu"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """The last 1500 half-hours of the embedded sample, as the dashboard's frame and as a CSV for the CLI."""
    d = tmp_path_factory.mktemp("shared-runs")
    frame = ds.read_source(ds.sample_source()).frames[0].tail(1500)
    pl.DataFrame({"Time": frame.timestamps, **{c: frame.values[:, i] for i, c in enumerate(frame.columns)}}
                 ).write_csv(d / "vic.csv")
    return d


@pytest.fixture(scope="module")
def dashboard_run(work) -> Path:
    """A run written by the dashboard's background worker (ScoreVI-Koopa + the deterministic peer)."""
    frame = ds.read_source(str(work / "vic.csv")).frames[0]
    train = cfg.with_overrides(cfg.PRESETS["tiny"], max_batches_per_epoch=2)
    config = cfg.forecaster_config_dict(cfg.DataSettings(lookback=48, horizon=24), train, device="cpu")
    job = jobs.TrainJob(frame, config, work / "runs", runs.new_run_id("dashboard-vic"),
                        deterministic_config=cfg.deterministic_config_dict(config, train), val_windows=train.val_windows,
                        extra={"dataset": str(work / "vic.csv"), "data_file": str(work / "vic.csv"), "data_digest": "d1",
                               "key": "k1"})
    try:
        prog = job.wait(timeout=180)
        assert prog.state == "done", (prog.message, job.log_tail(20))
    finally:
        if job.running():
            job.proc.kill()
        job.cleanup()
    return prog.run_dir


@pytest.fixture(scope="module")
def cli_run(work) -> Path:
    """A run written by ``forecasting train`` (in-process; stdout captured here, capsys is per test)."""
    import contextlib
    import io

    sets = [a for item in TINY for a in ("--set", item)]
    with contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["train", "--config", str(REPO / "configs" / "demo.yaml"), "--data", str(work / "vic.csv"),
                     "--out", str(work / "runs"), "--run-id", "cli-run", "--no-eval", "-q", "--threads", "1", *sets]) == 0
    run = Path(out.getvalue().strip().splitlines()[-1])  # RUN=$(forecasting train ...) still works
    assert run == work / "runs" / "cli-run"
    return run


def test_both_sources_write_the_one_schema(dashboard_run, cli_run):
    dash = json.loads((dashboard_run / "run.json").read_text())
    cli = json.loads((cli_run / "run.json").read_text())
    for meta in (dash, cli):
        runs.validate_run_meta(meta)
    assert list(dash) == list(cli) == list(runs.RUN_KEYS)
    assert dash["source"] == "dashboard" and dash["cache_key"] == "k1" and dash["command"] is None
    assert dash["training_summary"]["method"] == "scorevi"
    assert dash["baselines"]["deterministic"]["training_summary"]["method"] == "deterministic"
    assert cli["source"] == "cli" and cli["command"].startswith("forecasting ") and cli["cache_key"] is None
    assert cli["config_source"].endswith("demo.yaml") and cli["training_summary"]["method"] == "scorevi"
    assert (cli_run / "train").is_dir() and not (dashboard_run / "train").exists()


def test_dashboard_run_predicts_with_the_cli(dashboard_run, work, capsys):
    out = work / "fc_dashboard.csv"
    assert main(["predict", "--model", str(dashboard_run), "--input", str(work / "vic.csv"), "--output", str(out),
                 "--samples", "20", "-q"]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    table = pl.read_csv(out)
    assert table.height == 2 * 24 and {"mean", "median", "q0.05", "q0.95"} <= set(table.columns)


def test_cli_run_is_listed_and_loaded_by_the_dashboard(cli_run, dashboard_run):
    listed = {r["name"]: r for r in jobs.list_runs(cli_run.parent)}
    assert set(listed) == {cli_run.name, dashboard_run.name}
    entry = listed[cli_run.name]
    assert entry["meta"]["source"] == "cli" and entry["deterministic"] is None
    assert entry["model"] == cli_run / "model"
    assert listed[dashboard_run.name]["deterministic"] == dashboard_run / "baselines" / "deterministic"
    fc = runs.load_forecaster(entry["model"], device="cpu")  # what the page's _load_model does
    assert (fc.method, fc.lookback, fc.horizon, fc.columns) == ("scorevi", 48, 24, ("Demand", "Temperature"))


def test_old_run_formats_still_load(cli_run, dashboard_run, work, tmp_path, capsys):
    """Runs written before the shared schema: the old CLI record and the old dashboard record."""
    import shutil

    old_cli = {"command": "forecasting train ...", "dataset": str(work / "vic.csv"), "series": "vic", "rows": 1500,
               "columns": ["Demand", "Temperature"], "freq": "30min", "seconds": {"fit": 1.0},
               "training_summary": {"method": "scorevi"}}
    old_dash = {"created": "2024-01-01T00:00:00Z", "source": "dashboard", "dataset": "vic", "data_digest": "d0",
                "key": "k0", "columns": ["Demand", "Temperature"], "freq": "30min", "rows": 1500,
                "device": {"device": "cpu"}, "torch_threads": 1,
                "summary": {"scorevi": {"method": "scorevi"}, "deterministic": {"method": "deterministic"}}}
    for src, name, raw in ((cli_run, "old-cli", old_cli), (dashboard_run, "old-dash", old_dash)):
        shutil.copytree(src, tmp_path / name)
        (tmp_path / name / "run.json").write_text(json.dumps(raw))
    listed = {r["name"]: r for r in jobs.list_runs(tmp_path)}
    assert listed["old-dash"]["meta"]["training_summary"]["method"] == "scorevi"
    assert listed["old-dash"]["meta"]["data_digest"] == "d0" and listed["old-dash"]["deterministic"] is not None
    assert listed["old-cli"]["meta"]["dataset"] == str(work / "vic.csv")
    for name in ("old-cli", "old-dash"):
        out = tmp_path / f"{name}.csv"
        assert main(["predict", "--model", str(tmp_path / name), "--input", str(work / "vic.csv"), "--output", str(out),
                     "-n", "10", "-q"]) == 0
        assert out.is_file()
