"""The dashboard's non-UI pieces: configs it builds, upload handling, background jobs (cancel), run listing,
progress, and the ``forecasting dashboard`` command."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from app.components import data_source as ds  # noqa: E402
from app.components import jobs  # noqa: E402
from app.components import settings as cfg  # noqa: E402
from forecasting.core.config import from_dict  # noqa: E402
from forecasting.data import validate  # noqa: E402
from forecasting.forecaster.config import ForecasterConfig  # noqa: E402


@pytest.mark.parametrize("preset", sorted(cfg.PRESETS))
def test_every_preset_builds_a_valid_config(preset):
    train = cfg.PRESETS[preset]
    config = cfg.forecaster_config_dict(cfg.DataSettings(lookback=96, horizon=48), train)
    fc = from_dict(ForecasterConfig, config)
    assert fc.inference.method == "scorevi" and fc.training.time_budget_s == train.time_budget_s
    assert fc.data.split.kind == "ratio" and abs(fc.data.split.test - 0.2) < 1e-9
    det = from_dict(ForecasterConfig, cfg.deterministic_config_dict(config, train))
    assert det.inference.method == "deterministic" and det.model == fc.model and det.data == fc.data


def test_cache_key_follows_data_and_settings():
    frame = ds.read_source(ds.sample_source()).frames[0]
    digest = cfg.frame_digest(frame)
    assert digest == cfg.frame_digest(frame.select(frame.columns))
    assert digest != cfg.frame_digest(frame.tail(1000))
    train = cfg.PRESETS["tiny"]
    c1 = cfg.forecaster_config_dict(cfg.DataSettings(), train)
    c2 = cfg.forecaster_config_dict(cfg.DataSettings(horizon=24), train)
    assert cfg.run_key(digest, c1, train) == cfg.run_key(digest, c1, train)
    assert cfg.run_key(digest, c1, train) != cfg.run_key(digest, c2, train)
    assert cfg.run_key(digest, c1, train) != cfg.run_key(digest, c1, cfg.with_overrides(train, samples=60))


def test_invalid_window_is_a_forecasting_error_with_the_cli_message():
    from forecasting.core.errors import ForecastingError

    with pytest.raises(ForecastingError, match="seg_len"):
        from_dict(ForecasterConfig, cfg.forecaster_config_dict(cfg.DataSettings(lookback=24, horizon=48), cfg.PRESETS["tiny"]))


def test_upload_is_saved_under_its_name_and_read_with_cli_messages(tmp_path):
    content = b"date;value\n2024-01-01;1\n2024-01-02;x\n2024-01-03;3\n"
    p1 = ds.save_upload("my data (1).csv", content, tmp_path)
    p2 = ds.save_upload("my data (1).csv", content, tmp_path)
    assert p1 == p2 and p1.name == "my_data__1_.csv" and p1.read_bytes() == content
    assert ds.peek_columns(p1) == ["date", "value"]
    loaded = ds.read_source(str(p1))
    assert not loaded.ok
    assert [str(p) for p in loaded.problems] == [str(p) for p in validate(p1)]
    assert "non-numeric value 'x'" in str(loaded.problems[0])


def test_read_with_mapping_and_parquet(tmp_path):
    import pandas as pd

    t = pd.date_range("2024-01-01", periods=300, freq="D")
    df = pd.DataFrame({"when": t, "a": np.arange(300.0), "b": np.sin(np.arange(300.0)), "label": ["x"] * 300})
    path = tmp_path / "wide.parquet"
    df.to_parquet(path)
    assert ds.peek_columns(path) == ["when", "a", "b", "label"]
    loaded = ds.read_source(str(path), ds.Mapping(time_col="when", target_cols=("b",)))
    assert loaded.ok and loaded.frames[0].columns == ("b",) and loaded.frames[0].freq == "D"
    assert loaded.detected.time_col == "when"
    bad = ds.read_source(str(path), ds.Mapping(time_col="wen"))
    assert not bad.ok and "did you mean 'when'" in str(bad.problems[0])
    frame = loaded.frames[0]
    assert ds.window_problems(frame, 96, 48, cfg.DataSettings().split_rule())  # 60 test rows < 96 + 48
    assert not ds.window_problems(frame, 24, 12, cfg.DataSettings().split_rule())


def test_benchmark_upload_is_recognised(shared_data_dir, tmp_path):
    path = ds.save_upload("ETTh2.csv", (shared_data_dir / "ETTh2.csv").read_bytes(), tmp_path)
    loaded = ds.read_source(str(path))
    assert loaded.ok and not loaded.problems
    frame = loaded.frames[0]
    assert frame.name == "ETTh2" and frame.freq == "h" and frame.values.shape == (17420, 7)


def test_progress_fraction_counts_phases_and_budget():
    now = time.time()
    st = {"phases": [["warm", 2], ["posterior", 2]], "phase": 1, "phase_epochs_done": 1, "phase_started": now,
          "budget_s": 10.0}
    assert jobs._fraction(st, now) == pytest.approx(0.75)  # 2 + 1 of 4 epochs
    st["phase_started"] = now - 9.0  # 90% of the phase's time budget spent
    assert jobs._fraction(st, now) == pytest.approx((2 + 0.9 * 2) / 4)
    st["phase_started"] = now - 100.0
    assert jobs._fraction(st, now) < 1.0


def test_list_runs_skips_incomplete_and_hidden(tmp_path):
    (tmp_path / ".staged.tmp-1" / "model").mkdir(parents=True)
    (tmp_path / ".staged.tmp-1" / "model" / "manifest.json").write_text("{}")
    (tmp_path / "half" / "model").mkdir(parents=True)  # no manifest: interrupted
    (tmp_path / "good" / "model").mkdir(parents=True)
    (tmp_path / "good" / "model" / "manifest.json").write_text("{}")
    (tmp_path / "good" / "run.json").write_text(json.dumps({"dataset": "ETTh2"}))
    runs = jobs.list_runs(tmp_path)
    assert [r["name"] for r in runs] == ["good"] and runs[0]["meta"]["dataset"] == "ETTh2"
    assert runs[0]["deterministic"] is None
    assert jobs.list_runs(tmp_path / "missing") == []


def test_cancel_stops_the_worker_and_leaves_no_run(tmp_path):
    frame = ds.read_source(ds.sample_source()).frames[0]
    train = cfg.with_overrides(cfg.PRESETS["tiny"], epochs=500, max_batches_per_epoch=10_000, time_budget_s=600.0)
    config = cfg.forecaster_config_dict(cfg.DataSettings(lookback=48, horizon=24), train, device="cpu")
    job = jobs.TrainJob(frame, config, tmp_path / "runs", "cancel-me")
    try:
        deadline = time.time() + 120
        while "training" not in job.progress().message and job.running() and time.time() < deadline:
            time.sleep(0.3)
        assert job.running(), job.log_tail(20)
        job.cancel()
        assert not job.running()
        assert job.progress().state == "cancelled"
    finally:
        if job.running():
            job.proc.kill()
        job.cleanup()
    runs = tmp_path / "runs"
    assert not runs.exists() or not any(runs.iterdir())  # nothing finished-looking, no staged leftovers
    assert not job.job_dir.exists()


def test_dashboard_command(capsys):
    from forecasting.cli.entry import main

    assert main(["dashboard", "--dry-run", "--port", "8765", "--runs-dir", "somewhere"]) == 0
    out = capsys.readouterr().out
    assert "--server.address 127.0.0.1" in out and "--server.port 8765" in out and "app/dashboard.py" in out
    assert "--runs-dir" in out and out.strip().endswith("somewhere")
    assert main(["dashboard", "--dry-run", "--port", "0"]) == 2
    assert "--port" in capsys.readouterr().err


def test_forecast_all_items_of_a_long_upload(tmp_path):
    """Every item of a long upload is forecast with the run's model; a broken item is skipped, not fatal."""
    import io

    from app.components.forecast import forecast_all_items
    from forecasting.data.series import SeriesFrame
    from forecasting.forecaster.api import Forecaster

    t = pd.date_range("2022-01-01", periods=400, freq="D")
    rng = np.random.default_rng(0)
    parts = [pd.DataFrame({"store": name, "day": t, "sales": 10 * (k + 1) + np.sin(np.arange(400) / 7) + 0.1 * rng.standard_normal(400)})
             for k, name in enumerate(["north", "south", "east"])]
    long = pd.concat(parts, ignore_index=True)
    long = long.drop(long[(long["store"] == "east")].index[-5])  # a gap inside east's last window
    path = tmp_path / "stores.csv"
    long.sample(frac=1.0, random_state=0).to_csv(path, index=False)  # any row order
    north = parts[0]
    frame = SeriesFrame("north", north["day"].to_numpy(dtype="datetime64[ns]"), north[["sales"]].to_numpy(float),
                        ("sales",), "D")
    fc = Forecaster.fit(frame, from_dict(ForecasterConfig, {
        "data": {"lookback": 28, "horizon": 7},
        "model": {"seg_len": 7, "dynamic_dim": 4, "hidden_dim": 8, "hidden_layers": 1, "num_blocks": 1},
        "inference": {"method": "deterministic"}, "training": {"epochs": 1, "max_batches_per_epoch": 2},
        "device": "cpu"}))
    out = forecast_all_items(fc, path, "store", "day", ("sales",), n_samples=20)
    table = pd.read_csv(io.BytesIO(out.csv))
    assert out.items == 2 and [item for item, _ in out.skipped] == ["east"]
    assert sorted(table["item_id"].unique()) == ["north", "south"] and len(table) == 2 * 7
    south = table[table["item_id"] == "south"]
    assert pd.to_datetime(south["timestamp"]).min() == t[-1] + pd.Timedelta("1D")
    assert south["median"].between(15, 25).all()  # south's level is 20: each item continues its own history
