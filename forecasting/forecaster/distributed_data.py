"""Data-derived state computed once on rank 0 and shared: the scaler (and, via
:func:`forecasting.core.distributed.main_then_broadcast`, Koopa's frequency mask).

Every rank normally reads the same series, so every rank would compute the same scaler; taking
rank 0's makes that a guarantee (and lets ranks read different shards of the data while still
scaling them identically).
"""
from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch

from forecasting.data.scaling import StandardScaler
from forecasting.data.windows import PreparedData, WindowDataset
from forecasting.core.distributed import broadcast_object, init_distributed, is_distributed, rank

log = logging.getLogger(__name__)


def sync_prepared(prepared: PreparedData, timeout: float | None = None) -> PreparedData:
    """``prepared`` scaled with rank 0's scaler (unchanged when single-process or already equal).

    Joins the torchrun process group if the environment describes one (see
    :func:`forecasting.core.distributed.init_distributed`).
    """
    init_distributed(timeout=timeout)
    if not is_distributed():
        return prepared
    ref = broadcast_object(prepared.scaler.to_dict(), 0, "broadcasting the scaler")
    scaler = StandardScaler.from_dict(ref)
    if np.array_equal(np.asarray(scaler.mean), np.asarray(prepared.scaler.mean)) and \
            np.array_equal(np.asarray(scaler.std), np.asarray(prepared.scaler.std)):
        return prepared
    log.info("rank %d: data statistics differ from rank 0's; scaling with rank 0's scaler", rank())
    return rescale(prepared, scaler)


def rescale(prepared: PreparedData, scaler: StandardScaler) -> PreparedData:
    """The same split and windows with the series scaled by ``scaler``."""
    frame, borders = prepared.frame, prepared.borders
    scaled = torch.as_tensor(scaler.transform(frame.values[: borders.test_end]), dtype=prepared.scaled.dtype)

    def windows(ds: WindowDataset) -> WindowDataset:
        return WindowDataset(scaled, ds.lookback, ds.horizon, ds.start, ds.end, ds.stride)

    return dataclasses.replace(prepared, scaler=scaler, scaled=scaled, train=windows(prepared.train),
                               val=windows(prepared.val), test=windows(prepared.test))


__all__ = ["rescale", "sync_prepared"]
