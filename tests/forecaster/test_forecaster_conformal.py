"""Split-conformal calibration: finite-sample quantile, coverage, samples that reproduce the intervals."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from forecasting.forecaster.methods.conformal import ConformalCalibration
from forecasting.core.errors import ForecastingError


def test_quantile_is_the_finite_sample_order_statistic():
    res = torch.arange(1, 20, dtype=torch.float64).reshape(19, 1, 1)  # n = 19 residuals 1..19
    cal = ConformalCalibration.fit(res)
    # ceil((n+1) * 0.9) = 18 -> the 18th smallest residual
    assert float(cal.quantile(0.9)) == 18.0
    assert float(cal.quantile(0.5)) == 10.0
    assert float(cal.quantile(0.0)) == 0.0


def test_coverage_on_exchangeable_residuals():
    gen = torch.Generator().manual_seed(0)
    cal = ConformalCalibration.fit(torch.randn(500, 4, 2, generator=gen).abs())
    test = torch.randn(20000, 4, 2, generator=gen).abs()
    for level in (0.5, 0.8, 0.9, 0.95):
        cover = float((test <= cal.quantile(level)).double().mean())
        assert abs(cover - level) < 0.03, (level, cover)


def test_samples_reproduce_conformal_intervals_and_are_nested():
    gen = torch.Generator().manual_seed(1)
    cal = ConformalCalibration.fit(torch.rand(200, 3, 1, generator=gen) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1))
    point = torch.zeros(5, 3, 1)
    samples = cal.sample(point, 400, torch.Generator().manual_seed(2)).numpy()
    assert samples.shape == (400, 5, 3, 1)
    widths = []
    for level in (0.5, 0.8, 0.95):
        lo, hi = np.quantile(samples, [(1 - level) / 2, (1 + level) / 2], axis=0, method="weibull")
        half = cal.quantile(level).numpy()
        np.testing.assert_allclose(hi, np.broadcast_to(half, hi.shape), rtol=0.03, atol=0.02)
        np.testing.assert_allclose(lo, -np.broadcast_to(half, lo.shape), rtol=0.03, atol=0.02)
        widths.append(hi - lo)
    assert (widths[0] <= widths[1]).all() and (widths[1] <= widths[2]).all()


def test_bad_residuals():
    with pytest.raises(ForecastingError):
        ConformalCalibration.fit(torch.zeros(0, 2, 1))
    with pytest.raises(ForecastingError, match="diverged"):
        ConformalCalibration.fit(torch.tensor([[[float("nan")]]]))
