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
