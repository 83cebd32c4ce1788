"""Shared pytest fixtures.

``shared_data_dir`` locates the read-only benchmark files in ``../shared/data`` next to the
repository (or ``$FORECASTING_DATA``) and skips the test, with the reason, when they are absent.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def _shared_data() -> Path | None:
    for candidate in (os.environ.get("FORECASTING_DATA"), SHARED_DATA):
        if candidate and (Path(candidate) / "ETTh1.csv").is_file():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """Directory with ETTh1.csv, ETTh2.csv, exchange_rate.csv, national_illness.csv."""
    path = _shared_data()
    if path is None:
        pytest.skip(f"benchmark data not found at {SHARED_DATA} (or $FORECASTING_DATA); see datasets/README.md")
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op torch thread for a whole test module, restored afterwards: the tests use small
    tensors, where extra threads only contend on a shared CPU. A module opts in with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")`` (module scope, so the module's own
    module-scoped fixtures, e.g. trained models, run with one thread too)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
