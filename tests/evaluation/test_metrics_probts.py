"""ProbTS protocol metrics (forecasting.evaluation.probts): hand-computed toy case, point forecasts."""
from __future__ import annotations

import numpy as np
import pytest

from forecasting.data.scaling import StandardScaler
from forecasting.evaluation.probts import PROBTS_QUANTILES, probts_metrics, probts_window_scores


def toy():
    """Two windows, H = 2, C = 1.

    Window 1: y = [1, 3], samples {0, 2} at both steps. Linear sample quantiles: ŷ_q = 2q,
    median 1. Pinball at y=1: (1-2q)q for q<0.5, (2q-1)(1-q) for q>=0.5; at y=3 (always above):
    q(3-2q). CRPS_1 = mean_q 2(a_q + b_q)/4 = 0.468421052631579 (19 levels); NMAE_1 = (0+2)/4 = 0.5.
    Window 2: y = [2, 6], both samples 4 (a point forecast): NMAE_2 = (2+2)/8 = 0.5 = CRPS_2.
    """
    target = np.array([[[1.0], [3.0]], [[2.0], [6.0]]])
    samples = np.empty((2, 2, 2, 1))
    samples[:, 0, :, 0] = [[0.0, 0.0], [2.0, 2.0]]
    samples[:, 1, :, 0] = 4.0
    return samples, target


def test_levels_are_the_19_of_the_protocol():
    assert len(PROBTS_QUANTILES) == 19
    assert PROBTS_QUANTILES[0] == pytest.approx(0.05) and PROBTS_QUANTILES[-1] == pytest.approx(0.95)


def test_two_window_toy_case_by_hand():
    samples, target = toy()
    crps, nmae = probts_window_scores(samples, target)
    np.testing.assert_allclose(crps, [0.468421052631579, 0.5], rtol=1e-12)
    np.testing.assert_allclose(nmae, [0.5, 0.5], rtol=1e-12)
    m = probts_metrics(samples, target)
    assert m["crps"] == pytest.approx((0.468421052631579 + 0.5) / 2)
    assert m["nmae"] == pytest.approx(0.5)
    assert m["n_windows"] == 2


def test_point_forecast_crps_equals_nmae():
    rng = np.random.default_rng(0)
    target = rng.normal(5.0, 2.0, size=(6, 24, 3))
    point = target + rng.normal(size=target.shape)
    m = probts_metrics(point, target)
    assert m["crps"] == pytest.approx(m["nmae"], rel=1e-10)
    m1 = probts_metrics(point[None], target)  # same thing given as one sample
    assert m1["crps"] == pytest.approx(m["crps"])


def test_original_scale_via_scaler():
    rng = np.random.default_rng(1)
    scaler = StandardScaler(mean=np.array([10.0, -3.0]), std=np.array([2.0, 0.5]))
    target_s = rng.normal(size=(4, 8, 2))
    samples_s = rng.normal(size=(50, 4, 8, 2))
    got = probts_metrics(samples_s, target_s, scaler=scaler)
    ref = probts_metrics(scaler.inverse(samples_s), scaler.inverse(target_s))
    assert got["crps"] == pytest.approx(ref["crps"]) and got["nmae"] == pytest.approx(ref["nmae"])
    # scale matters: the normalised scores differ on the scaled axis
    assert probts_metrics(samples_s, target_s)["crps"] != pytest.approx(got["crps"])


def test_per_window_average_not_pooled():
    # Pooling sums over windows would weight the large window more; the protocol averages ratios.
    target = np.array([[[1.0]], [[100.0]]])
    point = np.array([[[2.0]], [[100.0]]])
    assert probts_metrics(point, target)["nmae"] == pytest.approx(0.5)  # (1/1 + 0/100) / 2


def test_zero_window_is_skipped():
    target = np.array([[[0.0]], [[2.0]]])
    point = np.array([[[1.0]], [[1.0]]])
    m = probts_metrics(point, target)
    assert m["n_skipped"] == 1 and m["nmae"] == pytest.approx(0.5)
