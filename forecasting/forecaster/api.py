"""The public forecasting API: fit, predict, save, load — Bayesian Koopa and its peers behind one class.

Example::

    from forecasting.data import load_series
    from forecasting.forecaster.api import Forecaster
    from forecasting.forecaster.config import ForecasterConfig
    from forecasting.core.config import load_config

    frame = load_series("vic_elec")
    config = load_config(ForecasterConfig, "configs/forecaster.yaml", ["inference.method=scorevi"])
    fc = Forecaster.fit(frame, config)
    pred = fc.predict(frame, n_samples=100, seed=0)   # the H steps after the end of the frame
    pred.to_frame()                                   # item_id, channel, timestamp, mean, median, q0.05 .. q0.95
    pred.to_sample_forecasts()                        # gluonts SampleForecast list
    fc.save("runs/vic/model");  fc2 = Forecaster.load("runs/vic/model", device="cpu")

Inference is chosen by ``config.inference.method`` (see :mod:`forecasting.forecaster.methods.runtimes`):
``scorevi`` (score-based VI, Kim 2026, arXiv 2602.05873; diagonal / low-rank / mixture family),
``advi``, ``mc_dropout``, ``conformal`` and ``deterministic``. The predictive distribution of the
Bayesian methods is the mixture over weight samples *plus* the learned observation noise.

MAP warm start (``inference.warm_start_epochs``, default 2): before variational inference the network
is trained for that many epochs on the likelihood plus a zero-centred Gaussian prior; the variational
mean starts at those weights. ``inference.prior_center: warm_start`` (what the default ``auto`` picks
when there is a warm start) then centres the prior at the warm start (empirical Bayes: the posterior
describes uncertainty *around* the MAP fit and keeps its accuracy); ``zero`` keeps the ordinary
weight-decay prior.
"""
from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch

from forecasting.core.artifacts import load_artifact, save_artifact
from forecasting.core.config import from_dict, to_dict
from forecasting.data.scaling import StandardScaler
from forecasting.data.series import SeriesFrame
from forecasting.data.windows import PreparedData, prepare
from forecasting.core.device import resolve_device
from forecasting.core.distributed import is_main_process, main_then_broadcast
from forecasting.forecaster.distributed_data import sync_prepared
from forecasting.core.errors import ForecastingError
from forecasting.forecaster.config import ForecasterConfig
from forecasting.forecaster.methods.runtimes import FitContext, Runtime, make_runtime
from forecasting.models.heads import Likelihood, build_likelihood
from forecasting.models.koopa.frequency_mask import compute_frequency_mask
from forecasting.models.koopa.module import Koopa, count_parameters
from forecasting.forecaster.prediction import Prediction
from forecasting.training import StepInfo, seed_everything

logger = logging.getLogger(__name__)

ARTIFACT_KIND = "forecaster"


class Forecaster:
    """A fitted probabilistic forecaster (use :meth:`fit` or :meth:`load` to get one)."""

    def __init__(self, config: ForecasterConfig, model: Koopa, likelihood: Likelihood, runtime: Runtime,
                 scaler: StandardScaler, columns: tuple[str, ...], freq: str | None, summary: dict[str, Any],
                 device: torch.device):
        self.config, self.model, self.likelihood, self.runtime = config, model, likelihood, runtime
        self.scaler, self.columns, self.freq, self.summary, self.device = scaler, tuple(columns), freq, summary, device

    # -- properties -----------------------------------------------------------------------------
    @property
    def method(self) -> str:
        return self.config.inference.method

    @property
    def lookback(self) -> int:
        return self.config.data.lookback

    @property
    def horizon(self) -> int:
        return self.config.data.horizon

    @property
    def n_channels(self) -> int:
        return len(self.columns)

    def __repr__(self) -> str:
        return (f"Forecaster(method={self.method}, L={self.lookback}, H={self.horizon}, columns={list(self.columns)}, "
                f"freq={self.freq}, device={self.device})")

    # -- fit ------------------------------------------------------------------------------------
    @classmethod
    def fit(cls, data: SeriesFrame | PreparedData, config: ForecasterConfig | None = None, *,
            run_dir: str | Path | None = None, progress: bool = False, resume: bool = False,
            on_epoch: Callable[[str, dict[str, Any]], None] | None = None,
            on_step: Callable[[str, StepInfo], None] | None = None) -> "Forecaster":
        """Fit on a series (split, scaled and windowed per ``config.data``) or on prepared windows.

        Args:
            data: a :class:`SeriesFrame` or a :class:`PreparedData` (its lookback/horizon must
                match ``config.data``).
            config: the run config (defaults: :class:`ForecasterConfig`).
            run_dir: where checkpoints and per-epoch metrics go (``None``: nothing written).
            progress: show progress bars.
            resume: continue an interrupted run from the checkpoints in ``run_dir`` (same config
                and seed -> the same result as an uninterrupted run).
            on_epoch: ``on_epoch(phase, record)`` after every epoch: ``phase`` is ``train`` (point
                methods), ``warm_start`` or ``posterior`` (variational methods); ``record`` holds
                ``epoch``, the ``train_*``/``val_*`` means (e.g. ``val_crps``), ``best`` and seconds.
                For progress displays and early pruning (an exception it raises stops the fit).
            on_step: ``on_step(phase, info)`` after every optimisation step, ``phase`` as for
                ``on_epoch`` and ``info`` a :class:`forecasting.training.StepInfo` (epoch, batch,
                global step, the step's metrics and the training task, e.g. the variational task
                whose posterior ``info.task.state.family`` can be read). For per-step diagnostics.

        Raises:
            ForecastingError: bad data/config, or a diverging run (names the epoch/step; the
                last good checkpoint in ``run_dir`` is kept).
        """
        config = config or ForecasterConfig()
        # Under torchrun: join the group; scaler and frequency mask are rank 0's (forecasting.core.distributed).
        prepared = sync_prepared(_prepare(data, config), config.training.dist_timeout_s)
        device = _device(config)
        t0 = time.perf_counter()
        seed_everything(config.training.seed)
        mask = main_then_broadcast(lambda: compute_frequency_mask(prepared.train_values(), config.data.lookback, config.model.alpha),
                                   "broadcasting the Koopa frequency mask")
        n_channels = prepared.scaled.shape[1]
        model = Koopa(config.koopa(), n_channels, mask).to(device)
        likelihood = _likelihood(config, n_channels).to(device)
        runtime = make_runtime(config, model, likelihood)
        ctx = FitContext(config, model, likelihood, prepared, device, Path(run_dir) if run_dir else None, progress, resume,
                         on_epoch, on_step)
        summary = runtime.fit(ctx)
        model.eval()
        summary = {
            "method": config.inference.method,
            "series": prepared.frame.name,
            "windows": {"train": len(prepared.train), "val": len(prepared.val), "test": len(prepared.test)},
            "network_parameters": count_parameters(model),
            "noise": likelihood.describe(),
            "fit_seconds": round(time.perf_counter() - t0, 3),
            "device": str(device),
            **summary,
        }
        logger.info("fitted %s in %.1fs", config.inference.method, summary["fit_seconds"])
        return cls(config, model, likelihood, runtime, prepared.scaler, prepared.frame.columns,
                   config.data.freq or prepared.frame.freq, summary, device)

    # -- predict --------------------------------------------------------------------------------
    def sample_scaled(self, x: torch.Tensor | np.ndarray, n_samples: int | None = None, seed: int | None = None) -> torch.Tensor:
        """Predictive samples ``[S, N, H, C]`` on the *scaled* data from scaled windows ``x [N, L, C]``.

        The building block of :meth:`predict` (and of benchmarks that score on the paper's scale).
        Same ``seed`` -> identical samples.
        """
        n = n_samples or self.config.predict.samples
        seed = self.config.predict.seed if seed is None else seed
        x = torch.as_tensor(x, dtype=torch.float32, device=self.device)
        self._check_window_shape(x)
        gen = torch.Generator(device=self.device).manual_seed(int(seed))
        with torch.no_grad():
            return self.runtime.sample(x, int(n), gen)

    def predict(self, data: SeriesFrame | Sequence[SeriesFrame] | np.ndarray | torch.Tensor, n_samples: int | None = None,
                seed: int | None = None, *, start: Any = None) -> Prediction:
        """Forecast the ``H`` steps after the end of each input, on the original scale.

        Args:
            data: a :class:`SeriesFrame` (its last ``L`` rows are the input; the forecast starts one
                step after its last timestamp), a list of frames (a panel; one window each), or raw
                original-scale windows ``[L, C]`` / ``[N, L, C]`` (longer inputs use their last
                ``L`` rows).
            n_samples: predictive samples (default ``config.predict.samples``).
            seed: sampling seed (default ``config.predict.seed``); same seed -> identical samples.
            start: for raw arrays, the timestamp of the first forecast step (one for all windows,
                or one per window) so that gluonts forecasts and the frame get a time axis.

        Raises:
            ForecastingError: input shorter than the lookback, NaN in the input window, channels
                other than at training, or a different frequency.
        """
        if isinstance(data, SeriesFrame):
            frames = [data]
        elif isinstance(data, (list, tuple)) and data and all(isinstance(f, SeriesFrame) for f in data):
            frames = list(data)
        else:
            frames = None
        if frames is not None:
            windows, starts, items = [], [], []
            for f in frames:
                w, s = self._window_from_frame(f)
                windows.append(w)
                starts.append(s)
                items.append(f.item_id or f.name)
            raw = np.stack(windows)
        else:
            raw = self._windows_from_array(data)
            starts = self._starts(start, raw.shape[0])
            items = [f"window{i}" for i in range(raw.shape[0])] if raw.shape[0] > 1 else ["series"]
        scaled = self.scaler.transform(raw)
        samples = self.sample_scaled(scaled, n_samples, seed)
        return self._prediction(samples, starts, items)

    def predict_split(self, data: SeriesFrame | PreparedData, split: str = "test", n_samples: int | None = None,
                      seed: int | None = None, stride: int = 1, max_windows: int | None = None) -> Prediction:
        """Forecast every window of a split (backtest), e.g. the test split of the training series.

        Args:
            data: the series (re-split with ``config.data``; the scaler of this forecaster is used)
                or prepared data.
            split: ``train``/``val``/``test``.
            stride: keep every ``stride``-th window of the split (a prepared split that is itself
                strided, e.g. the ProbTS protocol's stride-96 test windows, is honoured).
            max_windows: keep at most this many windows, evenly spaced.
        """
        if isinstance(data, SeriesFrame):
            frame = self._align_frame(data)
            prepared = prepare(frame, self.lookback, self.horizon, self.config.data.split)
        else:
            prepared = data
        ds = getattr(prepared, split)
        starts_rows = np.arange(len(ds))[::stride]
        if max_windows is not None and len(starts_rows) > max_windows:
            starts_rows = starts_rows[np.linspace(0, len(starts_rows) - 1, max_windows).round().astype(int)]
        frame = prepared.frame
        # Window i of the split starts at row start + i * (the split's own stride, e.g. 96 in ProbTS).
        offsets = starts_rows * getattr(ds, "stride", 1)
        raw = np.stack([frame.values[ds.start + o : ds.start + o + self.lookback] for o in offsets])
        if np.isnan(raw).any():
            raise ForecastingError(f"{frame.name}: the {split} split has NaN in its inputs; choose data.missing=interpolate or ffill")
        self._check_columns(frame.columns, frame.name)
        samples = self.sample_scaled(self.scaler.transform(raw), n_samples, seed)
        first = ds.start + self.lookback + offsets
        starts = [pd.Timestamp(frame.timestamps[r]) if r < len(frame.timestamps) else None for r in first]
        return self._prediction(samples, starts, [frame.item_id or frame.name] * len(starts_rows))

    # -- save / load ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write one self-describing artifact directory (see :mod:`forecasting.core.artifacts`); atomic.

        Under torchrun only rank 0 writes; the other ranks return ``path`` without writing.
        """
        if not is_main_process():
            return Path(path)
        names = [n for n, _ in self.model.named_parameters()] + [n for n, _ in self.model.named_buffers()]
        state = self.model.state_dict()
        model_tensors = {n: state[n] for n in names}  # tied weights once (safetensors forbids shared storage)
        tensors = {"model": model_tensors, "likelihood": self.likelihood.state_dict(), **self.runtime.tensors()}
        metadata = {
            "config": to_dict(self.config),
            "columns": list(self.columns),
            "freq": self.freq,
            "n_channels": self.n_channels,
            "scaler": self.scaler.to_dict(),
            "frequency_mask": [int(i) for i in self.model.freq_mask.cpu()],
            "likelihood": self.likelihood.describe(),
            "method": self.method,
            "runtime": self.runtime.metadata(),
            "training_summary": _jsonable(self.summary),
        }
        return save_artifact(path, ARTIFACT_KIND, metadata, tensors, config=to_dict(self.config))

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto") -> "Forecaster":
        """Load an artifact written by :meth:`save` onto ``device`` (any device; no unpickling).

        Raises:
            ForecastingError: missing/truncated/tampered files, a newer format, or inconsistent content.
        """
        dev = resolve_device(device)
        art = load_artifact(path, ARTIFACT_KIND, dev)
        meta = art.metadata
        try:
            config = from_dict(ForecasterConfig, meta["config"])
            columns = tuple(meta["columns"])
            scaler = StandardScaler.from_dict(meta["scaler"])
            n_channels = int(meta["n_channels"])
            model_tensors = art.tensors["model"]
            mask = model_tensors["freq_mask"]
        except KeyError as exc:
            raise ForecastingError(f"artifact {path} lacks {exc}; re-save the model") from exc
        model = Koopa(config.koopa(), n_channels, mask.cpu())
        _load_module(model, model_tensors, "model", path)
        if "log_scale" in art.tensors.get("likelihood", {}) and art.tensors["likelihood"]["log_scale"].ndim == 1:
            # Artifacts written before the per-step noise scale existed: their head is per channel.
            config = dataclasses.replace(config, likelihood=dataclasses.replace(config.likelihood, scale_by="channel"))
        likelihood = _likelihood(config, n_channels)
        _load_module(likelihood, art.tensors.get("likelihood", {}), "likelihood", path)
        model.to(dev).eval()
        likelihood.to(dev)
        runtime = make_runtime(config, model, likelihood)
        runtime.restore(art.tensors, meta.get("runtime", {}))
        if hasattr(runtime, "family") and runtime.family is not None:
            runtime.family = runtime.family.to(dev)
        if getattr(runtime, "calibration", None) is not None:
            cal = runtime.calibration
            cal.table, cal.levels = cal.table.to(dev), cal.levels.to(dev)
        summary = dict(meta.get("training_summary", {}))
        summary["loaded_from"] = str(path)
        return cls(config, model, likelihood, runtime, scaler, columns, meta.get("freq"), summary, dev)

    # -- helpers --------------------------------------------------------------------------------
    def _prediction(self, samples: torch.Tensor, starts: list, items: list[str]) -> Prediction:
        original = self.scaler.inverse(samples.double().cpu().numpy()).astype(np.float32)
        return Prediction(samples=original, columns=self.columns, freq=self.freq, starts=starts, item_ids=items,
                          quantile_levels=tuple(self.config.predict.quantiles), method=self.method,
                          scaler_mean=self.scaler.mean, scaler_std=self.scaler.std)

    def _check_window_shape(self, x: torch.Tensor) -> None:
        if x.ndim != 3 or x.shape[1] != self.lookback or x.shape[2] != self.n_channels:
            raise ForecastingError(
                f"input windows must be [N, {self.lookback}, {self.n_channels}] (lookback x channels {list(self.columns)}), "
                f"got {tuple(x.shape)}"
            )
        if not torch.isfinite(x).all():
            raise ForecastingError("input windows contain NaN/inf; fill missing values (data.missing=interpolate or ffill) first")

    def _check_columns(self, columns: Sequence[str], name: str) -> None:
        if tuple(columns) != self.columns:
            missing = [c for c in self.columns if c not in columns]
            extra = [c for c in columns if c not in self.columns]
            raise ForecastingError(
                f"{name}: channels {list(columns)} differ from the training channels {list(self.columns)}"
                + (f" (missing {missing})" if missing else "") + (f" (unexpected {extra})" if extra else "")
                + "; pass a series with the training columns"
            )

    def _align_frame(self, frame: SeriesFrame) -> SeriesFrame:
        """Select/reorder the training columns; a missing one is an error."""
        missing = [c for c in self.columns if c not in frame.columns]
        if missing:
            self._check_columns(frame.columns, frame.name)
        if tuple(frame.columns) != self.columns:
            logger.info("%s: using columns %s of %s", frame.name, list(self.columns), list(frame.columns))
            frame = frame.select(self.columns)
        if self.freq and frame.freq and _norm_freq(frame.freq) != _norm_freq(self.freq):
            raise ForecastingError(
                f"{frame.name}: frequency {frame.freq!r} differs from the training frequency {self.freq!r}; "
                "resample the series or fit a forecaster at this frequency"
            )
        return frame

    def _window_from_frame(self, frame: SeriesFrame) -> tuple[np.ndarray, pd.Timestamp | None]:
        frame = self._align_frame(frame)
        if frame.length < self.lookback:
            raise ForecastingError(
                f"{frame.name}: the series has {frame.length} rows but the forecaster needs the last {self.lookback} "
                f"(its lookback); pass a longer history"
            )
        window = np.asarray(frame.values[-self.lookback :], dtype=np.float64)
        if np.isnan(window).any():
            row = int(np.argwhere(np.isnan(window))[0][0]) + frame.length - self.lookback
            raise ForecastingError(
                f"{frame.name}: NaN in the input window (row {row}, timestamp {pd.Timestamp(frame.timestamps[row])}); "
                "fill missing values first (data.missing=interpolate or ffill when reading)"
            )
        freq = self.freq or frame.freq
        start = None
        if freq and len(frame.timestamps):
            start = pd.Timestamp(frame.timestamps[-1]) + pd.tseries.frequencies.to_offset(freq)
        return window, start

    def _windows_from_array(self, data: Any) -> np.ndarray:
        arr = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data, dtype=np.float64)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise ForecastingError(f"input must be a SeriesFrame or an array [L, C] / [N, L, C], got shape {arr.shape}")
        if arr.shape[2] != self.n_channels:
            raise ForecastingError(
                f"input has {arr.shape[2]} channels but the forecaster was trained on {self.n_channels} {list(self.columns)}"
            )
        if arr.shape[1] < self.lookback:
            raise ForecastingError(
                f"input has {arr.shape[1]} time steps, fewer than the lookback {self.lookback}; pass a longer history"
            )
        arr = arr[:, -self.lookback :].astype(np.float64)
        if np.isnan(arr).any():
            raise ForecastingError("input contains NaN; fill missing values first (interpolate or ffill)")
        return arr

    def _starts(self, start: Any, n: int) -> list:
        if start is None:
            return [None] * n
        if isinstance(start, (list, tuple, np.ndarray, pd.Index)):
            if len(start) != n:
                raise ForecastingError(f"start has {len(start)} entries for {n} windows")
            return [pd.Timestamp(s) for s in start]
        return [pd.Timestamp(start)] * n


def _prepare(data: SeriesFrame | PreparedData, config: ForecasterConfig) -> PreparedData:
    cfg = config.data
    if isinstance(data, PreparedData):
        if (data.lookback, data.horizon) != (cfg.lookback, cfg.horizon):
            raise ForecastingError(
                f"prepared data has lookback/horizon {data.lookback}/{data.horizon} but the config says "
                f"{cfg.lookback}/{cfg.horizon}; prepare with the config's values"
            )
        return data
    if not isinstance(data, SeriesFrame):
        raise ForecastingError(f"fit() takes a SeriesFrame or PreparedData, got {type(data).__name__}")
    frame = data
    if cfg.columns:
        missing = [c for c in cfg.columns if c not in frame.columns]
        if missing:
            raise ForecastingError(f"{frame.name}: data.columns {missing} not in the series' columns {list(frame.columns)}")
        frame = frame.select(cfg.columns)
    if cfg.freq:
        frame = dataclasses.replace(frame, freq=cfg.freq)
    if np.isnan(frame.values).any():
        if cfg.missing == "error":
            row = int(np.argwhere(np.isnan(frame.values))[0][0])
            raise ForecastingError(
                f"{frame.name}: missing value at row {row}; set data.missing=interpolate or ffill, or clean the series"
            )
        from forecasting.data.checks import fill_missing

        frame = dataclasses.replace(frame, values=fill_missing(frame.values, cfg.missing))
    return prepare(frame, cfg.lookback, cfg.horizon, cfg.split)


def _likelihood(config: ForecasterConfig, n_channels: int) -> Likelihood:
    lik = config.likelihood
    horizon = config.data.horizon if lik.scale_by == "step" else None
    return build_likelihood(lik.kind, n_channels, lik.df, lik.init_scale, horizon)


def _device(config: ForecasterConfig) -> torch.device:
    name = config.device
    if name == "auto" and config.training.device != "auto":
        name = config.training.device
    return resolve_device(name)


def _norm_freq(freq: str) -> str:
    try:
        return pd.tseries.frequencies.to_offset(freq).freqstr
    except ValueError:
        return freq


def _load_module(module: torch.nn.Module, tensors: dict[str, torch.Tensor], what: str, path: Any) -> None:
    expected = {n for n, _ in module.named_parameters()} | {n for n, _ in module.named_buffers()}
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise ForecastingError(
            f"artifact {path}: {what} weights do not match the model built from its config "
            f"(missing {missing[:3]}, unexpected {extra[:3]}); re-save the model"
        )
    try:
        module.load_state_dict(tensors, strict=False)
    except RuntimeError as exc:
        raise ForecastingError(f"artifact {path}: {what} weights do not fit the model ({str(exc).splitlines()[0]}); re-save the model") from exc


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)
