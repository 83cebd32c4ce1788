"""``forecasting tune``: search-space validation, the pruning hook, and a parallel sweep end to end.

Data: a generated two-channel hourly series (700 rows: daily and half-daily cycles plus noise),
written to CSV so the sweep reads it like a user's file. The model is ScoreVI-Koopa with a tiny
budget (1 warm-start epoch + 2 posterior epochs of 3 batches).
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import yaml

from forecasting.core.errors import ForecastingError
from forecasting.tuning.space import load_space, parse_space, validate_key

REPO = Path(__file__).resolve().parents[2]

BASE = {
    "data": {"lookback": 48, "horizon": 12, "split": {"kind": "ratio", "train": 0.6, "val": 0.2, "test": 0.2}},
    "model": {"seg_len": 12, "dynamic_dim": 8, "hidden_dim": 16, "hidden_layers": 1, "num_blocks": 1, "dropout": 0.0},
    "inference": {"method": "scorevi", "warm_start_epochs": 1, "prior_center": "warm_start", "eval_samples": 4},
    "optim": {"lr": 0.001, "schedule": "constant"},
    "training": {"epochs": 2, "batch_size": 32, "patience": 2, "monitor": "val_crps", "max_batches_per_epoch": 3},
    "predict": {"samples": 20},
    "device": "cpu",
}

# A space in which some trials must fail and most must be pruned:
# * inference.method=mc_dropout with model.dropout=0 is a user error raised by the fit (a recorded FAIL);
# * the 10th-percentile pruner stops a trial at the first epoch where it is not (almost) the best so far.
SPACE = {
    "params": {
        "inference.scorevi.proximal_weight": {"type": "float", "low": 3.0, "high": 300.0, "log": True},
        "inference.scorevi.mc_samples": {"type": "int", "low": 1, "high": 8, "log": True},
        "inference.method": ["scorevi", "mc_dropout"],
    },
    "sampler": {"kind": "tpe", "seed": 8},
    "pruner": {"kind": "percentile", "percentile": 10, "n_startup_trials": 1, "n_warmup_steps": 0},
    "evaluation": {"samples": 16, "max_windows": 30},
}


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("tune")
    rng = np.random.default_rng(0)
    n = 700
    t = np.arange(n)
    stamps = [dt.datetime(2020, 1, 1) + dt.timedelta(hours=int(i)) for i in t]
    a = np.sin(2 * np.pi * t / 24) + 0.3 * rng.standard_normal(n)
    b = np.cos(2 * np.pi * t / 12) + 0.5 * np.sin(2 * np.pi * t / 24) + 0.3 * rng.standard_normal(n)
    pl.DataFrame({"date": stamps, "a": a, "b": b}).write_csv(d / "tiny.csv")
    (d / "base.yaml").write_text(yaml.safe_dump({"dataset": str(d / "tiny.csv"), **BASE}))
    (d / "space.yaml").write_text(yaml.safe_dump(SPACE, sort_keys=False))  # keep the suggest order
    return d


def _space_file(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


# ------------------------------------------------------------------------------------ search space
def test_space_rejects_unknown_keys_with_a_suggestion(tmp_path):
    bad = {"params": {"inference.scorevi.proximal_wieght": {"type": "float", "low": 1, "high": 10, "log": True}}}
    with pytest.raises(ForecastingError, match=r"did you mean 'inference\.scorevi\.proximal_weight'"):
        load_space(_space_file(tmp_path, bad))
    with pytest.raises(ForecastingError, match="unknown search-space key 'infrence.prior_scale'.*did you mean 'inference'"):
        validate_key("infrence.prior_scale")
    with pytest.raises(ForecastingError, match="whole section"):
        validate_key("inference.scorevi")
    with pytest.raises(ForecastingError, match="is a value, not a section"):
        validate_key("optim.lr.x")
    with pytest.raises(ForecastingError, match="unknown config key 'pruning'"):
        parse_space({"params": {"optim.lr": [0.001]}, "pruning": {}})
    with pytest.raises(ForecastingError, match="unknown distribution field 'hgih'.*did you mean 'high'"):
        parse_space({"params": {"optim.lr": {"type": "float", "low": 0.001, "hgih": 0.1}}})


@pytest.mark.parametrize("spec, message", [
    ({"type": "float", "low": 0.0, "high": 1.0, "log": True}, "log range needs low > 0"),
    ({"type": "float", "low": 2.0, "high": 1.0}, "must be <= high"),
    ({"type": "int", "low": 1.5, "high": 4}, "integer low/high"),
    ({"type": "normal", "low": 1, "high": 2}, "type must be float, int or categorical"),
    ({"type": "categorical", "choices": []}, "non-empty 'choices'"),
])
def test_space_rejects_bad_distributions(spec, message):
    with pytest.raises(ForecastingError, match=message):
        parse_space({"params": {"inference.scorevi.mc_samples": spec}})


def test_space_bounds_are_checked_against_the_config():
    space = parse_space({"params": {"inference.scorevi.mc_samples": {"type": "int", "low": 0, "high": 8}}}, "s.yaml")
    with pytest.raises(ForecastingError, match=r"s\.yaml: inference\.scorevi\.mc_samples=0 is not a valid config value"):
        space.check_against(BASE)
    space = parse_space({"params": {"inference.method": ["scorevi", "laplace"]}}, "s.yaml")
    with pytest.raises(ForecastingError, match="'laplace'"):
        space.check_against(BASE)
    with pytest.raises(ForecastingError, match="grid' needs categorical"):
        parse_space({"params": {"optim.lr": {"type": "float", "low": 1e-4, "high": 1e-2}}, "sampler": {"kind": "grid"}})
    with pytest.raises(ForecastingError, match="unknown objective"):
        parse_space({"params": {"optim.lr": [0.001]}, "objectives": ["val_crps", "val_mse"]})


def test_shipped_sweep_files_are_valid():
    from forecasting.core.config import to_dict
    from forecasting.forecaster.config import ForecasterConfig

    files = sorted((REPO / "configs" / "sweeps").glob("*.yaml"))
    assert {"default.yaml", "pareto.yaml", "sensitivity.yaml"} <= {f.name for f in files}
    for path in files:
        space = load_space(path)
        space.check_against(to_dict(ForecasterConfig()))
    default = load_space(REPO / "configs" / "sweeps" / "default.yaml")
    by_key = {p.key: p for p in default.params}
    assert by_key["inference.scorevi.proximal_weight"].type == "float" and by_key["inference.scorevi.proximal_weight"].log
    assert by_key["inference.scorevi.mc_samples"].type == "int" and by_key["inference.scorevi.mc_samples"].log
    assert {"optim.lr", "inference.prior_scale"} <= set(by_key)


# ------------------------------------------------------------------------------------ pruning hook
def test_epoch_reporter_sees_every_validation_and_can_stop_the_fit(work):
    from forecasting.core.config import from_dict
    from forecasting.data import load_series
    from forecasting.forecaster.api import Forecaster
    from forecasting.forecaster.config import ForecasterConfig
    from forecasting.tuning.hooks import epoch_reporter

    frame = load_series(str(work / "tiny.csv"))
    config = from_dict(ForecasterConfig, BASE)
    seen = []
    fc = Forecaster.fit(frame, config, on_epoch=epoch_reporter(lambda epoch, phase, metrics: seen.append((epoch, phase, metrics["crps"]))))
    assert [s[0] for s in seen] == [1, 2, 3]  # 1 warm-start epoch + 2 posterior epochs, numbered across phases
    assert seen[0][1] == "warm_start" and seen[1][1] == "posterior"
    assert np.isfinite([s[2] for s in seen]).all()
    assert fc.summary["epochs_run"] == 2

    class Stop(Exception):
        pass

    def stop(epoch, phase, metrics):
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        Forecaster.fit(frame, config, on_epoch=epoch_reporter(stop))


# ------------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def sweep(work):
    from forecasting.cli.entry import main

    out = work / "sweep"
    code = main(["tune", "--config", str(work / "base.yaml"), "--space", str(work / "space.yaml"), "--trials", "6",
                 "--workers", "2", "--threads", "1", "--out", str(out), "--study", "tiny"])
    assert code == 0
    return out


def test_parallel_sweep_prunes_records_failures_and_writes_outputs(sweep):
    import optuna

    from forecasting.tuning.study import make_storage

    study = optuna.load_study(study_name="tiny", storage=make_storage(f"journal:{sweep / 'study.journal'}"))
    trials = study.get_trials()
    states = [t.state.name for t in trials]
    assert len(trials) == 6 and "RUNNING" not in states, states
    assert states.count("PRUNED") >= 1, states
    assert states.count("COMPLETE") >= 1, states
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert failed and all("mc_dropout needs model.dropout > 0" in t.user_attrs["error"] for t in failed)
    assert all(t.params["inference.method"] == "mc_dropout" for t in failed)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both processes wrote to the one journal file
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    assert all(t.intermediate_values and "pruned_at_epoch" in t.user_attrs for t in pruned)
    for name in ("best.yaml", "trials.csv", "summary.md", "history.png", "history.html"):
        assert (sweep / name).is_file(), name
    summary = (sweep / "summary.md").read_text()
    assert "## Failed trials" in summary and "mc_dropout needs model.dropout" in summary
    assert "## Pruned trials" in summary and "forecasting train --config" in summary
    rows = pl.read_csv(sweep / "trials.csv")
    assert rows.height == 6 and set(rows["state"]) == set(states)


def test_best_yaml_retrains_with_forecasting_train(sweep, work):
    from forecasting.cli.entry import main
    from forecasting.core.config import read_yaml

    import optuna

    from forecasting.tuning.study import make_storage

    best = read_yaml(sweep / "best.yaml")
    study = optuna.load_study(study_name="tiny", storage=make_storage(f"journal:{sweep / 'study.journal'}"))
    assert best["inference"]["scorevi"]["proximal_weight"] == pytest.approx(study.best_params["inference.scorevi.proximal_weight"])
    assert best["inference"]["scorevi"]["mc_samples"] == study.best_params["inference.scorevi.mc_samples"]
    assert best["dataset"] == str(work / "tiny.csv") and best["data"]["lookback"] == 48
    code = main(["train", "--config", str(sweep / "best.yaml"), "--out", str(work / "runs"), "--run-id", "best",
                 "--no-eval", "-q"])
    assert code == 0
    record = json.loads((work / "runs" / "best" / "run.json").read_text())
    assert record["training_summary"]["method"] == "scorevi"


def test_a_study_refuses_a_different_base_config(sweep, work):
    from forecasting.tuning.study import TuneJob, tune

    job = TuneJob(config=str(work / "base.yaml"), space=str(work / "space.yaml"), trials=0, out=str(sweep),
                  study="tiny", overrides=("optim.lr=0.01",))
    with pytest.raises(ForecastingError, match="was created with a different base_config"):
        tune(job)
    # the same settings with --trials 0 only rewrite the report from the storage
    again = tune(TuneJob(config=str(work / "base.yaml"), space=str(work / "space.yaml"), trials=0, out=str(sweep), study="tiny"))
    assert again.n_trials == 6 and again.best_yaml is not None


def test_two_objectives_give_a_pareto_front_without_pruning(work, tmp_path):
    from forecasting.tuning.study import TuneJob, tune

    space = {**SPACE, "params": {k: v for k, v in SPACE["params"].items() if k != "inference.method"},
             "objectives": ["val_crps", "train_seconds"]}
    path = _space_file(tmp_path, space)
    result = tune(TuneJob(config=str(work / "base.yaml"), space=str(path), trials=2, out=str(tmp_path / "out"),
                          study="pareto"))
    assert result.states == {"COMPLETE": 2}  # a multi-objective study cannot prune
    assert len(result.best_values) == 2 and (tmp_path / "out" / "pareto.png").is_file()
    assert list((tmp_path / "out" / "pareto").glob("trial-*.yaml"))
    assert "Pareto front" in result.summary_md.read_text()


def test_an_rdb_url_storage_holds_the_study(work, tmp_path):
    from forecasting.tuning.study import TuneJob, tune

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    result = tune(TuneJob(config=str(work / "base.yaml"), space=str(work / "space.yaml"), trials=0, storage=url,
                          out=str(tmp_path / "out"), study="rdb"))
    assert result.storage == url and result.n_trials == 0 and result.best_yaml is None
    assert (tmp_path / "optuna.db").is_file() and "No trial completed" in result.summary_md.read_text()


def test_grid_cells_are_queued_once_so_parallel_workers_never_repeat_one():
    import optuna

    from forecasting.tuning.study import enqueue_grid

    space = parse_space({"params": {"inference.scorevi.proximal_weight": [1.0, 10.0], "inference.scorevi.mc_samples": [1, 4]},
                         "sampler": {"kind": "grid"}})
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(space.grid(), seed=0))
    assert enqueue_grid(study, space) == 4 and enqueue_grid(study, space) == 4  # queued, not duplicated
    study.optimize(lambda t: sum(space.suggest(t).values()), n_trials=4, n_jobs=2)
    cells = {tuple(sorted(t.params.items())) for t in study.trials}
    assert len(study.trials) == 4 and len(cells) == 4
    assert enqueue_grid(study, space) == 0


def test_sensitivity_tables_and_heatmap_mark_the_chosen_cells(tmp_path):
    from forecasting.bench import sensitivity as sens

    def row(search, lam, s, val, state="COMPLETE", trial=0):
        return {"search": search, "trial": trial, "proximal_weight": lam, "mc_samples": s, "state": state,
                "metrics": {"val_crps": val, "crps": val + 0.02, "coverage_90": 0.88},
                "seconds": {"train": 10.0, "train_cpu": 5.0 * s}}

    grid = [row("grid", lam, s, 0.2 + 0.001 * i) for i, (lam, s) in enumerate((a, b) for a in (1.0, 10.0) for b in (1, 4))]
    grid.append(row("grid", 1.0, 1, 0.5, trial=9))  # a repeated cell: the first completed one is kept
    rows = sens._one_per_cell(grid) + [row("tpe", 3.0, 2, 0.1)]
    assert len(rows) == 5
    marks = sens._marks(rows)
    assert marks["grid_best"]["metrics"]["val_crps"] == 0.2 and marks["tuned"]["search"] == "tpe"
    assert sens._position([1.0, 10.0, 100.0], 10.0) == pytest.approx(1.0)
    assert sens._position([1.0, 10.0, 100.0], 1000.0) == pytest.approx(3.0)  # beyond the last cell: extrapolated
    png = sens._heatmap(rows, marks, tmp_path / "sensitivity" / "heatmap.png")
    md = sens._markdown(rows, marks, png, tmp_path, "cmd", 60.0, 30.0, ("training.epochs=1",))
    assert png.stat().st_size > 10_000
    assert "0.2200 □" in md and "| 0 ★ |" in md and "Every one of the 4 cells converged" in md
