"""The run directory (forecasting.forecaster.runs): one writer, one run.json schema, old layouts still read,
listing skips what is not finished, failures leave nothing behind."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.core.config import from_dict
from forecasting.core.errors import ForecastingError
from forecasting.data.series import SeriesFrame
from forecasting.forecaster import runs
from forecasting.forecaster.config import ForecasterConfig

REPO = Path(__file__).resolve().parents[2]
TINY = {"data": {"lookback": 28, "horizon": 7},
        "model": {"seg_len": 7, "dynamic_dim": 4, "hidden_dim": 8, "hidden_layers": 1, "num_blocks": 1},
        "inference": {"method": "deterministic"}, "training": {"epochs": 1, "max_batches_per_epoch": 2},
        "device": "cpu"}


def _frame(n: int = 300) -> SeriesFrame:
    t = pd.date_range("2022-01-01", periods=n, freq="D")
    y = 10 + np.sin(np.arange(n) / 7) + 0.1 * np.random.default_rng(0).standard_normal(n)
    return SeriesFrame("toy", t.to_numpy(dtype="datetime64[ns]"), y[:, None], ("y",), "D")


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    """A run written through the one writer, with a baseline (as the dashboard does)."""
    root = tmp_path_factory.mktemp("runs")
    config = from_dict(ForecasterConfig, TINY)
    with runs.write_run(root / "r1", source="dashboard", cache_key="k1") as run:
        run.record_data(_frame(), "toy", data_file="/data/toy.csv", data_digest="abc")
        run.fit(_frame(), config)
        run.write_config(TINY)
        run.fit_baseline("deterministic", _frame(), config)
        # staged until the block closes: the run id is claimed, the directory holds only the marker
        assert [p.name for p in (root / "r1").iterdir()] == [".incomplete"]
        assert runs.unfinished_run(root / "r1").state == "running"
    return root / "r1"


def test_writer_produces_the_layout_and_the_schema(written):
    for name in ("config.yaml", "run.json", "model/manifest.json", "baselines/deterministic/manifest.json"):
        assert (written / name).is_file(), name
    meta = json.loads((written / "run.json").read_text())
    runs.validate_run_meta(meta)
    assert tuple(meta) == runs.RUN_KEYS and meta["schema"] == runs.SCHEMA
    assert meta["run_id"] == "r1" and meta["source"] == "dashboard" and meta["command"] is None
    assert meta["dataset"] == "toy" and meta["data_file"] == "/data/toy.csv" and meta["cache_key"] == "k1"
    assert meta["columns"] == ["y"] and meta["rows"] == 300 and meta["freq"] == "D"
    assert meta["training_summary"]["method"] == "deterministic" and meta["seconds"]["fit"] >= 0
    assert meta["device"]["device"] == "cpu" and meta["package_version"] and meta["created"].endswith("Z")
    assert meta["baselines"]["deterministic"]["model"] == "baselines/deterministic"
    assert meta["metrics"] is None and meta["test"] is None
    assert not [p for p in written.parent.iterdir() if p.name.startswith(".")]  # no staging leftovers


def test_listing_and_loading(written, tmp_path):
    shutil.copytree(written, tmp_path / "good")
    (tmp_path / ".staged.tmp-1" / "model").mkdir(parents=True)  # hidden: being written
    (tmp_path / "half" / "model").mkdir(parents=True)  # no manifest: interrupted
    listed = runs.list_runs(tmp_path)
    assert [r.name for r in listed] == ["good"]
    assert listed[0].baselines == {"deterministic": tmp_path / "good" / "baselines" / "deterministic"}
    fc = runs.load_forecaster(listed[0].path, device="cpu")
    assert fc.predict(_frame(), n_samples=5).samples.shape == (5, 1, 7, 1)
    assert runs.resolve_model_dir(tmp_path / "good" / "model") == tmp_path / "good" / "model"
    with pytest.raises(ForecastingError, match="not a complete model artifact"):
        runs.resolve_model_dir(tmp_path / "half")
    assert runs.read_run_meta(tmp_path / "good" / "model")["run_id"] == "r1"  # --model may point at model/
    assert runs.list_runs(tmp_path / "missing") == []


def test_old_layouts_are_normalized(written, tmp_path):
    old_cli = {"command": "forecasting train --config c.yaml", "dataset": "ETTh2", "series": "ETTh2", "rows": 10,
               "columns": ["OT"], "freq": "h", "seconds": {"fit": 1.0}, "training_summary": {"method": "scorevi"}}
    old_dash = {"created": "2024-01-01T00:00:00Z", "source": "dashboard", "dataset": "vic_elec", "data_digest": "d",
                "key": "k", "columns": ["Demand"], "freq": "30min", "rows": 5,
                "summary": {"scorevi": {"method": "scorevi"}, "deterministic": {"method": "deterministic"}}}
    for name, raw in (("cli", old_cli), ("dash", old_dash)):
        shutil.copytree(written, tmp_path / name)
        (tmp_path / name / "run.json").write_text(json.dumps(raw))
    cli, dash = runs.read_run_meta(tmp_path / "cli"), runs.read_run_meta(tmp_path / "dash")
    for meta in (cli, dash):
        assert set(runs.RUN_KEYS) <= set(meta) and meta["schema"] is None
        assert meta["training_summary"]["method"] == "scorevi"
    assert cli["source"] == "cli" and cli["dataset"] == "ETTh2" and cli["baselines"] == {}
    assert dash["source"] == "dashboard" and dash["cache_key"] == "k" and dash["data_digest"] == "d"
    assert dash["baselines"]["deterministic"]["training_summary"]["method"] == "deterministic"
    assert dash["key"] == "k" and "summary" in dash  # old keys stay readable
    listed = {r.name: r for r in runs.list_runs(tmp_path)}
    assert listed["dash"].baselines["deterministic"].is_dir() and listed["cli"].meta["dataset"] == "ETTh2"
    assert runs.read_run_meta(written / "model" / "manifest.json") == {}  # nothing to read: a bare artifact


def test_a_failed_run_leaves_nothing_and_an_existing_run_is_kept(written, tmp_path):
    with pytest.raises(RuntimeError):
        with runs.write_run(tmp_path / "boom", source="cli") as run:
            run.write_config(TINY)
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ForecastingError, match="already exists"):
        with runs.write_run(written, source="cli"):
            pass
    with pytest.raises(ValueError, match="source"):
        with runs.write_run(tmp_path / "x", source="notebook"):
            pass


def test_schema_check_names_the_problem():
    meta = runs.RunRecord(run_id="a").to_dict()
    runs.validate_run_meta(meta)
    with pytest.raises(ForecastingError, match=r"missing \['cache_key'\], unknown \['extra'\]"):
        runs.validate_run_meta({**{k: v for k, v in meta.items() if k != "cache_key"}, "extra": 1})


def test_run_ids_and_configs(monkeypatch, tmp_path):
    a, b = runs.new_run_id("my data/1"), runs.new_run_id("my data/1")
    assert a != b and a.startswith("my_data_1-")
    monkeypatch.chdir(tmp_path)  # not the repository: the checkout's configs/ is found
    assert runs.find_config(None) == REPO / "configs" / "demo.yaml"
    assert runs.find_config("x.yaml") == Path("x.yaml")
    with pytest.raises(ForecastingError, match="configs/nope.yaml not found"):
        runs.find_config(None, "nope.yaml")
    config, dataset, resolved = runs.load_run_config(REPO / "configs" / "demo.yaml", ["training.epochs=2"], "ETTh2")
    assert dataset == "ETTh2" and resolved["dataset"] == "ETTh2" and config.training.epochs == 2
