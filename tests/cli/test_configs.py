"""Every config in configs/ loads, names a registered dataset, rejects typos, and trains with tiny overrides."""
from __future__ import annotations

from pathlib import Path

import pytest

from forecasting.cli.entry import main
from forecasting.cli.commands.common import load_run_config
from forecasting.data.registry import get_spec
from forecasting.core.errors import ForecastingError

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
BENCHMARKS = {"ETTh1", "ETTh2", "exchange_rate", "national_illness"}

# A tiny budget: one epoch of two batches, two validation samples, no test evaluation.
TINY = ["training.epochs=1", "training.max_batches_per_epoch=2", "inference.eval_samples=2", "inference.warm_start_epochs=1"]


def test_there_is_a_config_per_benchmark_dataset_and_the_demo():
    names = {p.stem for p in CONFIGS}
    assert BENCHMARKS | {"demo"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_loads_and_names_a_registered_dataset(path):
    config, dataset, resolved = load_run_config(path)
    assert dataset is not None and get_spec(dataset) is not None
    assert resolved["dataset"] == dataset
    assert config.data.horizon >= 1 and config.koopa().horizon == config.data.horizon
    if path.stem in BENCHMARKS:
        assert get_spec(dataset).name == path.stem


def test_unknown_keys_are_rejected_with_a_suggestion():
    path = REPO / "configs" / "demo.yaml"
    with pytest.raises(ForecastingError, match="did you mean 'epochs'"):
        load_run_config(path, ["training.epoch=1"])
    with pytest.raises(ForecastingError, match="did you mean 'inference'"):
        load_run_config(path, ["inferenc.method=advi"])
    with pytest.raises(ForecastingError, match="not one of"):
        load_run_config(path, ["inference.method=scorvi"])


def test_override_and_data_flag_win_over_the_file():
    config, dataset, _ = load_run_config(REPO / "configs" / "ETTh1.yaml", ["training.epochs=3"], dataset="ETTh2")
    assert config.training.epochs == 3 and dataset == "ETTh2"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_builds_a_model_that_forecasts_its_horizon(path):
    import numpy as np
    import torch

    from forecasting.models.koopa.frequency_mask import compute_frequency_mask
    from forecasting.models.koopa.module import Koopa

    config, dataset, _ = load_run_config(path)
    channels = len(config.data.columns) if config.data.columns else 2
    rng = np.random.default_rng(0)
    mask = compute_frequency_mask(rng.normal(size=(4 * config.data.lookback, channels)), config.data.lookback, config.model.alpha)
    model = Koopa(config.koopa(), channels, mask).eval()
    with torch.no_grad():
        out = model(torch.randn(3, config.data.lookback, channels))
    assert out.shape == (3, config.data.horizon, channels) and torch.isfinite(out).all()


def _train(path: Path, tmp_path: Path, extra: list[str] = ()) -> Path:
    argv = ["train", "--config", str(path), "--out", str(tmp_path), "--run-id", path.stem, "--no-eval", "-q", "--threads", "1"]
    for item in TINY + list(extra):
        argv += ["--set", item]
    assert main(argv) == 0
    run = tmp_path / path.stem
    assert (run / "model" / "manifest.json").is_file() and (run / "config.yaml").is_file() and (run / "run.json").is_file()
    return run


@pytest.mark.slow  # demo.yaml with tiny overrides is also trained (on a shorter series) by tests/test_cli_run.py
def test_demo_config_trains_with_tiny_overrides(tmp_path, capsys):
    _train(REPO / "configs" / "demo.yaml", tmp_path, ["model.dynamic_dim=8", "model.hidden_dim=16"])
    assert capsys.readouterr().out.strip().endswith("demo")


@pytest.mark.slow  # ~20-30 s each on a loaded 2-core machine (validation over every val window)
@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_benchmark_config_trains_with_tiny_overrides(name, tmp_path, shared_data_dir):
    # the benchmark configs' own data/model sections, a two-batch budget
    _train(REPO / "configs" / f"{name}.yaml", tmp_path, [])
