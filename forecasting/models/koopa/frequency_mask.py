"""The Koopa frequency mask: which rFFT bins count as "time-invariant".

Liu et al., "Koopa: Learning Non-stationary Time Series Dynamics with Koopman Predictors",
NeurIPS 2023, Sec. 3.2 (Fourier filter): the bins with the largest amplitude averaged over all
training lookback windows and channels are treated as the globally shared (time-invariant)
spectrum. This is a *data* function: the model receives its result and stores it as a buffer;
the model itself never reads data.
"""
from __future__ import annotations

import numpy as np
import torch

from forecasting.core.errors import ForecastingError


def n_mask_bins(lookback: int, alpha: float) -> int:
    """Number of masked bins: ``floor((L // 2 + 1) * alpha)``."""
    return int((lookback // 2 + 1) * alpha)


def mean_window_amplitude(train_values: np.ndarray, lookback: int, chunk_windows: int = 2048) -> np.ndarray:
    """rFFT amplitude ``|rfft(window)|`` averaged over every stride-1 lookback window and channel.

    Amplitude averaging is not linear in the data, so every window is transformed; the windows
    are gathered chunk by chunk (a strided view, ``chunk_windows`` windows per FFT) so memory
    stays at ``chunk_windows * L * C`` floats whatever the series length.

    Args:
        train_values: globally scaled training rows ``[T, C]``.
        lookback: window length ``L``.
        chunk_windows: windows per batched FFT.

    Returns:
        ``[L // 2 + 1]`` float64 mean amplitudes.
    """
    values = np.asarray(train_values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ForecastingError(f"train_values must be [T, C], got shape {values.shape}")
    n_windows = values.shape[0] - lookback + 1
    if n_windows < 1:
        raise ForecastingError(
            f"the training split has {values.shape[0]} rows, fewer than the lookback {lookback}; "
            "use a shorter lookback or more training data"
        )
    if not np.isfinite(values).all():
        raise ForecastingError("training values contain NaN/inf; clean the series before computing the Koopa mask")
    series = torch.from_numpy(values)
    view = series.unfold(0, lookback, 1)  # [n_windows, C, L], no copy
    total = torch.zeros(lookback // 2 + 1, dtype=torch.float64)
    for lo in range(0, n_windows, chunk_windows):
        amp = torch.fft.rfft(view[lo : lo + chunk_windows], dim=-1).abs()  # [n, C, bins]
        total += amp.sum(dim=(0, 1))
    return (total / (n_windows * values.shape[1])).numpy()


def compute_frequency_mask(train_values: np.ndarray, lookback: int, alpha: float = 0.2) -> torch.Tensor:
    """Indices of the top ``floor((L//2+1)*alpha)`` rFFT bins of the mean training amplitude.

    Args:
        train_values: globally scaled training rows ``[T, C]`` (e.g. ``PreparedData.train_values()``);
            never validation or test rows.
        lookback: lookback length ``L`` of the model that will use the mask.
        alpha: share of bins treated as time-invariant (paper default 0.2).

    Returns:
        ``LongTensor`` of bin indices, sorted ascending (possibly empty when ``alpha`` is tiny).
    """
    if not 0.0 <= alpha <= 1.0:
        raise ForecastingError(f"alpha must be in [0, 1], got {alpha}")
    amps = mean_window_amplitude(train_values, lookback)
    k = n_mask_bins(lookback, alpha)
    if k == 0:
        return torch.zeros(0, dtype=torch.long)
    # Stable descending order so ties resolve to the lower frequency, deterministically.
    top = np.argsort(-amps, kind="stable")[:k]
    return torch.as_tensor(np.sort(top), dtype=torch.long)
