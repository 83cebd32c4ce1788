"""The probabilistic benchmark suite: smoke runs on real data with tiny budgets, error rows, goal logic."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

from forecasting.bench.forecast import probabilistic as fp
from forecasting.bench.forecast import prob_report
from forecasting.bench.forecast.prob_methods import Budget, make_spec

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "national_illness.csv").exists(),
                                reason=f"benchmark data not found in {DATA} (see /work/shared/data/README.md)")

TINY = ["--koopa-epochs", "1", "--koopa-batches", "2", "--max-test-windows", "6", "--stat-windows", "2"]


def _args(tmp_path: Path, *extra: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    fp.add_arguments(parser)
    args = parser.parse_args(["--suite", "probabilistic", "--datasets", "national_illness", "--horizons", "24",
                              "--out", str(tmp_path), "--data-dir", str(DATA), "--samples", "20", "--device", "cpu",
                              "--threads", "1", *TINY, *extra])
    args.command_line = "forecasting bench forecast --suite probabilistic (test)"
    return args


@needs_data
def test_smoke_run_writes_json_markdown_and_figures(tmp_path):
    args = _args(tmp_path, "--in-process", "--methods", "seasonal-naive", "koopa-conformal", "no-such-method")
    assert fp.run(args) == 0
    payload = json.loads((tmp_path / "probabilistic.json").read_text())
    assert payload["suite"] == "probabilistic" and payload["command"] == args.command_line
    assert payload["partial"] is False
    rows = {r["method"]: r for r in payload["rows"]}
    assert list(rows) == ["seasonal-naive", "koopa-conformal", "no-such-method"]
    assert "unknown method" in rows["no-such-method"]["error"] and "metrics" not in rows["no-such-method"]
    for name in ("seasonal-naive", "koopa-conformal"):
        r = rows[name]
        assert r["dataset"] == "national_illness" and r["horizon"] == 24 and r["lookback"] == 48
        for key in ("mse", "mae", "crps", "mean_wql", "coverage_50", "coverage_80", "coverage_90", "coverage_95",
                    "interval_width_50", "interval_width_95", "msis", "nll", "pit_error"):
            assert key in r["metrics"] and r["metrics"][key] is not None and math.isfinite(r["metrics"][key]), (name, key)
        assert r["metrics"]["n_samples"] == 20
        assert set(r["seconds"]) >= {"train", "predict"} and r["peak_rss_mb"] > 0
        assert r["windows"]["test"] <= 6 and r["windows"]["scored"] == r["windows"]["test"]
        assert len(r["pit_density"]) == 20 and len(r["reliability"]["observed"]) == len(r["reliability"]["nominal"])
    # The conformal interval is nested and the deterministic point forecast is recorded for the MSE goal.
    m = rows["koopa-conformal"]["metrics"]
    assert m["interval_width_50"] < m["interval_width_80"] < m["interval_width_95"]
    assert rows["koopa-conformal"]["info"]["point_mse"] > 0
    md = (tmp_path / "probabilistic.md").read_text()
    assert "## national_illness, H = 24" in md and "error: ValueError: unknown method" in md
    assert "## Goals of issue 5" in md and args.command_line in md
    for png in ("national_illness_H24_reliability.png", "national_illness_H24_pit.png", "national_illness_fan.png"):
        assert (tmp_path / "probabilistic" / png).stat().st_size > 1000
    # A hand-written analysis is embedded by re-rendering; the JSON stays as the run wrote it.
    before = (tmp_path / "probabilistic.json").read_text()
    (tmp_path / fp.ANALYSIS_FILE).write_text("- the conformal interval is too narrow on ILI\n")
    fp.rerender(tmp_path)
    md2 = (tmp_path / "probabilistic.md").read_text()
    assert "the conformal interval is too narrow on ILI" in md2 and args.command_line in md2
    assert md2.replace("### Analysis", "").count("national_illness_H24_pit.png") == md.count("national_illness_H24_pit.png")
    assert (tmp_path / "probabilistic.json").read_text() == before


@needs_data
def test_isolated_method_crash_becomes_an_error_row(tmp_path, monkeypatch):
    from forecasting.bench.forecast import prob_worker

    monkeypatch.setattr(prob_worker, "PRELOAD", [])  # keep the forkserver light in tests
    args = _args(tmp_path, "--methods", "seasonal-naive", "bogus")
    assert fp.run(args) == 0
    rows = json.loads((tmp_path / "probabilistic.json").read_text())["rows"]
    assert [r["method"] for r in rows] == ["seasonal-naive", "bogus"]
    assert "metrics" in rows[0] and rows[0]["peak_rss_mb"] > 0 and rows[0]["rss_at_start_mb"] > 0
    assert rows[1]["error"].startswith("ValueError: unknown method") and "Traceback" in rows[1]["traceback"]


@needs_data
def test_resume_reuses_finished_rows(tmp_path):
    args = _args(tmp_path, "--in-process", "--methods", "seasonal-naive")
    fp.run(args)
    first = json.loads((tmp_path / "probabilistic.json").read_text())["rows"][0]
    args = _args(tmp_path, "--in-process", "--resume", "--methods", "seasonal-naive")
    fp.run(args)
    again = json.loads((tmp_path / "probabilistic.json").read_text())["rows"][0]
    assert again["seconds"] == first["seconds"]  # not recomputed


def test_protocol_and_samples_are_checked(tmp_path):
    from forecasting.core.errors import ForecastingError

    with pytest.raises(ForecastingError, match="probts does not run"):
        fp.run(_args(tmp_path, "--protocol", "probts", "--methods", "ets"))
    with pytest.raises(ForecastingError, match="samples"):
        fp.run(_args(tmp_path, "--samples", "1"))


def test_horizons_budget_and_spec():
    assert fp.prob_horizons("ETTh1", None, False) == [48, 96]
    assert fp.prob_horizons("national_illness", None, False) == [24, 36]
    assert fp.prob_horizons("national_illness", None, True) == [24]
    assert fp.prob_horizons("ETTh2", [48, 96], True) == [48]
    spec = make_spec("ETTh2", 48, "scorevi-koopa", budget=Budget.quick())
    assert spec["lookback"] == 96 and spec["budget"]["koopa_epochs"] == Budget.quick().koopa_epochs
    json.dumps(spec)


def test_every_koopa_variant_gets_the_same_number_of_optimiser_steps():
    from forecasting.bench.forecast.prob_methods import KOOPA_METHODS, koopa_forecaster_config

    b = Budget(koopa_epochs=3, koopa_batches=7, warm_start_epochs=1)
    totals = {}
    for name in KOOPA_METHODS:
        cfg = koopa_forecaster_config(make_spec("ETTh2", 48, name, budget=b))
        totals[name] = (cfg.training.epochs + cfg.inference.warm_start_epochs) * cfg.training.max_batches_per_epoch
        assert cfg.model.seg_len == 48 and cfg.data.lookback == 96
    assert set(totals.values()) == {21}, totals
    assert koopa_forecaster_config(make_spec("ETTh2", 48, "scorevi-koopa-lowrank", budget=b)).inference.scorevi.family == "low_rank"


def _row(method, crps, mse=0.3, cov90=0.9, cov50=0.5, nll=1.0, ds="ETTh1", h=48, **extra):
    r = {"dataset": ds, "horizon": h, "method": method,
         "metrics": {"crps": crps, "mse": mse, "coverage_90": cov90, "coverage_50": cov50, "nll": nll},
         "metrics_stat_subset": {"crps": crps}, "seconds": {}, "info": {}}
    for k, v in extra.items():
        r[k].update(v) if isinstance(v, dict) else r.__setitem__(k, v)
    return r


def test_goal_summary_counts_datasets_and_flags_misses():
    rows = []
    for ds, svi_crps in (("ETTh1", 0.20), ("ETTh2", 0.35)):
        rows += [
            _row("koopa-conformal", 0.30, ds=ds, info={"point_mse": 0.30}),
            _row("advi-koopa", 0.31, nll=1.5, ds=ds, seconds={"per_step": 1.0, "train": 10.0}),
            _row("deepar", 0.32, ds=ds),
            _row("ets", 0.33, ds=ds),
            _row("scorevi-koopa", svi_crps, mse=0.31, cov90=0.88, cov50=0.52, nll=1.2, ds=ds,
                 seconds={"per_step": 1.2, "train": 11.0}, info={"speed": {"ratio": 1.1}}),
        ]
    rows.append({"dataset": "ETTh1", "horizon": 48, "method": "scorevi-koopa-lowrank", "error": "boom"})
    # The same-process timing overrides the (noisy) ratio of the separate runs for its cell.
    rows.append({"dataset": "ETTh2", "horizon": 48, "method": "koopa-step-timing", "info": {"step_timing": {
        "ratio_scorevi_advi": 1.6, "ratio_scorevi_deterministic": 4.0, "rounds": 2, "steps_per_round": 8, "batch_size": 32,
        "mc_samples": {"scorevi": 4, "advi": 4}, "seconds_per_step": {"scorevi": 1.6, "advi": 1.0, "deterministic": 0.4}}}})
    s = prob_report.summarise(rows)
    assert s["per_cell"]["ETTh2 H=48"]["train_step_ratio"] == 1.6
    assert s["per_cell"]["ETTh1 H=48"]["train_step_ratio"] == pytest.approx(1.2)
    g = s["goals"]
    assert g["scorevi_mse_le_1.05x_deterministic_every_dataset"]["met"] is True  # 0.31/0.30 = 1.033
    assert s["verdict"]["crps_best_among_koopa"] == [1, 2]  # ETTh2: 0.35 > conformal's 0.30
    assert g["scorevi_best_crps_among_koopa_and_beats_deepar_ets_3of4"]["met"] is False
    assert g["calibration_cov90_within_0.05_cov50_within_0.07"]["met"] is True
    assert g["nll_below_advi_3of4"]["met"] is True
    assert g["train_time_le_1.5x_advi"]["met"] is False and g["predict_100_samples_le_1.2x_100_forwards"]["met"] is True
    md = prob_report.render_markdown(rows, s, ["koopa-conformal", "scorevi-koopa", "scorevi-koopa-lowrank"],
                                     {"setup": ["x"], "notes": ["y"]}, {})
    assert "error: boom" in md and "**missed**" in md and "ScoreVI/ADVI **1.60**" in md


def test_goals_without_inputs_are_not_measured():
    s = prob_report.summarise([_row("seasonal-naive", 0.5)])
    assert all(g["met"] is None for g in s["goals"].values())


@needs_data
@pytest.mark.slow
def test_step_timing_pseudo_method_measures_three_step_times(tmp_path):
    args = _args(tmp_path, "--in-process", "--methods", "koopa-step-timing")
    assert fp.run(args) == 0
    row = json.loads((tmp_path / "probabilistic.json").read_text())["rows"][0]
    st = row["info"]["step_timing"]
    assert set(st["seconds_per_step"]) == {"scorevi", "advi", "deterministic"}
    assert all(v > 0 for v in st["seconds_per_step"].values())
    assert st["mc_samples"]["scorevi"] == st["mc_samples"]["advi"]
    assert "Training step time in one process" in (tmp_path / "probabilistic.md").read_text()
