"""Streamlit renderers of the result views and the device panel (they draw; the numbers come from
:mod:`app.components.forecast` and :mod:`app.components.calibration`)."""
from __future__ import annotations

import math
from typing import Any

import pandas as pd
import streamlit as st

from app.components import charts
from app.components.calibration import CalibrationResult
from app.components.forecast import ForecastResult


def device_panel() -> dict[str, Any]:
    """GPU name and memory when CUDA is available (training and prediction then run there), else CPU."""
    import torch

    from forecasting.core.device import describe_device, resolve_device

    info = describe_device(resolve_device("auto"))
    st.subheader("Device")
    if info["device"] == "cuda":
        free, total = torch.cuda.mem_get_info()
        st.success(f"GPU: {info['name']}")
        st.caption(f"{total / 2**30:.1f} GiB memory, {free / 2**30:.1f} GiB free — training and prediction run on the GPU")
    else:
        st.info("CPU (no CUDA GPU found)")
        st.caption(f"{info.get('threads', '?')} torch threads — training and prediction run on the CPU")
    return info


def forecast_view(result: ForecastResult, key: str) -> None:
    """Per-series fan chart with zoom, series selector, quantile table and CSV download."""
    columns = list(result.columns)
    series = st.selectbox("Series", columns, key=f"series_{key}", help="the channel to show")
    ch = result.channel(series)
    fig = charts.fan_chart(result.history_t, ch["history"], result.future_t(), ch["median"], ch["bands"],
                           title=f"{series}: next {result.prediction.horizon} steps", y_label=series)
    st.plotly_chart(fig, width="stretch", key=f"fan_{key}")
    st.caption("Median forecast with 50/80/95% central intervals from "
               f"{result.prediction.n_samples} predictive samples. Drag to zoom, double-click to reset; "
               "the slider below the chart pans.")
    table = result.table_wide(series)
    st.dataframe(table, width="stretch", hide_index=True, key=f"table_{key}")
    csv = result.table().to_csv(index=False).encode("utf-8")
    st.download_button("Download forecast (CSV, all series)", csv, file_name="forecast.csv", mime="text/csv",
                       key=f"download_{key}")


def calibration_view(result: CalibrationResult, key: str) -> None:
    """Reliability diagram, PIT histogram, coverage/width table and the CRPS comparison."""
    small = result.too_few_origins()
    if small:  # above the charts: a ragged PIT from a handful of origins must not be read as miscalibration
        st.warning(small)
    st.caption(f"Backtest on the last part of the series (the test split, never used for training): "
               f"{result.n_windows} forecast origins from {result.first_origin} to {result.last_origin}, "
               f"{result.n_samples} samples each; seasonal-naive season = {result.season}.")
    left, right = st.columns(2)
    curves = {m.name: (m.reliability["nominal"], m.reliability["observed"]) for m in result.methods}
    with left:
        st.plotly_chart(charts.reliability_chart(curves), width="stretch", key=f"reliability_{key}")
    main = result.main
    with right:
        edges, density = main.pit_density()
        st.plotly_chart(charts.pit_chart(edges, density, main.name), width="stretch", key=f"pit_{key}")
    st.markdown(f"**Coverage and width of the {main.name} intervals**")
    cov = pd.DataFrame(result.coverage_rows())
    st.dataframe(cov.style.format({"nominal": "{:.0%}", "observed": "{:.1%}", "mean width": "{:.4g}"}),
                 width="stretch", hide_index=True, key=f"coverage_{key}")
    st.markdown("**CRPS compared with the deterministic Koopa and seasonal-naive baselines** (lower is better)")
    comp = pd.DataFrame(result.comparison_rows())
    st.dataframe(comp.style.format({c: _fmt(c) for c in comp.columns if c != "method"}),
                 width="stretch", hide_index=True, key=f"comparison_{key}")
    best = min(result.methods, key=lambda m: _nan_last(m.metrics_scaled.get("crps")))
    st.caption(f"Lowest CRPS here: {best.name}. CRPS (scaled) is on standard-scaled data (each channel weighs the "
               "same); CRPS is in the data's units. A calibrated model's observed coverage equals the nominal one.")
    for note in result.notes:
        st.caption(note)


def _fmt(column: str) -> str:
    return "{:.1%}" if column.startswith("coverage") else "{:.4g}"


def _nan_last(v: float | None) -> float:
    return math.inf if v is None or not math.isfinite(v) else v
