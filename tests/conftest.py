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


@pytest.fixture
def readonly_dir(tmp_path):
    """A folder that does not accept new files, even for root: a read-only tmpfs mounted on it.

    Tests run as root here, where ``chmod 0o500`` changes nothing (root writes anyway), so a real
    "cannot write" needs a read-only mount. Without the right to mount, a non-root user gets a
    ``chmod 0o500`` folder instead; root without it skips the test.
    """
    import shutil
    import stat
    import subprocess

    d = tmp_path / "readonly"
    d.mkdir()
    if shutil.which("mount") and subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(d)],
                                                capture_output=True).returncode == 0:
        try:
            yield d
        finally:
            subprocess.run(["umount", "-l", str(d)], capture_output=True)
        return
    if os.geteuid() == 0:
        pytest.skip("cannot mount a read-only tmpfs, and as root a chmod-ed folder is still writable")
    d.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        yield d
    finally:
        d.chmod(stat.S_IRWXU)
