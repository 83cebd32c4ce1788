"""The calibration view's numbers: a rolling-origin backtest on the last part of the series (no Streamlit).

Origins are every ``H`` rows of the forecaster's own **test** split (the last part of the data,
never used for training or early stopping), at most ``max_windows`` of them, evenly spaced. The
ScoreVI-Koopa model and the deterministic Koopa peer are scored with
:func:`forecasting.forecaster.backtest.score` (the scoring behind ``forecasting backtest``); the seasonal-naive
peer (:mod:`forecasting.baselines.naive`, empirical multi-step residual intervals from the
training rows) is scored on the same origins with
:func:`forecasting.evaluation.metrics.evaluate_forecast`.

CRPS is compared on the standard-scaled data (every channel weighs the same; the paper's
scale) and in original units.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from forecasting.data.series import SeriesFrame

COVERAGE_LEVELS = (50, 80, 95)
# Below this many forecast origins, observed coverage moves by several points per origin and a
# 20-bin PIT histogram is mostly noise, so the view says it cannot be judged.
MIN_RELIABLE_ORIGINS = 30
SCOREVI = "ScoreVI-Koopa"
DETERMINISTIC = "deterministic Koopa"
NAIVE = "seasonal naive"
METHOD_LABELS = {"scorevi": SCOREVI, "advi": "ADVI-Koopa", "mc_dropout": "MC-dropout Koopa",
                 "conformal": "conformal Koopa", "deterministic": DETERMINISTIC}


def method_label(method: str) -> str:
    """Display name of a forecaster's inference method."""
    return METHOD_LABELS.get(method, method)


@dataclass
class MethodScores:
    """One method's backtest: scalar metrics (original units and scaled), reliability table, PIT counts."""

    name: str
    metrics: dict[str, float]
    metrics_scaled: dict[str, float]
    reliability: dict[str, list[float]]
    pit_counts: np.ndarray = field(repr=False)

    def pit_density(self, bins: int = 20) -> tuple[np.ndarray, np.ndarray]:
        fine = len(self.pit_counts)
        counts = self.pit_counts.reshape(bins, fine // bins).sum(axis=1)
        return np.linspace(0.0, 1.0, bins + 1), counts / max(counts.sum(), 1) * bins


@dataclass
class CalibrationResult:
    """Everything the calibration view draws."""

    methods: list[MethodScores]
    n_windows: int
    n_samples: int
    first_origin: str
    last_origin: str
    season: int
    notes: list[str] = field(default_factory=list)

    def too_few_origins(self) -> str | None:
        """A warning when the backtest is too small to judge calibration, else ``None``."""
        if self.n_windows >= MIN_RELIABLE_ORIGINS:
            return None
        return (f"This backtest has only {self.n_windows} forecast origin{'s' if self.n_windows != 1 else ''}; "
                f"coverage and the PIT histogram are not reliable below ~{MIN_RELIABLE_ORIGINS} — use a longer "
                "series, a shorter horizon (origins are H rows apart), or a training budget with more backtest "
                "origins.")

    def by_name(self, name: str) -> MethodScores | None:
        return next((m for m in self.methods if m.name == name), None)

    @property
    def main(self) -> MethodScores:
        """The scores of the forecaster under test (the first method)."""
        return self.methods[0]

    def coverage_rows(self, name: str | None = None) -> list[dict[str, Any]]:
        """Nominal vs observed coverage and mean width of the central intervals of ``name`` (default: the main model)."""
        m = self.main if name is None else self.by_name(name)
        if m is None:
            return []
        return [{"interval": f"{lv}%", "nominal": lv / 100.0, "observed": m.metrics.get(f"coverage_{lv}", float("nan")),
                 "mean width": m.metrics.get(f"interval_width_{lv}", float("nan"))} for lv in COVERAGE_LEVELS]

    def comparison_rows(self) -> list[dict[str, Any]]:
        """One row per method: CRPS (scaled and original units), MAE, 80/95% coverage, PIT error."""
        rows = []
        for m in self.methods:
            rows.append({"method": m.name, "CRPS (scaled)": m.metrics_scaled.get("crps", float("nan")),
                         "CRPS": m.metrics.get("crps", float("nan")), "MAE (scaled)": m.metrics_scaled.get("mae", float("nan")),
                         "coverage 80%": m.metrics.get("coverage_80", float("nan")),
                         "coverage 95%": m.metrics.get("coverage_95", float("nan")),
                         "PIT error": m.metrics.get("pit_error", float("nan"))})
        return rows


def season_for(freq: str | None, lookback: int) -> int:
    """Seasonal period of the naive peer: the daily/weekly/yearly cycle of ``freq``, 1 when unknown or > lookback."""
    from forecasting.data.seasonality import season_length

    m = season_length(freq) or 1
    return m if 1 <= m <= lookback else 1


def run_calibration(forecaster: Any, frame: SeriesFrame, *, deterministic: Any = None, max_windows: int = 48,
                    n_samples: int = 100, seed: int = 0) -> CalibrationResult:
    """Backtest ``forecaster`` (and its peers) on the last part of ``frame``.

    Args:
        forecaster: the fitted ScoreVI-Koopa :class:`~forecasting.forecaster.api.Forecaster`.
        frame: the series it was trained on (its test split is scored).
        deterministic: the fitted deterministic Koopa peer, or ``None`` to leave it out.
        max_windows: forecast origins (every ``H`` rows, evenly thinned to this many).
        n_samples: predictive samples per origin.

    Raises:
        ForecastingError: the test split cannot hold a window, or the frame lacks the model's channels.
    """
    from forecasting.forecaster.backtest import align, origins, score
    from forecasting.data.splits import split_borders

    frame = align(forecaster, frame)
    org = origins(forecaster, frame, "test", step=forecaster.horizon, max_windows=max_windows)
    season = season_for(forecaster.freq or frame.freq, forecaster.lookback)
    methods = [_from_scores(method_label(forecaster.method), score(forecaster, org, n_samples, seed, season=season))]
    notes = []
    if deterministic is not None:
        try:
            methods.append(_from_scores(f"{DETERMINISTIC} (peer)" if forecaster.method == "deterministic" else DETERMINISTIC, score(deterministic, org, n_samples, seed, season=season)))
        except Exception as exc:  # noqa: BLE001 - a broken peer must not hide the main result
            notes.append(f"deterministic Koopa could not be scored: {exc}")
    else:
        notes.append("deterministic Koopa: not trained for this run (tick 'compare with deterministic Koopa' and train)")
    borders = split_borders(frame.length, forecaster.config.data.split, frame.freq)
    methods.append(_naive(forecaster, frame.values[: borders.train_end], org, season, n_samples, seed))
    return CalibrationResult(methods, len(org.x), n_samples, str(org.starts[0]), str(org.starts[-1]), season, notes)


def _from_scores(name: str, s: Any) -> MethodScores:
    return MethodScores(name, dict(s.metrics), dict(s.metrics_scaled), s.reliability, np.asarray(s.pit_counts))


def _naive(forecaster: Any, train_values: np.ndarray, org: Any, season: int, n_samples: int, seed: int) -> MethodScores:
    from forecasting.baselines.naive import SeasonalNaive
    from forecasting.evaluation.metrics import evaluate_forecast

    peer = SeasonalNaive(season, horizon=org.y.shape[1]).fit(train_values)
    samples = peer.predict_samples(org.x, n_samples, seed=seed).astype(np.float64)  # [S, N, H, C]
    ev = evaluate_forecast(samples, org.y, x=org.x, season=season, with_nll=False, seed=seed)
    mean, std = np.asarray(forecaster.scaler.mean), np.asarray(forecaster.scaler.std)
    ev_s = evaluate_forecast((samples - mean) / std, (org.y - mean) / std, with_nll=False, seed=seed)
    return MethodScores(NAIVE, ev.metrics, ev_s.metrics, ev.reliability, ev.pit_counts)
