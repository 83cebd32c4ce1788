"""Plotly figures of the dashboard: fan chart, reliability diagram, PIT histogram (no Streamlit here).

Plotly gives zoom/pan and hover for free; the static PNG versions of the same views live in
:mod:`forecasting.evaluation.plots` (used by the CLI reports and the notebook).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

# Band fill per central-interval level (darker = narrower), median and history colours.
BAND_COLOURS = {0.95: "rgba(31,119,180,0.15)", 0.80: "rgba(31,119,180,0.28)", 0.50: "rgba(31,119,180,0.45)"}
MEDIAN_COLOUR = "rgb(31,119,180)"
HISTORY_COLOUR = "rgb(60,60,60)"
METHOD_COLOURS = ["rgb(31,119,180)", "rgb(255,127,14)", "rgb(44,160,44)", "rgb(214,39,40)"]


def fan_chart(history_t: Sequence, history_y: np.ndarray, future_t: Sequence, median: np.ndarray,
              bands: Mapping[float, tuple[np.ndarray, np.ndarray]], title: str = "", y_label: str = "") -> go.Figure:
    """History, the median forecast and central-interval bands.

    Args:
        history_t / history_y: observed timestamps and values (1-D).
        future_t: forecast timestamps (``H``).
        median: median forecast ``[H]``.
        bands: ``{level: (lower [H], upper [H])}``, e.g. ``{0.95: ..., 0.8: ..., 0.5: ...}``.
    """
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=list(history_t), y=np.asarray(history_y, dtype=float), mode="lines", name="history",
                             line={"color": HISTORY_COLOUR, "width": 1.4}))
    future_t = list(future_t)
    for level in sorted(bands, reverse=True):  # widest first so narrower bands are drawn on top
        lo, hi = bands[level]
        colour = BAND_COLOURS.get(round(level, 2), "rgba(31,119,180,0.2)")
        fig.add_trace(go.Scatter(x=future_t, y=np.asarray(hi, dtype=float), mode="lines", line={"width": 0},
                                 showlegend=False, hoverinfo="skip", legendgroup=f"b{level}"))
        fig.add_trace(go.Scatter(x=future_t, y=np.asarray(lo, dtype=float), mode="lines", line={"width": 0},
                                 fill="tonexty", fillcolor=colour, name=f"{level:.0%} interval", legendgroup=f"b{level}"))
    fig.add_trace(go.Scatter(x=future_t, y=np.asarray(median, dtype=float), mode="lines", name="median",
                             line={"color": MEDIAN_COLOUR, "width": 2}))
    fig.update_layout(title=title, height=430, margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
                      legend={"orientation": "h", "y": -0.25}, yaxis_title=y_label, hovermode="x unified")
    fig.update_xaxes(rangeslider={"visible": True, "thickness": 0.08})
    return fig


def reliability_chart(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]]) -> go.Figure:
    """Observed vs nominal coverage of central intervals, one line per method, with the diagonal."""
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="calibrated", line={"color": "grey", "dash": "dash"}))
    for i, (name, (nominal, observed)) in enumerate(curves.items()):
        fig.add_trace(go.Scatter(x=list(nominal), y=list(observed), mode="lines+markers", name=name,
                                 line={"color": METHOD_COLOURS[i % len(METHOD_COLOURS)]}))
    fig.update_layout(height=380, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title="Reliability diagram",
                      xaxis_title="nominal coverage of the central interval", yaxis_title="observed coverage",
                      legend={"orientation": "h", "y": -0.25})
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1])
    return fig


def pit_chart(edges: np.ndarray, density: np.ndarray, name: str = "") -> go.Figure:
    """PIT histogram (density; 1 = uniform = calibrated; U shape = intervals too narrow)."""
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure()
    fig.add_trace(go.Bar(x=centres, y=density, width=np.diff(edges) * 0.95, name=name or "PIT",
                         marker={"color": METHOD_COLOURS[0]}))
    fig.add_hline(y=1.0, line={"color": "grey", "dash": "dash"}, annotation_text="uniform")
    fig.update_layout(height=380, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title=f"PIT histogram{f' — {name}' if name else ''}",
                      xaxis_title="PIT value", yaxis_title="density", showlegend=False)
    fig.update_xaxes(range=[0, 1])
    return fig
