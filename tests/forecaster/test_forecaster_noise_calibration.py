"""Validation re-fit of the observation noise (``likelihood.calibrate``) and its building block ``fit_scale``."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from forecasting.core.config import from_dict
from forecasting.data.series import SeriesFrame
from forecasting.forecaster.api import Forecaster
from forecasting.forecaster.config import ForecasterConfig
from forecasting.models.heads import GaussianLikelihood, StudentTLikelihood, fit_scale


@pytest.mark.parametrize("draws", [1, 8])
def test_fit_scale_recovers_known_gaussian_noise(draws):
    gen = torch.Generator().manual_seed(0)
    sigma = torch.tensor([0.1, 0.3, 1.0])
    y = torch.randn(300, 12, 3, generator=gen) * sigma
    lik = GaussianLikelihood(3, init_scale=0.5)
    locs = torch.zeros(draws, 300, 12, 3)
    out = fit_scale(lik, locs, y)
    np.testing.assert_allclose(lik.scale().detach().numpy(), sigma.numpy(), rtol=0.05)
    assert out["before"] == [0.5] * 3 and len(out["after"]) == 3


def test_fit_scale_accounts_for_weight_spread():
    """Draws that already spread by 0.3 around truth leave less for the noise than a point model would."""
    gen = torch.Generator().manual_seed(1)
    y = torch.randn(400, 8, 1, generator=gen) * 0.5
    point, mixture = GaussianLikelihood(1), GaussianLikelihood(1)
    fit_scale(point, torch.zeros(1, 400, 8, 1), y)
    fit_scale(mixture, torch.randn(16, 1, 8, 1, generator=gen).expand(16, 400, 8, 1) * 0.3, y)
    assert float(mixture.scale().detach()) < float(point.scale().detach()) - 0.05


def test_fit_scale_student_t_and_bound():
    gen = torch.Generator().manual_seed(2)
    y = torch.distributions.StudentT(5.0, 0.0, 0.2).sample((500, 8, 2))
    lik = StudentTLikelihood(2, df=5.0, init_scale=0.5)
    fit_scale(lik, torch.zeros(1, 500, 8, 2), y)
    np.testing.assert_allclose(lik.scale().detach().numpy(), [0.2, 0.2], rtol=0.1)
    far = GaussianLikelihood(1, init_scale=100.0)
    fit_scale(far, torch.zeros(1, 50, 4, 1), torch.randn(50, 4, 1, generator=gen) * 0.01, max_log_change=1.0)
    assert float(far.scale().detach()) == pytest.approx(100.0 / np.e, rel=1e-4)  # clipped at the bound


def _shifted_series(T: int = 1500) -> SeriesFrame:
    """A sine whose noise is 0.6 during training (first 70 %) and 0.2 afterwards (validation and test)."""
    rng = np.random.default_rng(0)
    t = np.arange(T)
    noise = np.where(t < int(0.7 * T), 0.6, 0.2)
    vals = (np.sin(2 * np.pi * t / 24) + rng.normal(size=T) * noise)[:, None]
    return SeriesFrame("shift", pd.date_range("2020-01-01", periods=T, freq="h").values, vals, ("a",), "h")


def _cfg(calibrate: str) -> ForecasterConfig:
    return from_dict(ForecasterConfig, {
        "data": {"lookback": 24, "horizon": 8},
        "model": {"dynamic_dim": 8, "hidden_dim": 16, "num_blocks": 1, "seg_len": 8},
        "likelihood": {"calibrate": calibrate},
        "inference": {"method": "scorevi", "eval_samples": 4, "warm_start_epochs": 2, "scorevi": {"mc_samples": 2}},
        "optim": {"lr": 0.01, "schedule": "constant"},  # the MAP warm start must learn the sine in a few steps
        "training": {"epochs": 1, "max_batches_per_epoch": 20, "device": "cpu"},
        "predict": {"samples": 16},
    })


def test_validation_calibration_follows_a_calmer_validation_period(tmp_path):
    data = _shifted_series()
    raw = Forecaster.fit(data, _cfg("none"))
    cal = Forecaster.fit(data, _cfg("validation"))
    assert "noise_calibration" not in raw.summary
    info = cal.summary["noise_calibration"]
    assert info["windows"] > 0 and info["after"][0] < info["before"][0]
    scaled_val_noise = 0.2 / float(cal.scaler.std[0])
    def overall(fc):  # geometric mean of the per-step scales
        return float(fc.likelihood.scale().detach().log().mean().exp())

    assert abs(overall(cal) - scaled_val_noise) < abs(overall(raw) - scaled_val_noise)
    loaded = Forecaster.load(cal.save(tmp_path / "cal"), device="cpu")
    np.testing.assert_allclose(loaded.likelihood.scale().detach().numpy(), cal.likelihood.scale().detach().numpy())


def test_shrink_calibration_is_the_geometric_mean_of_training_and_validation_fits():
    data = _shifted_series()
    raw = Forecaster.fit(data, _cfg("none"))
    val = Forecaster.fit(data, _cfg("validation"))
    shrink = Forecaster.fit(data, _cfg("shrink"))
    info = shrink.summary["noise_calibration"]
    assert info["rule"] == "shrink" and info["validation_fit"] == val.summary["noise_calibration"]["after"]
    log = lambda fc: fc.likelihood.log_scale.detach()  # noqa: E731
    torch.testing.assert_close(log(shrink), 0.5 * (log(raw) + log(val)), rtol=1e-5, atol=1e-5)
    assert ForecasterConfig().likelihood.calibrate == "shrink"  # the default (noise_calibration.md)


def test_per_step_calibration_recovers_noise_growing_along_the_horizon():
    # Residual std 0.1 at the first step rising to 1.0 at the last, two channels (one 3x wider):
    # a per-step head recovers each step's scale; a per-channel head can only fit their pool.
    torch.manual_seed(0)
    H, N = 6, 4000
    std = torch.linspace(0.1, 1.0, H)[:, None] * torch.tensor([1.0, 3.0])
    y = torch.randn(N, H, 2) * std
    locs = torch.zeros(1, N, H, 2)
    step = GaussianLikelihood(2, init_scale=0.5, horizon=H)
    fit_scale(step, locs, y, max_log_change=5.0)
    np.testing.assert_allclose(step.scale().detach().numpy(), std.numpy(), rtol=0.06)
    channel = GaussianLikelihood(2, init_scale=0.5)
    fit_scale(channel, locs, y, max_log_change=5.0)
    pooled = (std**2).mean(0).sqrt()
    np.testing.assert_allclose(channel.scale().detach().numpy(), pooled.numpy(), rtol=0.06)
    # The per-step head has the higher held-out likelihood.
    y2 = torch.randn(N, H, 2) * std
    assert step.per_example(torch.zeros_like(y2), y2).mean() > channel.per_example(torch.zeros_like(y2), y2).mean() + 0.5


def test_artifact_with_a_per_channel_head_still_loads(tmp_path):
    # scale_by=channel is what artifacts written before the per-step head contain.
    data = _shifted_series(600)
    cfg = _cfg("validation")
    cfg = dataclasses.replace(cfg, likelihood=dataclasses.replace(cfg.likelihood, scale_by="channel"))
    fc = Forecaster.fit(data, cfg)
    assert fc.likelihood.log_scale.shape == (1,)
    loaded = Forecaster.load(fc.save(tmp_path / "m"), device="cpu")
    assert loaded.likelihood.log_scale.shape == (1,)
    a = fc.predict(data, n_samples=8, seed=3).samples
    b = loaded.predict(data, n_samples=8, seed=3).samples
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("lik", [GaussianLikelihood(3, horizon=4), StudentTLikelihood(3, df=3.0, horizon=4)])
def test_scale_derivatives_match_autograd(lik):
    """fit_scale's analytic l, l', l'' in log σ equal autograd's of ``log_prob`` (what the re-fit optimises)."""
    gen = torch.Generator().manual_seed(7)
    r = 2 * torch.randn(5, 4, 3, generator=gen, dtype=torch.float64)
    v = (0.3 * torch.randn(4, 3, generator=gen, dtype=torch.float64)).requires_grad_(True)
    lp = lik.log_prob(torch.zeros((), dtype=torch.float64), r, v)
    (d1,) = torch.autograd.grad(lp.sum(), v, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), v)
    # log_prob is separable in the elements of v, so summing over the 5 residual rows is exact
    lp_a, d1_a, d2_a = lik.scale_derivatives(r * r, v.detach())
    assert torch.allclose(lp_a, lp.detach(), rtol=1e-12, atol=1e-12)
    assert torch.allclose(d1_a.sum(0), d1, rtol=1e-10, atol=1e-10)
    assert torch.allclose(d2_a.sum(0), d2, rtol=1e-10, atol=1e-10)
