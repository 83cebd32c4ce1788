"""Non-negative forecasts: the log1p target transform, clipping to the support, the head recommendation."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from forecasting.core.errors import ForecastingError
from forecasting.data.scaling import StandardScaler
from forecasting.evaluation.metrics import crps_pointwise
from forecasting.models.heads import GaussianLikelihood, NegativeBinomialLikelihood
from forecasting.models.support import (Log1pTransform, TargetTransform, build_transform, clip_to_support,
                                        recommend_likelihood)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_log1p_round_trip_and_never_negative(as_tensor):
    y = np.array([0.0, 0.5, 3.0, 1e4, np.nan])
    t = Log1pTransform(unit=2.0)
    y_in = torch.as_tensor(y) if as_tensor else y
    u = t.forward(y_in)
    back = t.inverse(u)
    np.testing.assert_allclose(np.asarray(back), y, rtol=1e-12)  # NaN (a gap) stays NaN
    below = t.inverse(torch.tensor([-3.0, -0.1]) if as_tensor else np.array([-3.0, -0.1]))
    assert (np.asarray(below) == 0).all()  # mass below log1p(0) is the probability of zero


def test_log1p_refuses_negative_values():
    with pytest.raises(ForecastingError, match="smallest is -1"):
        Log1pTransform().forward(np.array([2.0, -1.0]))
    with pytest.raises(ForecastingError, match="unit"):
        Log1pTransform(unit=0.0)


def test_log1p_jacobian_gives_the_original_scale_density():
    # u = log1p(y) ~ N(m, s)  <=>  1 + y ~ LogNormal(m, s)
    m, s, y = 1.2, 0.4, np.array([0.1, 1.0, 4.0, 20.0])
    t = Log1pTransform()
    got = stats.norm.logpdf(t.forward(y), m, s) + t.log_abs_det_jacobian(y)
    np.testing.assert_allclose(got, stats.lognorm.logpdf(1 + y, s, scale=np.exp(m)), rtol=1e-10)
    np.testing.assert_array_equal(TargetTransform().log_abs_det_jacobian(y), np.zeros(4))


def test_log1p_pipeline_gives_non_negative_samples_and_quantiles():
    """What the forecaster will do: transform, scale, head on the scaled log1p data, inverse both, clip."""
    rng = np.random.default_rng(0)
    train = rng.poisson(3.0, size=(500, 2)).astype(float)  # many zeros and small values
    t = Log1pTransform()
    scaler = StandardScaler.fit(t.forward(train))
    head = GaussianLikelihood(2, init_scale=1.0)
    loc = torch.full((20000, 1, 2), -1.5)  # a low forecast: much of the Gaussian lies below log1p(0)
    scaled = head.sample(loc, torch.Generator().manual_seed(0)).detach()
    y = clip_to_support(t.inverse(scaler.inverse(scaled.double().numpy())), "nonnegative")
    assert (y >= 0).all() and (y == 0).mean() > 0.1
    q = np.quantile(y, [0.05, 0.5, 0.95], axis=0)
    assert (q >= 0).all()
    # a monotone map: the median of y is the map of the head's median (loc)
    expected = np.maximum(np.expm1(scaler.inverse(np.array([-1.5, -1.5]))), 0)
    np.testing.assert_allclose(q[1, 0], expected, atol=0.1)


def test_negative_binomial_pipeline_gives_non_negative_integer_quantiles():
    rng = np.random.default_rng(1)
    train = rng.poisson(2.0, size=(400, 1)).astype(float)
    scaler = StandardScaler.fit(train)
    head = NegativeBinomialLikelihood(1, init_scale=1.0, offset=scaler.mean, unit=scaler.std)
    loc = torch.full((5000, 4, 1), -1.0)
    samples = head.sample(loc, torch.Generator().manual_seed(0)).detach()
    y = clip_to_support(scaler.inverse(samples.double().numpy()).astype(np.float32), "count")
    assert (y >= 0).all() and np.array_equal(y, np.round(y))
    assert (np.quantile(y, [0.01, 0.05, 0.5], axis=0) >= 0).all()


def test_clip_to_support():
    x = np.array([-2.4, -0.2, 0.49, 1.51])
    np.testing.assert_array_equal(clip_to_support(x, "real"), x)
    np.testing.assert_array_equal(clip_to_support(x, "nonnegative"), [0, 0, 0.49, 1.51])
    np.testing.assert_array_equal(clip_to_support(x, "count"), [0, 0, 0, 2])
    torch.testing.assert_close(clip_to_support(torch.tensor(x), "count"), torch.tensor([0.0, 0.0, 0.0, 2.0], dtype=torch.float64))
    with pytest.raises(ForecastingError, match="unknown support"):
        clip_to_support(x, "positive")


def test_clipping_never_raises_crps_on_non_negative_targets():
    rng = np.random.default_rng(2)
    samples = rng.normal(0.5, 1.0, size=(64, 200))
    target = rng.exponential(1.0, size=200)
    before = crps_pointwise(samples, target)
    after = crps_pointwise(clip_to_support(samples, "nonnegative"), target)
    assert (after <= before + 1e-12).all() and after.mean() < before.mean()


def test_build_transform_and_round_trip():
    assert build_transform(None).kind == "none" and build_transform("none").kind == "none"
    t = build_transform({"kind": "log1p", "unit": 5.0})
    assert isinstance(t, Log1pTransform) and t.unit == 5.0
    assert build_transform(t.to_dict()).to_dict() == {"kind": "log1p", "unit": 5.0}
    with pytest.raises(ForecastingError, match="unknown target transform"):
        build_transform("sqrt")


@pytest.mark.parametrize(("kind", "head", "transform", "support"), [
    ({"nonnegative": True, "integer": True, "near_zero": True, "heavy_tailed": True}, "negative_binomial", "none", "count"),
    ({"nonnegative": True, "integer": False, "near_zero": True, "heavy_tailed": True, "heavy_tailed_log1p": False},
     "gaussian", "log1p", "nonnegative"),
    ({"nonnegative": True, "integer": False, "near_zero": True, "heavy_tailed_log1p": True}, "student_t", "log1p", "nonnegative"),
    ({"nonnegative": True, "integer": True, "near_zero": False, "heavy_tailed": False}, "gaussian", "none", "nonnegative"),
    ({"nonnegative": True, "integer": False, "near_zero": False, "heavy_tailed": True}, "student_t", "none", "nonnegative"),
    ({"nonnegative": False, "integer": False, "near_zero": False, "heavy_tailed": False}, "gaussian", "none", "real"),
])
def test_recommend_likelihood(kind, head, transform, support):
    rec = recommend_likelihood(kind)
    assert (rec["kind"], rec["transform"], rec["support"]) == (head, transform, support) and rec["reason"]
