"""The public Forecaster API on a short real series (the embedded vic_elec): fit -> save -> load -> predict."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
import torch

from forecasting.core.config import from_dict, load_config, to_dict
from forecasting.core.errors import ForecastingError
from forecasting.forecaster.api import Forecaster
from forecasting.forecaster.config import DEFAULT_QUANTILES, ForecasterConfig, ModelSection
from forecasting.models.koopa.module import KoopaConfig, KoopaHyperparameters

L, H = 48, 24

TINY = {
    "data": {"lookback": L, "horizon": H},
    "model": {"dynamic_dim": 8, "hidden_dim": 16, "num_blocks": 1, "seg_len": 12},
    "inference": {"method": "scorevi", "eval_samples": 4, "scorevi": {"mc_samples": 2}},
    "training": {"epochs": 1, "max_batches_per_epoch": 10, "device": "cpu"},
    "predict": {"samples": 64},
    "device": "cpu",
}


@pytest.fixture(scope="module")
def vic():
    from forecasting.data import load_series

    return load_series("vic_elec").head(1500)


@pytest.fixture(scope="module")
def fitted(vic):
    return Forecaster.fit(vic, from_dict(ForecasterConfig, TINY))


def test_round_trip_gives_identical_samples(fitted, vic, tmp_path):
    p1 = fitted.predict(vic, seed=3)
    assert np.array_equal(p1.samples, fitted.predict(vic, seed=3).samples)
    assert not np.array_equal(p1.samples, fitted.predict(vic, seed=4).samples)
    path = fitted.save(tmp_path / "model")
    loaded = Forecaster.load(path, device="cpu")
    assert loaded.columns == fitted.columns and loaded.freq == fitted.freq == "30min"
    assert np.array_equal(p1.samples, loaded.predict(vic, seed=3).samples)
    # the artifact describes itself
    manifest = json.loads((path / "manifest.json").read_text())
    meta = json.loads((path / "metadata.json").read_text())
    assert manifest["format_version"] >= 1 and manifest["package_version"]
    assert {"model.safetensors", "likelihood.safetensors", "posterior.safetensors"} <= set(manifest["files"])
    assert meta["columns"] == ["Demand", "Temperature"] and meta["freq"] == "30min"
    assert meta["config"]["inference"]["method"] == "scorevi"
    assert len(meta["scaler"]["mean"]) == 2 and meta["frequency_mask"]
    assert meta["training_summary"]["windows"]["train"] > 0
    assert not list(path.glob("*.pt")) and not list(path.glob("*.pkl")), "no pickle files in an artifact"


def test_prediction_is_on_original_scale_with_timestamps(fitted, vic):
    pred = fitted.predict(vic, n_samples=32, seed=0)
    assert pred.samples.shape == (32, 1, H, 2)
    ts = pred.timestamps(0)
    assert ts[0] == pd.Timestamp(vic.timestamps[-1]) + pd.Timedelta("30min") and len(ts) == H
    demand = vic.values[:, 0]
    assert demand.min() * 0.5 < np.median(pred.samples[..., 0]) < demand.max() * 1.5  # MW, not z-scores
    scaled = pred.scaled_samples()
    assert np.abs(np.median(scaled)) < 5


def test_quantiles_monotone_and_intervals_nested(fitted, vic):
    pred = fitted.predict(vic, n_samples=200, seed=1)
    frame = pred.to_frame()
    qcols = [f"q{q:g}" for q in DEFAULT_QUANTILES]
    assert list(frame.columns[:7]) == ["item_id", "window", "channel", "timestamp", "step", "mean", "median"]
    assert qcols == list(frame.columns[7:]) and "q0.05" in qcols and "q0.95" in qcols
    assert len(frame) == H * 2
    q = frame[qcols].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all(), "quantiles must be monotone in the level"
    np.testing.assert_allclose(frame["median"], frame["q0.5"])
    lo50, hi50 = pred.interval(0.5)
    lo80, hi80 = pred.interval(0.8)
    lo95, hi95 = pred.interval(0.95)
    assert (lo95 <= lo80).all() and (lo80 <= lo50).all() and (hi50 <= hi80).all() and (hi80 <= hi95).all()
    assert ((hi95 - lo95) > 0).all(), "the predictive must have a spread (observation noise at least)"


def test_gluonts_evaluation_works_unchanged(fitted, vic):
    from gluonts.dataset.common import ListDataset
    from gluonts.dataset.split import split
    from gluonts.ev.metrics import MSE, MeanWeightedSumQuantileLoss
    from gluonts.model import evaluate_forecasts

    history = vic.head(vic.length - H)
    pred = fitted.predict(history, n_samples=100, seed=0)
    forecasts = pred.to_sample_forecasts()
    assert len(forecasts) == 2 and forecasts[0].samples.shape == (100, H)
    start = pd.Period(pd.Timestamp(vic.timestamps[0]), freq="30min")
    ds = ListDataset([{"start": start, "target": vic.values[:, c], "item_id": f"vic/{name}"}
                      for c, name in enumerate(vic.columns)], freq="30min")
    _, template = split(ds, offset=-H)
    test_data = template.generate_instances(prediction_length=H, windows=1)
    result = evaluate_forecasts(forecasts, test_data=test_data,
                                metrics=[MSE(), MeanWeightedSumQuantileLoss(quantile_levels=[0.1, 0.5, 0.9])])
    truth = vic.values[-H:]
    ours = ((pred.mean()[0] - truth) ** 2).mean(axis=0)  # per channel
    np.testing.assert_allclose(result["MSE[mean]"].to_numpy(), [ours.mean()], rtol=1e-4)  # aggregated over items
    assert np.isfinite(result["mean_weighted_sum_quantile_loss"]).all()
    multi = pred.to_sample_forecasts(multivariate=True)
    assert len(multi) == 1 and multi[0].samples.shape == (100, H, 2)
    # gluonts' classic Evaluator takes the same objects
    from gluonts.evaluation import Evaluator

    series = [pd.DataFrame(vic.values[:, c], index=pd.period_range(start, periods=vic.length, freq="30min"))
              for c in range(2)]
    agg, _ = Evaluator(quantiles=[0.1, 0.5, 0.9], num_workers=0)(iter(series), iter(forecasts), num_series=2)
    assert np.isfinite(agg["mean_wQuantileLoss"])


def test_raw_arrays_panels_and_splits(fitted, vic):
    x = np.stack([vic.values[100 : 100 + L], vic.values[300 : 300 + L]])
    pred = fitted.predict(x, n_samples=8, seed=0)
    longer = fitted.predict(vic.values[290 : 300 + L], n_samples=8, seed=0)  # [L+10, C]: the last L rows are used
    np.testing.assert_array_equal(longer.samples[:, 0], fitted.predict(x[1], n_samples=8, seed=0).samples[:, 0])
    assert pred.samples.shape == (8, 2, H, 2) and pred.timestamps(0) is None
    with pytest.raises(ForecastingError, match="timestamps"):
        pred.to_sample_forecasts()
    stamped = fitted.predict(x, n_samples=8, seed=0, start=["2012-01-05", "2012-01-09"])
    assert len(stamped.to_sample_forecasts()) == 4
    panel = fitted.predict([vic, vic.head(800)], n_samples=8, seed=0)
    assert panel.samples.shape == (8, 2, H, 2)
    test = fitted.predict_split(vic, "test", n_samples=8, seed=0, stride=H)
    assert test.samples.shape[1] >= 2 and test.starts[0] is not None
    assert (np.diff([pd.Timestamp(s).value for s in test.starts]) == pd.Timedelta("30min").value * H).all()


def test_predict_input_errors(fitted, vic):
    with pytest.raises(ForecastingError, match="lookback"):
        fitted.predict(vic.head(L - 1))
    bad = dataclasses.replace(vic, values=vic.values.copy())
    bad.values[-3, 1] = np.nan
    with pytest.raises(ForecastingError, match="NaN"):
        fitted.predict(bad)
    other = dataclasses.replace(vic, columns=("Load", "Temperature"))
    with pytest.raises(ForecastingError, match="channels"):
        fitted.predict(other)
    with pytest.raises(ForecastingError, match="channels"):
        fitted.predict(vic.select(["Demand"]))
    with pytest.raises(ForecastingError, match="frequency"):
        fitted.predict(dataclasses.replace(vic, freq="h"))
    with pytest.raises(ForecastingError, match="channels"):
        fitted.predict(np.zeros((L, 3)))
    with pytest.raises(ForecastingError, match="lookback"):
        fitted.predict(np.zeros((L - 5, 2)))
    with pytest.raises(ForecastingError, match="NaN"):
        fitted.predict(np.full((L, 2), np.nan))
    # reordered columns are fine (selected by name)
    swapped = vic.select(["Temperature", "Demand"])
    np.testing.assert_allclose(fitted.predict(swapped, seed=0, n_samples=4).samples,
                               fitted.predict(vic, seed=0, n_samples=4).samples, rtol=1e-5)


def test_model_state_is_intact_after_batched_sampling(fitted, vic):
    fitted.predict(vic, n_samples=16, seed=0)
    sd = fitted.model.state_dict()  # raises if vmap left batched tensors in shared submodules
    assert all(torch.isfinite(v.float()).all() for v in sd.values())
    fitted.model(torch.zeros(1, L, 2))


def test_config_yaml_overrides_and_errors(tmp_path):
    path = tmp_path / "fc.yaml"
    path.write_text("data: {lookback: 48, horizon: 24}\ninference: {method: advi, bayesian: decoders}\nmodel: {seg_len: 12}\n")
    cfg = load_config(ForecasterConfig, path, ["inference.scorevi.family=low_rank", "predict.samples=7"])
    assert cfg.inference.method == "advi" and cfg.inference.bayesian == ("decoders",)
    assert cfg.inference.scorevi.family.value == "low_rank" and cfg.predict.samples == 7
    assert cfg.inference.scorevi.init_scale == 1e-3  # forecaster default (not the engine's) kept under a partial override
    assert from_dict(ForecasterConfig, to_dict(cfg)) == cfg
    with pytest.raises(ForecastingError, match="did you mean 'lookback'"):
        from_dict(ForecasterConfig, {"data": {"lookbak": 3}})
    with pytest.raises(ForecastingError, match="method"):
        from_dict(ForecasterConfig, {"inference": {"method": "laplace"}})
    with pytest.raises(ForecastingError, match="warm_start_epochs"):
        from_dict(ForecasterConfig, {"inference": {"prior_center": "warm_start", "warm_start_epochs": 0}})
    # the default: a MAP warm start with the prior centred there; without a warm start, a zero-centred prior
    assert cfg.inference.warm_start_epochs == 2 and cfg.inference.resolved_prior_center == "warm_start"
    cold = from_dict(ForecasterConfig, {"inference": {"warm_start_epochs": 0}})
    assert cold.inference.resolved_prior_center == "zero"
    with pytest.raises(ForecastingError, match="seg_len"):
        from_dict(ForecasterConfig, {"data": {"lookback": 8, "horizon": 24}})
    koopa = {f.name for f in dataclasses.fields(KoopaConfig)} - {"lookback", "horizon"}
    assert {f.name for f in dataclasses.fields(ModelSection)} == koopa, "ModelSection must mirror KoopaConfig"
    # Koopa's defaults are stated once: the model section is the model's own dataclass, and the section a run
    # saves (config.yaml, the artifact) keeps its keys, order and values.
    assert ModelSection is KoopaHyperparameters
    assert list(to_dict(ForecasterConfig().model).items()) == [
        ("seg_len", None), ("dynamic_dim", 128), ("hidden_dim", 64), ("hidden_layers", 2), ("num_blocks", 3),
        ("alpha", 0.2), ("dropout", 0.05), ("multistep", False), ("ridge", 1e-4)]
    assert ForecasterConfig().koopa() == KoopaConfig(lookback=96, horizon=48)


def test_fit_data_errors(vic):
    with pytest.raises(ForecastingError, match="data.columns"):
        Forecaster.fit(vic, from_dict(ForecasterConfig, {**TINY, "data": {**TINY["data"], "columns": ["Nope"]}}))
    bad = dataclasses.replace(vic, values=vic.values.copy())
    bad.values[10, 0] = np.nan
    with pytest.raises(ForecastingError, match="missing"):
        Forecaster.fit(bad, from_dict(ForecasterConfig, TINY))
    cfg = from_dict(ForecasterConfig, {**TINY, "data": {**TINY["data"], "missing": "interpolate", "columns": ["Demand"]},
                                       "inference": {"method": "deterministic"}})
    fc = Forecaster.fit(bad, cfg)
    assert fc.columns == ("Demand",)


def test_predict_split_honours_a_strided_prepared_split(fitted, vic):
    # ProbTS-style test windows (stride 96 over the split): the inputs and start times must be
    # those of the strided windows, not of the first windows of a stride-1 split.
    from forecasting.data.windows import WindowDataset, prepare

    full = prepare(vic, L, H, fitted.config.data.split)
    strided = dataclasses.replace(full, test=WindowDataset(full.scaled, L, H, full.test.start, full.test.end, stride=96))
    pred = fitted.predict_split(strided, "test", n_samples=4, seed=0)
    every = fitted.predict_split(full, "test", n_samples=4, seed=0, stride=96)
    assert pred.samples.shape[1] == len(strided.test) >= 2
    np.testing.assert_array_equal(pred.samples, every.samples)
    assert pred.starts == every.starts
    x, _ = strided.test.batch(torch.arange(len(strided.test)))
    direct = fitted.sample_scaled(x, 4, 0).numpy()
    np.testing.assert_allclose(fitted.scaler.transform(pred.samples.astype(np.float64)), direct, atol=1e-4)


def test_on_epoch_reports_every_epoch_of_every_phase(vic):
    calls = []
    cfg = from_dict(ForecasterConfig, {**TINY, "inference": {**TINY["inference"], "warm_start_epochs": 2},
                                       "training": {**TINY["training"], "epochs": 2, "patience": 5}})
    Forecaster.fit(vic, cfg, on_epoch=lambda phase, rec: calls.append((phase, rec["epoch"], "val_crps" in rec)))
    assert calls == [("warm_start", 1, True), ("warm_start", 2, True), ("posterior", 1, True), ("posterior", 2, True)]
    point = []
    Forecaster.fit(vic, dataclasses.replace(cfg, inference=dataclasses.replace(cfg.inference, method="conformal")),
                   on_epoch=lambda phase, rec: point.append(phase))
    assert point == ["train", "train"]

    class Stop(Exception):
        pass

    def stop(phase, rec):  # a callback can stop training (e.g. an Optuna pruner)
        raise Stop

    with pytest.raises(Stop):
        Forecaster.fit(vic, cfg, on_epoch=stop)
