"""Plots (forecasting.evaluation.plots) render readable, non-empty PNGs."""
from __future__ import annotations

import numpy as np
import pytest

from forecasting.evaluation import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    data = path.read_bytes()
    return data[:8] == PNG_MAGIC and len(data) > 2000


def test_fan_chart(tmp_path):
    t = np.arange("2020-01-01T00", "2020-01-05T00", dtype="datetime64[h]")
    hist_t, fut_t = t[:72], t[72:]
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(100, len(fut_t))).cumsum(axis=1)
    qs = {q: np.quantile(samples, q, axis=0) for q in (0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)}
    fig = plots.fan_chart(hist_t, np.sin(np.arange(72) / 4), fut_t, qs, target=samples[0], title="OT, ETTh2",
                          path=tmp_path / "fan.png")
    assert _is_png(tmp_path / "fan.png")
    ax = fig.axes[0]
    assert ax.get_title() == "OT, ETTh2" and ax.get_xlabel() and ax.get_ylabel()
    labels = {t.get_text() for t in ax.get_legend().get_texts()}
    assert {"95% interval", "80% interval", "50% interval", "median forecast", "actual", "history"} <= labels
    with pytest.raises(ValueError, match="0.5"):
        plots.fan_chart(hist_t, np.zeros(72), fut_t, {0.1: qs[0.1]})


def test_reliability_diagram_several_methods(tmp_path):
    nominal = np.round(np.arange(0.05, 1.0, 0.05), 2)
    fig = plots.reliability_diagram(nominal, {"scorevi": nominal * 0.98, "advi": nominal ** 1.5},
                                    path=tmp_path / "rel.png")
    assert _is_png(tmp_path / "rel.png")
    labels = {t.get_text() for t in fig.axes[0].get_legend().get_texts()}
    assert {"scorevi", "advi", "ideal"} <= labels
    fig2 = plots.reliability_diagram(nominal, [nominal, nominal], labels=["a", "b"])
    assert len(fig2.axes[0].lines) == 3


def test_pit_histogram(tmp_path):
    pit = np.random.default_rng(1).uniform(size=5000)
    plots.pit_histogram(pit, path=tmp_path / "pit.png")
    assert _is_png(tmp_path / "pit.png")
    fig = plots.pit_histogram(edges=np.linspace(0, 1, 11), density=np.ones(10), title="PIT, method X")
    assert fig.axes[0].get_title() == "PIT, method X"


def test_curves_logy(tmp_path):
    it = np.arange(1, 101)
    plots.curves(it, {"scorevi": 1 / it, "advi": 2 / np.sqrt(it)}, xlabel="iteration", ylabel="KL", logy=True,
                 title="convergence", path=tmp_path / "sub" / "curves.png")
    assert _is_png(tmp_path / "sub" / "curves.png")
    assert not list((tmp_path / "sub").glob(".*"))  # no temporary file left behind
