"""Figures for forecasts and calibration: fan chart, reliability diagram, PIT histogram, curves.

Every function builds a ``matplotlib.figure.Figure`` directly (no pyplot global state, so it
is safe in threads and in the Streamlit app, and needs no display: PNGs render with Agg),
returns it, and — when ``path`` is given — also writes a PNG atomically (temporary file in
the same folder, then ``os.replace``), so an interrupted run never leaves a half-written image.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from forecasting.core.atomic import atomic_write_with

BANDS = ((0.95, "95%", 0.18), (0.80, "80%", 0.30), (0.50, "50%", 0.45))
"""Central bands of the fan chart: (level, label, alpha), widest drawn first."""


def save_png(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` as PNG atomically (with the usual file permissions); returns the path."""
    return atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight"))


def _finish(fig: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        save_png(fig, path)
    return fig


def fan_chart(history_t: Sequence, history_y: np.ndarray, future_t: Sequence,
              quantiles: Mapping[float, np.ndarray], target: np.ndarray | None = None,
              title: str = "Forecast", ylabel: str = "value", xlabel: str = "time",
              path: str | os.PathLike | None = None) -> Figure:
    """History, median forecast and 50/80/95% central bands (and the realised target).

    Args:
        history_t: time stamps (or indices) of the history, ``[T]``.
        history_y: history values ``[T]``.
        future_t: time stamps of the forecast, ``[H]``.
        quantiles: ``{q: values [H]}``; needs 0.5 and, for each band drawn, its two ends
            (0.025/0.975, 0.1/0.9, 0.25/0.75). Bands whose ends are missing are skipped.
        target: realised values ``[H]`` (optional).
        title, ylabel, xlabel: labels.
        path: write a PNG here too.
    """
    qs = {round(float(k), 4): np.asarray(v) for k, v in quantiles.items()}
    if 0.5 not in qs:
        raise ValueError("fan_chart needs the 0.5 quantile (median)")
    fig = Figure(figsize=(9, 4))
    ax = fig.add_subplot()
    ax.plot(history_t, np.asarray(history_y), color="0.25", lw=1.2, label="history")
    for level, label, alpha in BANDS:
        lo, hi = round((1 - level) / 2, 4), round((1 + level) / 2, 4)
        if lo in qs and hi in qs:
            ax.fill_between(future_t, qs[lo], qs[hi], color="tab:blue", alpha=alpha, lw=0,
                            label=f"{label} interval")
    ax.plot(future_t, qs[0.5], color="tab:blue", lw=1.5, label="median forecast")
    if target is not None:
        ax.plot(future_t, np.asarray(target), color="tab:red", lw=1.2, ls="--", label="actual")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="upper left", fontsize="small", ncol=2)
    ax.grid(alpha=0.3)
    if np.issubdtype(np.asarray(history_t).dtype, np.datetime64):
        fig.autofmt_xdate()
    return _finish(fig, path)


def reliability_diagram(nominal: Sequence[float] | Mapping[str, Sequence[float]],
                        observed: Sequence[float] | Mapping[str, Sequence[float]],
                        labels: str | Sequence[str] | None = None,
                        title: str = "Reliability of central intervals",
                        path: str | os.PathLike | None = None) -> Figure:
    """Observed vs nominal coverage of central intervals; one line per method.

    Args:
        nominal: nominal levels in (0, 1) — one sequence shared by all methods, or a
            ``{label: levels}`` mapping.
        observed: observed coverages — one sequence, a list of sequences (with ``labels``),
            or a ``{label: coverages}`` mapping.
        labels: method name(s) when ``observed`` is not a mapping.
        title: axes title.
        path: write a PNG here too.
    """
    if isinstance(observed, Mapping):
        series = {k: np.asarray(v, dtype=float) for k, v in observed.items()}
    else:
        arr = np.asarray(observed, dtype=float)
        arr = arr[None] if arr.ndim == 1 else arr
        names = [labels] if isinstance(labels, str) else list(labels or [f"method {i + 1}" for i in range(len(arr))])
        if len(names) != len(arr):
            raise ValueError(f"{len(arr)} observed series but {len(names)} labels")
        series = dict(zip(names, arr))
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=1, label="ideal")
    for name, obs in series.items():
        nom = np.asarray(nominal[name] if isinstance(nominal, Mapping) else nominal, dtype=float)
        ax.plot(nom, obs, marker="o", ms=3, lw=1.3, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("nominal coverage of central interval")
    ax.set_ylabel("observed coverage")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    return _finish(fig, path)


def pit_histogram(pit_values: np.ndarray | None = None, bins: int = 20, *,
                  edges: np.ndarray | None = None, density: np.ndarray | None = None,
                  title: str = "PIT histogram", path: str | os.PathLike | None = None) -> Figure:
    """Histogram of PIT values with the uniform reference line (flat = calibrated).

    Pass raw ``pit_values``, or a pre-binned ``edges``/``density`` pair (e.g. from
    ``ForecastEvaluation.pit_histogram()``). U-shape = overconfident, hump = underconfident.
    """
    if pit_values is not None:
        counts, edges = np.histogram(np.asarray(pit_values).ravel(), bins=bins, range=(0.0, 1.0))
        density = counts / max(counts.sum(), 1) * bins
    elif edges is None or density is None:
        raise ValueError("pit_histogram needs pit_values, or edges and density")
    edges, density = np.asarray(edges, dtype=float), np.asarray(density, dtype=float)
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    ax.bar(edges[:-1], density, width=np.diff(edges), align="edge", color="tab:blue",
           alpha=0.7, edgecolor="white", label="PIT")
    ax.axhline(1.0, color="tab:red", ls="--", lw=1, label="uniform (calibrated)")
    ax.set_xlim(0, 1)
    ax.set_xlabel("PIT value")
    ax.set_ylabel("density")
    ax.set_title(title)
    ax.legend(loc="upper center", fontsize="small")
    return _finish(fig, path)


def curves(x: Sequence[float] | Mapping[str, Sequence[float]], ys: Mapping[str, Sequence[float]],
           xlabel: str = "iteration", ylabel: str = "value", logy: bool = False,
           title: str = "", path: str | os.PathLike | None = None) -> Figure:
    """Line plot of several curves (e.g. convergence of KL or loss per method).

    Args:
        x: shared x values, or ``{label: x values}`` per curve.
        ys: ``{label: y values}``.
        xlabel, ylabel, title: labels.
        logy: logarithmic y axis (non-positive values are masked).
        path: write a PNG here too.
    """
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot()
    for name, y in ys.items():
        xs = np.asarray(x[name] if isinstance(x, Mapping) else x, dtype=float)
        y = np.asarray(y, dtype=float)
        ax.plot(xs[: len(y)], y, lw=1.4, label=name)
    if logy:
        ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3, which="both")
    return _finish(fig, path)
