"""Local statistical peers: statsmodels ETS or ARIMA fitted per window and channel.

Each test window's lookback ``x[n, :, c]`` (scaled space, like every other model) gets its
own model, and the model's own predictive distribution is sampled by simulation
(``ETSResults.simulate`` / ``ARIMAResults.simulate`` with ``anchor="end"``): sample paths
carry the fitted error variance and parameter-implied error propagation, so the spread is
the model's own prediction interval, not something we add.

* ``method="ets"`` (default): ``ETSModel(error="add", trend="add", damped_trend=True,
  seasonal="add", seasonal_periods=season)`` — Holt–Winters with a damped trend (Gardner &
  McKenzie 1985; Hyndman et al. 2008, the state-space ETS(A,Ad,A)). Seasonality is used
  only when the lookback holds at least two full seasons (``L ≥ 2·season``), otherwise
  ETS(A,Ad,N). Initial states come from the heuristic decomposition of the first two
  seasons by default (``initialization="heuristic"``); estimating them by maximum
  likelihood (``"estimated"``: 24 more free parameters for hourly data) was ~30x slower
  (median 1.9 s vs 0.03 s per series, loaded 2-core machine) for a similar error.
* ``method="arima"``: ``ARIMA(order=arima_order)`` with a constant (default (2, 0, 1); the
  data are z-scored, so d = 0 with a constant is the natural choice).

When a fit fails, simulates non-finite values or has zero predictive spread (a constant
lookback) the series falls back, in order, to ETS(A,Ad,N), ETS(A,N,N) and finally a
Gaussian random walk with the lookback's first-difference std (floored at ``RW_MIN_STD``);
the number of fallbacks is reported (``n_fallbacks``).

Cost: fitting thousands of windows × channels dominates. Measured on ETTh2 (L = 96, H = 48,
S = 100, 20 evenly spaced test windows × 7 channels, this 2-core machine shared with other
jobs, load average ≈ 12): ETS(A,Ad,A) 0.28 s per series (one series hit a fallback),
ARIMA(2,0,1) 4.8 s per series — so the full 2833-window test set would take ≈ 1.5 h for ETS
and a day for ARIMA on one core; ETS is the default. ``seconds_per_series`` reports the
cost of each call. :func:`select_windows` picks an
evenly spaced subset (``max_windows`` of the benchmark, reported beside the numbers) and
``n_jobs`` fans blocks of windows out to worker processes. Workers are *spawned* (not
forked: forking a process that has initialised torch/OpenMP threads can deadlock), so a
script using ``n_jobs > 1`` needs the usual ``if __name__ == "__main__":`` guard (the
``forecasting`` console script and ``python -m forecasting`` are safe).
"""
from __future__ import annotations

import logging
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
import multiprocessing as mp

import numpy as np

log = logging.getLogger(__name__)


RW_MIN_STD = 0.01
"""Step std floor (scaled units = 1% of the training std) of the random-walk fallback, used when
the lookback is constant: a point mass would make NLL infinite for any later change."""


def select_windows(n_windows: int, max_windows: int | None) -> np.ndarray:
    """Indices of at most ``max_windows`` evenly spaced windows out of ``n_windows`` (all if None).

    The first and last windows are always included, so the subset spans the whole test period.
    """
    if max_windows is None or max_windows >= n_windows:
        return np.arange(n_windows)
    if max_windows < 1:
        raise ValueError("max_windows must be positive")
    return np.unique(np.round(np.linspace(0, n_windows - 1, max_windows)).astype(int))


def _simulate_series(y: np.ndarray, horizon: int, n_samples: int, method: str, season: int | None,
                     arima_order: tuple[int, int, int], rng: np.random.Generator,
                     initialization: str = "heuristic") -> tuple[np.ndarray, int]:
    """``[S, H]`` sample paths for one univariate lookback ``y``, and the fallback depth used."""
    from statsmodels.tsa.arima.model import ARIMA
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    use_season = season is not None and season >= 2 and len(y) >= 2 * season
    init = {"initialization_method": initialization}
    attempts = []
    if method == "arima":
        attempts.append(lambda: ARIMA(y, order=arima_order, trend="c" if arima_order[1] == 0 else "n").fit())
    elif use_season:
        attempts.append(lambda: ETSModel(y, error="add", trend="add", damped_trend=True, seasonal="add",
                                         seasonal_periods=season, **init).fit(disp=False))
    attempts.append(lambda: ETSModel(y, error="add", trend="add", damped_trend=True, **init).fit(disp=False))
    attempts.append(lambda: ETSModel(y, error="add", **init).fit(disp=False))
    for depth, make in enumerate(attempts):
        try:
            with warnings.catch_warnings():  # ConvergenceWarning etc. per fit would flood the log
                warnings.simplefilter("ignore")
                res = make()
                sims = np.asarray(res.simulate(horizon, anchor="end", repetitions=n_samples, rng=rng))
            sims = sims.reshape(horizon, n_samples).T
            # A zero-variance fit (e.g. a constant lookback) is not a usable predictive distribution.
            if np.all(np.isfinite(sims)) and np.std(sims[:, -1]) > 1e-6:
                return sims, depth
        except Exception as exc:  # statsmodels raises many types on degenerate windows
            log.debug("fit %d failed: %s", depth, exc)
    # Last resort: a Gaussian random walk from the last value, step std floored at RW_MIN_STD.
    sd = float(np.std(np.diff(y))) if len(y) > 2 else 0.0
    steps = rng.normal(0.0, max(sd, RW_MIN_STD), size=(n_samples, horizon))
    return y[-1] + np.cumsum(steps, axis=1), len(attempts)


def _block(args: tuple) -> tuple[np.ndarray, int, int]:
    """Worker: samples ``[S, n, H, C]`` for a block of windows; returns (samples, fallbacks, first index)."""
    x, first, horizon, n_samples, method, season, order, seed, initialization = args
    n, _, channels = x.shape
    out = np.empty((n_samples, n, horizon, channels), dtype=np.float32)
    fallbacks = 0
    for i in range(n):
        for c in range(channels):
            rng = np.random.default_rng([seed, first + i, c])
            sims, depth = _simulate_series(x[i, :, c].astype(np.float64), horizon, n_samples, method, season,
                                           order, rng, initialization)
            out[:, i, :, c] = sims
            fallbacks += depth > 0  # attempt 0 is the configured model
    return out, fallbacks, first


@dataclass
class StatisticalPeer:
    """ETS or ARIMA per window and channel, sampled by simulation (module doc).

    Attributes:
        method: ``"ets"`` or ``"arima"``.
        arima_order: ``(p, d, q)`` for ``method="arima"``.
        initialization: ETS initial states, ``"heuristic"`` (classical decomposition of the
            first seasons; ~30x faster) or ``"estimated"`` (by maximum likelihood).
        n_jobs: worker processes for :meth:`predict_samples` (1 = in-process).
        train_seconds, predict_seconds: wall time of the last ``fit`` / ``predict_samples``.
        n_fallbacks: series of the last prediction that needed a simpler model.
        seconds_per_series: ``predict_seconds / (N · C)`` of the last prediction.
    """

    method: str = "ets"
    arima_order: tuple[int, int, int] = (2, 0, 1)
    initialization: str = "heuristic"
    n_jobs: int = 1
    lookback: int = 0
    horizon: int = 0
    season: int | None = None
    seed: int = 0
    train_seconds: float = 0.0
    predict_seconds: float = 0.0
    n_fallbacks: int = 0
    seconds_per_series: float = float("nan")
    info: dict = field(default_factory=dict)

    def fit(self, train_values: np.ndarray, lookback: int, horizon: int, freq: str | None = None,
            season: int | None = None, seed: int = 0) -> "StatisticalPeer":
        """Record the setting. The models are local: each is fitted on its window's lookback at
        prediction time, so nothing is learned from ``train_values`` (accepted for a uniform API)."""
        if self.method not in ("ets", "arima"):
            raise ValueError(f"unknown method {self.method!r}; use 'ets' or 'arima'")
        t0 = time.perf_counter()
        self.lookback, self.horizon, self.season, self.seed = lookback, horizon, season, seed
        self.info = {"method": self.method, "season_used": bool(season and season >= 2 and lookback >= 2 * season),
                     "freq": freq, "fitted_on": "each window's lookback"}
        self.train_seconds = time.perf_counter() - t0
        return self

    def predict_samples(self, x: np.ndarray, n_samples: int = 100) -> np.ndarray:
        """Simulated sample paths ``[S, N, H, C]`` for lookbacks ``x [N, L, C]`` (float32)."""
        if hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 3:
            raise ValueError(f"x must be [N, L, C], got {x.shape}")
        if self.horizon < 1:
            raise RuntimeError("call fit() before predict_samples()")
        t0 = time.perf_counter()
        n = x.shape[0]
        n_blocks = max(1, min(n, self.n_jobs * 4)) if self.n_jobs > 1 else 1
        bounds = np.linspace(0, n, n_blocks + 1).astype(int)
        jobs = [(x[a:b], int(a), self.horizon, n_samples, self.method, self.season, tuple(self.arima_order), self.seed,
                 self.initialization)
                for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
        out = np.empty((n_samples, n, self.horizon, x.shape[2]), dtype=np.float32)
        self.n_fallbacks = 0
        if self.n_jobs > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=self.n_jobs, mp_context=mp.get_context("spawn")) as pool:
                results = list(pool.map(_block, jobs))
        else:
            results = [_block(j) for j in jobs]
        for samples, fallbacks, first in results:
            out[:, first:first + samples.shape[1]] = samples
            self.n_fallbacks += fallbacks
        self.predict_seconds = time.perf_counter() - t0
        self.seconds_per_series = self.predict_seconds / max(1, n * x.shape[2])
        log.info("%s: %d windows x %d channels in %.1fs (%.3fs/series, %d fallbacks)", self.method, n, x.shape[2],
                 self.predict_seconds, self.seconds_per_series, self.n_fallbacks)
        return out
