"""Forecast and calibration reports: forecast CSV, fan charts, reliability diagram, PIT histogram, Markdown.

Used by ``forecasting demo`` (and usable on any fitted forecaster). Every file is written
atomically (temporary file + rename), so an interrupted report never leaves a truncated PNG or
table. What each piece shows:

* ``forecast.csv`` — the next ``H`` steps after the end of the series: ``item_id``, ``channel``,
  ``timestamp``, ``mean``, ``median``, ``q0.05`` … ``q0.95`` (the same layout as ``forecasting predict``).
* ``fan_chart.png`` — recent history, the median forecast and 50/80/95% central intervals.
* ``fan_chart_test.png`` — the same for the last held-out test window, with what actually happened.
* ``reliability.png`` — observed vs nominal coverage of central intervals on the test windows
  (on the diagonal = calibrated; below = intervals too narrow).
* ``pit_histogram.png`` — PIT of the observations under the predictive (flat = calibrated,
  U = overconfident, hump = underconfident).
* ``calibration.md`` — the coverage table (nominal, observed, mean width), the metrics, and the
  figures, for a person to read.
"""
from __future__ import annotations

from forecasting.core.atomic import atomic_write_text

import logging
from pathlib import Path
import os
from typing import Any, Sequence

import numpy as np

log = logging.getLogger(__name__)

FAN_QUANTILES = (0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)
COVERAGE_LEVELS = (50, 80, 90, 95)


def future_forecast(fc: Any, frame: Any, n_samples: int, seed: int):
    """Predictive samples ``[S, 1, H, C]`` for the ``H`` steps after the end of ``frame`` and their timestamps."""
    from forecasting.forecaster.backtest import align

    pred = fc.predict(align(fc, frame), n_samples=n_samples, seed=seed)
    return pred


def write_forecast_csv(path: Path, fc: Any, pred: Any, item_id: str) -> Path:
    """The future forecast as a long CSV (same columns as ``forecasting predict``)."""
    from forecasting.forecaster.batch.predict import forecast_frame, summarise

    idx = pred.timestamps(0)
    times = idx.values[None] if idx is not None else np.full((1, pred.horizon), np.datetime64("NaT"), "datetime64[ns]")
    mean, qs = summarise(pred.samples, pred.quantile_levels)
    df = forecast_frame([item_id], None, mean, qs, fc.columns, fc.freq, pred.quantile_levels, times=times)
    return atomic_write_text(path, df.write_csv(datetime_format="%Y-%m-%d %H:%M:%S"))




def fan_chart_png(path: Path, history_t: np.ndarray, history_y: np.ndarray, future_t: np.ndarray, samples: np.ndarray,
                  target: np.ndarray | None, title: str, ylabel: str) -> Path:
    """Fan chart of one channel: ``samples [S, H]``."""
    from forecasting.evaluation.plots import fan_chart

    qs = np.quantile(samples, FAN_QUANTILES, axis=0, method="weibull")
    fan_chart(history_t, history_y, future_t, dict(zip(FAN_QUANTILES, qs)), target=target, title=title,
              ylabel=ylabel, path=path)  # written atomically, with the usual permissions
    return path


def calibration_markdown(title: str, scores: Any, meta: dict[str, Any], figures: Sequence[str]) -> str:
    """The calibration report as Markdown: setting, coverage table, metrics, figures."""
    m = scores.metrics
    lines = [f"# {title}", ""]
    for key, value in meta.items():
        lines.append(f"- **{key}**: {value}")
    lines += ["", "## Coverage of central prediction intervals (test windows)", "",
              "| nominal | observed | mean width |", "|---|---|---|"]
    for lv in COVERAGE_LEVELS:
        obs, width = m.get(f"coverage_{lv}"), m.get(f"interval_width_{lv}")
        lines.append(f"| {lv}% | {_pct(obs)} | {_num(width)} |")
    lines += ["", "Observed close to nominal = calibrated; below = intervals too narrow (overconfident), "
              "above = too wide. Widths are in the data's units.", "",
              "## Reliability table", "", "| nominal | observed |", "|---|---|"]
    for nom, obs in zip(scores.reliability["nominal"], scores.reliability["observed"]):
        lines.append(f"| {nom:.2f} | {obs:.3f} |")
    lines += ["", "## Metrics (original scale; mse/mae/crps also on the standard-scaled data)", "",
              "| metric | original | scaled |", "|---|---|---|"]
    for key in ("crps", "mean_wql", "mae", "mse", "msis", "nll", "pit_error"):
        if key in m:
            lines.append(f"| {key} | {_num(m[key])} | {_num(scores.metrics_scaled.get(key))} |")
    lines += ["", "crps: fair ensemble estimator; mae: of the median; mse: of the mean; nll: Gaussian-KDE "
              "predictive density; pit_error: Wasserstein-1 distance of the PIT to uniform (0 = calibrated).", "",
              "## Figures", ""]
    for fig in figures:
        lines.append(f"![{Path(fig).stem}]({Path(fig).name})")
        lines.append("")
    return "\n".join(lines)


def write_calibration_report(out: Path, scores: Any, title: str, meta: dict[str, Any], label: str) -> list[Path]:
    """``reliability.png``, ``pit_histogram.png`` and ``calibration.md`` in ``out``."""
    from forecasting.evaluation.plots import pit_histogram, reliability_diagram

    rel = out / "reliability.png"
    reliability_diagram(scores.reliability["nominal"], scores.reliability["observed"], labels=label,
                        title="Reliability of central intervals (test windows)", path=rel)
    pit = out / "pit_histogram.png"
    edges, density = scores.pit_histogram(20)
    pit_histogram(edges=edges, density=density, title=f"PIT histogram (test windows), error {scores.metrics['pit_error']:.3f}",
                  path=pit)
    md = out / "calibration.md"
    figures = ["fan_chart.png", "fan_chart_test.png", rel.name, pit.name]
    atomic_write_text(md, calibration_markdown(title, scores, meta, [f for f in figures if (out / f).exists()]))
    return [rel, pit, md]


def _pct(v: float | None) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{100 * v:.1f}%"


def _num(v: float | None) -> str:
    if v is None:
        return "–"
    v = float(v)
    if not np.isfinite(v):
        return "nan"
    return f"{v:.4g}"


