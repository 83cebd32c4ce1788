"""What the dashboard's widgets choose, as plain data: training presets, the forecaster config, cache keys.

Nothing here imports Streamlit, so the logic is testable on its own and the page stays thin.
The dashboard builds an ordinary :class:`~forecasting.forecaster.config.ForecasterConfig` — the
same object the CLI loads from YAML — and keys every cached result by a hash of the data and
that config, so moving a widget that does not change either never retrains.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from forecasting.data.series import SeriesFrame
from forecasting.data.splits import SplitRule
from forecasting.forecaster.config import ModelSection

# Koopa's own defaults (stated once, in forecasting.models.koopa); the presets below name a size only
# where they depart from them.
KOOPA_DEFAULTS = ModelSection()

# Central-interval levels drawn as bands in the fan chart (outermost first, so inner bands sit on top).
BAND_LEVELS: tuple[float, ...] = (0.95, 0.80, 0.50)
# Quantiles of the table / CSV download: the band edges and the median.
TABLE_QUANTILES: tuple[float, ...] = (0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)

PRESET_ENV = "FORECASTING_DASHBOARD_PRESET"  # tests start the app with the "tiny" preset


@dataclass(frozen=True)
class TrainSettings:
    """Training budget of one dashboard run (the model sizes and caps a preset sets).

    Attributes:
        epochs: maximum variational epochs.
        warm_start_epochs: MAP epochs before ScoreVI (the posterior is centred there).
        max_batches_per_epoch: cap on steps per epoch (keeps an epoch short on big uploads).
        time_budget_s: wall-clock cap per training phase (the loop stops after that epoch).
        batch_size: training batch size.
        dynamic_dim / hidden_dim / num_blocks: Koopa size.
        val_windows: validation windows used for early stopping (evenly spaced; all when fewer).
        samples: predictive samples per forecast window.
        backtest_windows: forecast origins of the calibration backtest (evenly spaced over the test part).
        deterministic: also train a deterministic Koopa for the CRPS comparison.
        deterministic_epochs: its epoch cap (same batch cap and time budget).
    """

    epochs: int = 3
    warm_start_epochs: int = 3
    max_batches_per_epoch: int = 40
    time_budget_s: float = 30.0
    batch_size: int = 64
    # Smaller than Koopa's defaults where an interactive CPU budget needs it (embedding, depth).
    dynamic_dim: int = 32
    hidden_dim: int = KOOPA_DEFAULTS.hidden_dim
    num_blocks: int = 2
    val_windows: int = 192
    samples: int = 100
    backtest_windows: int = 48
    deterministic: bool = True
    deterministic_epochs: int = 6  # as many gradient steps as the warm start + posterior together


PRESETS: dict[str, TrainSettings] = {
    # A first look in well under a minute of training on a laptop CPU.
    "quick": TrainSettings(epochs=1, warm_start_epochs=3, max_batches_per_epoch=25, time_budget_s=15.0,
                           deterministic_epochs=4, backtest_windows=32),
    # The default: ETTh2 gives a forecast and the calibration view within about two minutes on CPU.
    "standard": TrainSettings(),
    # More steps; use it on a GPU or when waiting a few minutes is fine.
    "thorough": TrainSettings(epochs=3, warm_start_epochs=8, max_batches_per_epoch=200, time_budget_s=240.0,
                              dynamic_dim=64, num_blocks=KOOPA_DEFAULTS.num_blocks, val_windows=512, backtest_windows=96,
                              deterministic_epochs=6),
    # Tests and CI: seconds, not minutes (numbers are meaningless, the pipeline is real).
    "tiny": TrainSettings(epochs=1, warm_start_epochs=1, max_batches_per_epoch=3, time_budget_s=20.0, batch_size=16,
                          dynamic_dim=8, hidden_dim=16, num_blocks=1, val_windows=16, samples=40,
                          backtest_windows=6, deterministic_epochs=1),
}


def default_preset() -> str:
    """The preset selected when the page opens (``$FORECASTING_DASHBOARD_PRESET`` or ``standard``)."""
    name = os.environ.get(PRESET_ENV, "standard")
    return name if name in PRESETS else "standard"


@dataclass(frozen=True)
class DataSettings:
    """Window and split choices.

    Attributes:
        lookback: input length ``L``.
        horizon: forecast length ``H``.
        freq: frequency override (``None``: the inferred one).
        val_share / test_share: the validation and backtest shares at the end of the series;
            the backtest uses the *last* ``test_share`` of the rows, never seen in training.
        reading: the reading options of the config's ``data`` section chosen on the page
            (``time_format``, ``encoding``, ``delimiter``, ``missing``, and columns the user picked:
            :func:`app.components.data_source.data_keys`); saved in the run's config.yaml.
    """

    lookback: int = 96
    horizon: int = 48
    freq: str | None = None
    val_share: float = 0.1
    test_share: float = 0.2
    reading: tuple[tuple[str, Any], ...] = ()  # (key, value) pairs: hashable, as the page caches on it

    def split_rule(self) -> SplitRule:
        return SplitRule(kind="ratio", train=round(1.0 - self.val_share - self.test_share, 6),
                         val=self.val_share, test=self.test_share)


def forecaster_config_dict(data: DataSettings, train: TrainSettings, device: str = "auto") -> dict[str, Any]:
    """The :class:`ForecasterConfig` of a dashboard run as a plain dict (what the run's config.yaml holds).

    ScoreVI (diagonal family) with a short MAP warm start and the prior centred at it: the
    posterior then describes uncertainty around a fitted network, which is what a short
    interactive budget can afford (see :mod:`forecasting.forecaster.api`).
    """
    rule = data.split_rule()
    return {
        "data": {"lookback": int(data.lookback), "horizon": int(data.horizon), "freq": data.freq,
                 "split": {"kind": rule.kind, "train": rule.train, "val": rule.val, "test": rule.test},
                 **{key: list(v) if isinstance(v, tuple) else v for key, v in data.reading}},
        "model": {"dynamic_dim": train.dynamic_dim, "hidden_dim": train.hidden_dim, "num_blocks": train.num_blocks},
        "inference": {"method": "scorevi", "warm_start_epochs": train.warm_start_epochs,
                      "prior_center": "warm_start" if train.warm_start_epochs > 0 else "zero"},
        "training": {"epochs": train.epochs, "batch_size": train.batch_size, "patience": max(2, train.epochs),
                     "max_batches_per_epoch": train.max_batches_per_epoch, "time_budget_s": train.time_budget_s},
        "predict": {"samples": train.samples},
        "device": device,
    }


def deterministic_config_dict(config: dict[str, Any], train: TrainSettings) -> dict[str, Any]:
    """The peer: the same Koopa trained as a Gaussian-NLL point model (intervals from the noise)."""
    out = json.loads(json.dumps(config))
    out["inference"] = {"method": "deterministic"}
    out["training"] = {**out["training"], "epochs": train.deterministic_epochs, "monitor": "val_crps"}
    return out


def frame_digest(frame: SeriesFrame) -> str:
    """Content hash of a series (timestamps, values, columns, frequency): the data part of cache keys."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(frame.timestamps.astype("datetime64[ns]").astype(np.int64)).tobytes())
    h.update(np.ascontiguousarray(frame.values, dtype=np.float64).tobytes())
    h.update(json.dumps([list(frame.columns), frame.freq, frame.item_id]).encode())
    return h.hexdigest()[:16]


def run_key(digest: str, config: dict[str, Any], train: TrainSettings) -> str:
    """Cache key of a trained run: data hash + resolved config + the dashboard-only settings."""
    payload = json.dumps({"data": digest, "config": config, "train": asdict(train)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def with_overrides(base: TrainSettings, **changes: Any) -> TrainSettings:
    """``base`` with the advanced-panel overrides applied (``None`` = keep)."""
    return replace(base, **{k: v for k, v in changes.items() if v is not None})


THREADS_ENV = "FORECASTING_TORCH_THREADS"


def torch_threads() -> int:
    """CPU threads for torch in the dashboard's processes: the cores not already busy.

    OpenMP worker threads spin-wait; on a machine whose cores are already taken, two threads
    per process ran a Koopa training step ~15x slower than one (measured on a shared 2-core
    box), so the dashboard takes only idle cores. ``$FORECASTING_TORCH_THREADS`` overrides.
    """
    import torch

    if os.environ.get(THREADS_ENV, "").isdigit() and int(os.environ[THREADS_ENV]) > 0:
        return int(os.environ[THREADS_ENV])
    cores = os.cpu_count() or 1
    try:
        busy = int(round(os.getloadavg()[0]))
    except (OSError, AttributeError):  # not available on every platform
        busy = 0
    return max(1, min(torch.get_num_threads(), cores - busy))
