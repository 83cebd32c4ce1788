"""gluonts DeepAR (torch) as a probabilistic peer on our windows.

DeepAR (Salinas et al. 2020, "DeepAR: Probabilistic forecasting with autoregressive
recurrent networks") is gluonts' ``DeepARModel`` — an LSTM over lagged, mean-scaled values
with a Student-t output, sampled autoregressively. We use gluonts' network and its
lightning training glue (``DeepARLightningModule``: Adam, ``ReduceLROnPlateau`` on the
training loss, gradient clipping at 10, exactly as ``DeepAREstimator`` sets them up) and
feed both with our own tensors, so that DeepAR sees the **same scaled data and windows** as
our models:

* Training: each channel of the scaled training rows ``[T, C]`` is a univariate item (no
  item id feature, as a gluonts ``ListDataset`` of the channels would have). Each batch draws
  ``batch_size`` random (channel, start) pairs, i.e. gluonts' uniform instance sampling over
  fully observed windows; an epoch is ``num_batches_per_epoch`` batches.
* Prediction: ``x [N, L, C]`` becomes ``N·C`` univariate histories, batched straight into
  ``DeepARModel.forward`` (no gluonts ``Predictor``/``ListDataset`` round trip), which returns
  ``num_parallel_samples`` paths per history.
* History length: gluonts' network reads ``context_length + max(lags) − 1`` past values (lag
  features need rows before the context). A window has exactly ``L`` rows, so we keep the
  gluonts lags for the frequency that are at most ``L // 3`` (hourly: 1–7, 23–25; daily:
  1–8, 13–15, 20–22, 27–31 at L = 96), plus the lags around the season when it fits in half
  the lookback (:func:`default_lags`), and set ``context_length = L − max(lag) + 1``: the model
  then sees exactly the lookback, no padding, no more history than our models get.
* Cost (ETTh2, L = 96, H = 48, one torch thread, loaded 2-core machine): training 10 epochs
  × 50 batches × 64 took 70 s; sampling ran at ≈ 5500 series·samples per second (200 windows
  × 7 channels × 100 samples in 26 s).
* Features: windows carry no timestamps, so no calendar features are used (seasonality
  enters through the lags); gluonts' age feature is fed as a constant zero, because a
  window's absolute position in the series is not a property of the forecasting problem.
"""
from __future__ import annotations

import logging
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch

from forecasting.core.device import resolve_device

log = logging.getLogger(__name__)


def default_lags(freq: str | None, lookback: int, season: int | None = None) -> list[int]:
    """gluonts' lags for ``freq`` restricted to ``≤ lookback // 3`` (always includes lag 1),
    plus the lags around ``season`` when ``season ≤ lookback // 2`` (so that e.g. half-hourly data
    with L = 96 keeps its daily lags 47–49 at the price of a 48-step context).

    Falls back to 1..7 plus ``season`` for a frequency gluonts does not know.
    """
    limit = max(1, lookback // 3)
    lags: list[int] = []
    if freq:
        try:
            from gluonts.time_feature import get_lags_for_frequency

            lags = list(get_lags_for_frequency(freq_str=freq))
        except Exception as exc:  # unknown pandas offset alias
            log.warning("gluonts has no lags for freq %r (%s); using 1..7", freq, exc)
    if not lags:
        lags = list(range(1, 8)) + ([season] if season else [])
    kept = {lag for lag in lags if 1 <= lag <= limit} | {1}
    if season is not None and 2 <= season <= lookback // 2:
        kept |= {lag for lag in lags if season - 1 <= lag <= season + 1} or {season}
    return sorted(kept)


@contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _tuple_index_slices() -> None:
    """Make gluonts' ``slice_along_dim`` index with a tuple, as torch requires.

    gluonts 0.17 indexes with a *list* of slices, which torch deprecates (a warning on every DeepAR
    step) and will read as a tensor index in a future release — DeepAR would then break. The
    replacement returns exactly what the original does today. Its two callers live in the same module
    and look it up there at call time, so rebinding the module attribute is enough.
    """
    import gluonts.torch.util as gt_util

    if getattr(gt_util.slice_along_dim, "_tuple_index", False):
        return

    def slice_along_dim(a: torch.Tensor, dim: int, slice_: slice) -> torch.Tensor:
        idx = [slice(None)] * a.dim()
        idx[dim] = slice_
        return a[tuple(idx)]

    slice_along_dim._tuple_index = True  # type: ignore[attr-defined]
    gt_util.slice_along_dim = slice_along_dim


class _WindowBatches:
    """``num_batches`` random training batches per iteration, as dicts of DeepAR inputs."""

    def __init__(self, series: torch.Tensor, past_length: int, horizon: int, batch_size: int,
                 num_batches: int, generator: torch.Generator):
        self.series, self.past_length, self.horizon = series, past_length, horizon
        self.batch_size, self.num_batches, self.generator = batch_size, num_batches, generator
        self.n_starts = series.shape[0] - past_length - horizon + 1
        if self.n_starts < 1:
            raise ValueError(f"training series of {series.shape[0]} rows is shorter than "
                             f"past_length {past_length} + horizon {horizon}")

    def __len__(self) -> int:
        return self.num_batches

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        channels = self.series.shape[1]
        span = self.past_length + self.horizon
        offsets = torch.arange(span)
        for _ in range(self.num_batches):
            c = torch.randint(channels, (self.batch_size,), generator=self.generator)
            s = torch.randint(self.n_starts, (self.batch_size,), generator=self.generator)
            w = self.series[s[:, None] + offsets, c[:, None]]  # [B, span]
            yield _inputs(w[:, : self.past_length], self.horizon) | {
                "future_target": w[:, self.past_length:],
                "future_observed_values": torch.ones(self.batch_size, self.horizon),
            }


def _inputs(past: torch.Tensor, horizon: int) -> dict[str, torch.Tensor]:
    """DeepAR prediction inputs for histories ``past [B, past_length]`` (constant features)."""
    b, p = past.shape
    return {
        "feat_static_cat": torch.zeros(b, 1, dtype=torch.long),
        "feat_static_real": torch.zeros(b, 1),
        "past_time_feat": torch.zeros(b, p, 1),
        "past_target": past,
        "past_observed_values": torch.ones(b, p),
        "future_time_feat": torch.zeros(b, horizon, 1),
    }


@dataclass
class DeepARPeer:
    """gluonts DeepAR trained on our scaled training rows and sampled on our windows.

    Attributes:
        max_epochs, num_batches_per_epoch, batch_size: training budget (gluonts defaults are
            100 epochs × 50 batches × 32).
        hidden_size, num_layers, dropout_rate, lr, weight_decay, patience: gluonts DeepAR
            hyper-parameters (its defaults).
        lags_seq: lags (1-based); default :func:`default_lags`.
        predict_batch_size: histories per forward call (each expands to ``n_samples`` paths).
        device: ``"cpu"``, ``"cuda"`` or ``"auto"``.
        num_threads: torch CPU threads during ``fit``/``predict_samples`` (restored after);
            None leaves the process setting. On a loaded 2-core machine one thread was 10x
            faster than two (0.09 s vs 0.93 s per training step) — OpenMP threads spin.
        train_seconds, predict_seconds: wall time of the last ``fit`` / ``predict_samples``.
    """

    max_epochs: int = 20
    num_batches_per_epoch: int = 50
    batch_size: int = 64
    hidden_size: int = 40
    num_layers: int = 2
    dropout_rate: float = 0.1
    lr: float = 1e-3
    weight_decay: float = 1e-8
    patience: int = 10
    lags_seq: list[int] | None = None
    predict_batch_size: int = 128
    device: str = "cpu"
    num_threads: int | None = None
    seed: int = 0
    train_seconds: float = 0.0
    predict_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    module: Any = field(default=None, repr=False)

    def fit(self, train_values: np.ndarray, lookback: int, horizon: int, freq: str | None = None,
            season: int | None = None, seed: int = 0) -> "DeepARPeer":
        """Train DeepAR on the scaled training rows ``train_values [T, C]``.

        Args:
            train_values: scaled training rows, channels last.
            lookback: window length ``L`` the model will be given at prediction time.
            horizon: forecast length ``H``.
            freq: pandas frequency alias of the data (selects gluonts' lags), e.g. ``"h"``.
            season: seasonal period, used only when gluonts knows no lags for ``freq``.
            seed: seeds initialisation, batch sampling and dropout.
        """
        import lightning.pytorch as pl
        from gluonts.torch.model.deepar.lightning_module import DeepARLightningModule

        _tuple_index_slices()
        t0 = time.perf_counter()
        torch.manual_seed(seed)
        lags = list(self.lags_seq) if self.lags_seq else default_lags(freq, lookback, season)
        context = lookback - max(lags) + 1
        if context < 2:
            raise ValueError(f"lookback {lookback} too short for lags up to {max(lags)}")
        self.module = DeepARLightningModule(
            lr=self.lr, weight_decay=self.weight_decay, patience=self.patience,
            model_kwargs={
                "freq": freq or "h", "context_length": context, "prediction_length": horizon,
                "num_feat_dynamic_real": 1, "num_feat_static_real": 1, "num_feat_static_cat": 1,
                "cardinality": [1], "num_layers": self.num_layers, "hidden_size": self.hidden_size,
                "dropout_rate": self.dropout_rate, "lags_seq": lags, "scaling": True,
            },
        )
        past_length = self.module.model._past_length
        series = torch.as_tensor(np.asarray(train_values), dtype=torch.float32)
        batches = _WindowBatches(series, past_length, horizon, self.batch_size, self.num_batches_per_epoch,
                                 torch.Generator().manual_seed(seed))
        device = resolve_device(self.device)
        with tempfile.TemporaryDirectory() as tmp, _threads(self.num_threads):
            trainer = pl.Trainer(
                max_epochs=self.max_epochs, accelerator="gpu" if device.type == "cuda" else "cpu", devices=1,
                gradient_clip_val=10.0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                enable_model_summary=False, default_root_dir=tmp, deterministic=False,
            )
            trainer.fit(self.module, train_dataloaders=batches)
        self.module.eval()
        self.lookback, self.horizon, self.seed = lookback, horizon, seed
        self.train_seconds = time.perf_counter() - t0
        loss = trainer.callback_metrics.get("train_loss")
        self.info = {"lags_seq": lags, "context_length": context, "past_length": past_length,
                     "epochs": self.max_epochs, "num_batches_per_epoch": self.num_batches_per_epoch,
                     "batch_size": self.batch_size, "final_train_loss": None if loss is None else float(loss)}
        log.info("DeepAR trained in %.1fs: %s", self.train_seconds, self.info)
        return self

    @torch.no_grad()
    def predict_samples(self, x: Any, n_samples: int = 100, seed: int | None = None) -> np.ndarray:
        """Sample paths ``[S, N, H, C]`` (float32) for lookbacks ``x [N, L, C]`` (scaled).

        ``seed`` (default: the ``fit`` seed) makes the draws reproducible without touching the
        caller's global torch RNG state.
        """
        if self.module is None:
            raise RuntimeError("call fit() before predict_samples()")
        x = torch.as_tensor(x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x), dtype=torch.float32)
        if x.ndim != 3 or x.shape[1] < self.module.model._past_length:
            raise ValueError(f"x must be [N, L>={self.module.model._past_length}, C], got {tuple(x.shape)}")
        t0 = time.perf_counter()
        model = self.module.model
        device = resolve_device(self.device)
        model.to(device)  # lightning hands the module back on the CPU after fit
        n, _, c = x.shape
        hist = x[:, -model._past_length:, :].permute(0, 2, 1).reshape(n * c, -1)  # item = (window, channel)
        out = torch.empty(n * c, n_samples, self.horizon)
        devices = [device] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), _threads(self.num_threads):
            torch.manual_seed(self.seed if seed is None else seed)
            for lo in range(0, n * c, self.predict_batch_size):
                batch = _inputs(hist[lo:lo + self.predict_batch_size], self.horizon)
                inp = {k: v.to(device) for k, v in batch.items()}
                out[lo:lo + self.predict_batch_size] = model(**inp, num_parallel_samples=n_samples).cpu()
        samples = out.reshape(n, c, n_samples, self.horizon).permute(2, 0, 3, 1).contiguous()
        self.predict_seconds = time.perf_counter() - t0
        return samples.numpy()
