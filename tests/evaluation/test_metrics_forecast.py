"""Forecast metrics: hand-computed cases and known distributions (forecasting.evaluation.metrics)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scoringrules as sr
from gluonts.ev.stats import quantile_loss as gluonts_quantile_loss
from scipy.stats import norm

from forecasting.evaluation import calibration as cal
from forecasting.evaluation.metrics import (
    crps,
    crps_pointwise,
    evaluate_forecast,
    forecast_metrics,
    mean_wql,
    msis,
    seasonal_error,
)

EXPECTED_KEYS = {
    "mse", "mae", "crps", "mean_wql", "coverage_50", "coverage_80", "coverage_90", "coverage_95",
    "interval_width_50", "interval_width_80", "interval_width_90", "interval_width_95", "msis", "nll", "pit_error",
}


@pytest.fixture(scope="module")
def calibrated():
    """100 draws from the same N(0,1) the targets come from: a perfectly calibrated forecast."""
    rng = np.random.default_rng(1)
    target = rng.normal(size=(200, 24, 3))
    samples = rng.normal(size=(100, 200, 24, 3))
    x = rng.normal(size=(200, 48, 3))
    return samples, target, x


def test_metric_names_follow_evaluation_md(calibrated):
    samples, target, x = calibrated
    m = forecast_metrics(samples, target, x=x, season=24)
    assert EXPECTED_KEYS <= set(m)
    assert all(math.isfinite(m[k]) for k in EXPECTED_KEYS)


def test_coverage_of_a_calibrated_ensemble_is_nominal(calibrated):
    samples, target, _ = calibrated
    m = forecast_metrics(samples, target, with_nll=False)
    for level in (50, 80, 90, 95):
        # 14 400 points: binomial std <= 0.0042; the Weibull quantile rule has no S-bias.
        assert abs(m[f"coverage_{level}"] - level / 100) < 0.015, (level, m[f"coverage_{level}"])
        z = norm.ppf(0.5 + level / 200)
        assert m[f"interval_width_{level}"] == pytest.approx(2 * z, rel=0.06)


def test_mse_uses_mean_and_mae_uses_median():
    target = np.zeros((1, 1))
    samples = np.array([0.0, 0.0, 3.0])[:, None, None]  # mean 1, median 0
    m = forecast_metrics(samples, target, with_nll=False)
    assert m["mse"] == pytest.approx(1.0)
    assert m["mae"] == pytest.approx(0.0)


def test_crps_of_a_point_mass_is_the_absolute_error():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(5, 4, 2))
    point = rng.normal(size=(5, 4, 2))
    mae = np.abs(point - target).mean()
    assert crps(point[None], target) == pytest.approx(mae)  # S = 1
    assert crps(np.repeat(point[None], 50, axis=0), target) == pytest.approx(mae)  # 50 identical samples


def test_crps_is_the_fair_estimator():
    rng = np.random.default_rng(2)
    samples, target = rng.normal(size=(30, 6, 5)), rng.normal(size=(6, 5))
    fair = sr.crps_ensemble(target, np.moveaxis(samples, 0, -1), estimator="fair", backend="numpy")
    np.testing.assert_allclose(crps_pointwise(samples, target), fair, rtol=1e-10, atol=1e-12)
    energy = sr.crps_ensemble(target, np.moveaxis(samples, 0, -1), estimator="nrg", backend="numpy")
    assert not np.allclose(crps_pointwise(samples, target), energy)  # the estimator choice is visible


def test_crps_matches_closed_form_gaussian():
    rng = np.random.default_rng(3)
    mu, sigma = 0.5, 2.0
    target = rng.normal(size=4000) * 1.5
    samples = mu + sigma * rng.normal(size=(200, 4000))
    z = (target - mu) / sigma
    exact = sigma * (z * (2 * norm.cdf(z) - 1) + 2 * norm.pdf(z) - 1 / np.sqrt(np.pi))
    pointwise = crps_pointwise(samples, target)
    se = pointwise.std() / np.sqrt(len(target))  # fair estimator is unbiased: only MC error remains
    assert abs(pointwise.mean() - exact.mean()) < 4 * se + 1e-3


def test_mean_wql_hand_computed_point_forecast():
    # Point forecast: every quantile equals the point; mean over symmetric q of 2q or 2(1-q) is 1,
    # so mean_wql = sum|e| / sum|y| = (1 + 0) / (1 + 2).
    target = np.array([[1.0, 2.0]])
    point = np.array([[2.0, 2.0]])
    assert mean_wql(point[None], target) == pytest.approx(1 / 3)


def test_mean_wql_matches_gluonts_quantile_loss():
    rng = np.random.default_rng(4)
    samples, target = rng.normal(1.0, 1.0, size=(64, 10, 12)), rng.normal(1.0, 1.0, size=(10, 12))
    srt = np.sort(np.moveaxis(samples, 0, -1), axis=-1)
    levels = np.round(np.arange(0.1, 1.0, 0.1), 2)
    losses = []
    for q in levels:
        pred = cal.quantiles_from_sorted(srt, [q])[0]
        losses.append(gluonts_quantile_loss({str(q): pred, "label": target}, q).sum() / np.abs(target).sum())
    assert mean_wql(samples, target) == pytest.approx(np.mean(losses), rel=1e-10)


def test_msis_tiny_case():
    # S = 39 samples 1..39: the Weibull 2.5% / 97.5% quantiles sit at positions 0.025*40 = 1 and
    # 0.975*40 = 39, i.e. exactly 1 and 39. Lookback [0, 1, 0, 1] with season 1 -> scale 1.
    samples = np.arange(1.0, 40.0)[:, None, None]
    x = np.array([[0.0, 1.0, 0.0, 1.0]])
    assert seasonal_error(x, 1)[0] == pytest.approx(1.0)
    # y = 45 above the interval: width 38 + (2/0.05) * (45 - 39) = 278.
    assert msis(samples, np.array([[45.0]]), x, season=1) == pytest.approx(278.0)
    # y inside: just the width.
    assert msis(samples, np.array([[20.0]]), x, season=1) == pytest.approx(38.0)
    # season >= L falls back to 1 (gluonts); season 2 uses |x_t - x_{t-2}| = 0 -> window skipped.
    assert seasonal_error(x, 7)[0] == pytest.approx(1.0)
    m = forecast_metrics(samples, np.array([[20.0]]), x=x, season=2, with_nll=False)
    assert math.isnan(m["msis"]) and m["msis_skipped"] == 1


def test_msis_needs_lookback(calibrated):
    samples, target, _ = calibrated
    assert math.isnan(forecast_metrics(samples[:, :5], target[:5], with_nll=False)["msis"])


def test_pit_calibrated_is_uniform_overconfident_is_not(calibrated):
    samples, target, _ = calibrated
    good = forecast_metrics(samples, target, with_nll=False)["pit_error"]
    narrow = forecast_metrics(0.3 * samples, target, with_nll=False)["pit_error"]
    biased = forecast_metrics(samples + 3.0, target, with_nll=False)["pit_error"]
    assert good < 0.01
    assert narrow > 0.1
    assert biased > 0.3


def test_pit_error_reference_values():
    assert cal.pit_error(np.linspace(0, 1, 100001)) < 1e-3
    assert cal.pit_error(np.r_[np.zeros(500), np.ones(500)]) == pytest.approx(0.25, abs=2e-3)
    assert cal.pit_error(np.zeros(1000)) == pytest.approx(0.5, abs=2e-3)


def test_pit_ties_are_randomised():
    target = np.zeros(20000)
    samples = np.zeros((10, 20000))  # point mass exactly at the target
    pit = cal.pit_values(samples, target)
    assert 0.4 < pit.mean() < 0.6 and pit.std() > 0.25  # spread over [0,1], not piled at one rank


def test_reliability_table_is_nominal_for_calibrated(calibrated):
    samples, target, _ = calibrated
    ev = evaluate_forecast(samples, target, with_nll=False)
    nominal, observed = np.array(ev.reliability["nominal"]), np.array(ev.reliability["observed"])
    assert len(nominal) == 19
    assert np.max(np.abs(observed - nominal)) < 0.02
    edges, density = ev.pit_histogram(20)
    assert len(edges) == 21 and density.mean() == pytest.approx(1.0)


def test_nll_gaussian_mixture_is_exact():
    rng = np.random.default_rng(5)
    mu, sd, y = rng.normal(size=7), rng.uniform(0.5, 2, size=7), rng.normal(size=7)
    got = cal.nll_gaussian_mixture(mu[None], sd[None], y)
    np.testing.assert_allclose(got, -norm.logpdf(y, mu, sd), rtol=1e-12)
    # two equal-weight components
    mix = cal.nll_gaussian_mixture(np.stack([mu, mu + 1]), np.stack([sd, sd]), y)
    ref = -np.log(0.5 * norm.pdf(y, mu, sd) + 0.5 * norm.pdf(y, mu + 1, sd))
    np.testing.assert_allclose(mix, ref, rtol=1e-12)
    m = forecast_metrics(mu[None, :, None], y[:, None], gaussian=(mu[None, :, None], sd[None, :, None]))
    assert m["nll"] == pytest.approx(np.mean(-norm.logpdf(y, mu, sd)))


def test_nll_kde_close_to_true_density(calibrated):
    samples, target, _ = calibrated
    got = forecast_metrics(samples, target)["nll"]
    true = np.mean(-norm.logpdf(target))
    assert abs(got - true) < 0.06  # Silverman KDE of 100 draws: small smoothing bias
    assert np.mean(cal.nll_kde(samples[:, :20], target[:20])) == pytest.approx(
        forecast_metrics(samples[:, :20], target[:20])["nll"])
    worse = forecast_metrics(0.3 * samples, target)["nll"]
    assert worse > got + 0.5


def test_chunking_does_not_change_results(calibrated):
    samples, target, x = calibrated
    big = forecast_metrics(samples, target, x=x, season=24)
    small = forecast_metrics(samples, target, x=x, season=24, chunk_elements=5000)
    for key in EXPECTED_KEYS:
        assert small[key] == pytest.approx(big[key], rel=1e-9, abs=1e-12), key


def test_any_trailing_shape_and_torch_input():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    samples, target = rng.normal(size=(20, 8, 5)), rng.normal(size=(8, 5))
    a = forecast_metrics(samples, target, with_nll=False)
    b = forecast_metrics(torch.tensor(samples), torch.tensor(target), with_nll=False)
    assert a["crps"] == pytest.approx(b["crps"])


def test_bad_input_raises():
    with pytest.raises(ValueError, match="samples must be"):
        forecast_metrics(np.zeros((5, 3, 2)), np.zeros((3, 3)))
    bad = np.zeros((5, 3, 2))
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        forecast_metrics(bad, np.zeros((3, 2)))
    with pytest.raises(ValueError, match="target contains NaN"):
        forecast_metrics(np.zeros((5, 3, 2)), np.full((3, 2), np.nan))


def test_msis_broadcasts_for_univariate_windows():
    # target [N, H] with lookback [N, L]: one scale per window
    samples = np.arange(1.0, 40.0)[:, None, None] * np.ones((1, 2, 3))
    target = np.full((2, 3), 20.0)
    x = np.array([[0.0, 1.0, 0.0, 1.0], [0.0, 2.0, 0.0, 2.0]])  # scales 1 and 2
    assert msis(samples, target, x, season=1) == pytest.approx((38.0 + 19.0) / 2)
