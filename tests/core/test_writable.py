"""``ensure_writable``: the check every writing command makes before any work (core.writable)."""
from __future__ import annotations

import errno

import pytest

from forecasting.core import writable
from forecasting.core.errors import ForecastingError
from forecasting.core.writable import PROBE_PREFIX, ensure_writable


def _leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(PROBE_PREFIX)]


def test_writable_paths_pass_and_leave_nothing(tmp_path):
    assert ensure_writable(tmp_path / "out.csv", "--output") == tmp_path / "out.csv"
    (tmp_path / "old.csv").write_text("previous\n")  # an existing file is fine: it is replaced later
    ensure_writable(tmp_path / "old.csv", "--output")
    ensure_writable(tmp_path, "--out", kind="dir")
    # missing folders on the way are fine (they can be created) and are not created by the check
    ensure_writable(tmp_path / "a" / "b" / "out.csv", "--output")
    ensure_writable(tmp_path / "c" / "d", "--out", kind="dir")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()
    assert _leftovers(tmp_path) == [] and (tmp_path / "old.csv").read_text() == "previous\n"


def test_wrong_kind_of_target(tmp_path):
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ForecastingError, match=r"--output .*out\.csv is a directory; name a file"):
        (tmp_path / "out.csv").mkdir()
        ensure_writable(tmp_path / "out.csv", "--output")
    with pytest.raises(ForecastingError, match=r"--out .*file\.txt is a file, not a folder"):
        ensure_writable(tmp_path / "file.txt", "--out", kind="dir")


@pytest.mark.parametrize("kind", ["file", "dir"])
def test_a_file_on_the_way_is_named(tmp_path, kind):
    """The way to make "cannot write" as root without a mount: the parent is a regular file."""
    (tmp_path / "file.txt").write_text("x")
    target = tmp_path / "file.txt" / "sub" / "out.csv"
    with pytest.raises(ForecastingError) as exc:
        ensure_writable(target, "--out", kind=kind)
    msg = str(exc.value)
    assert f"--out {target}" in msg and f"{tmp_path / 'file.txt'} is a file, not a folder" in msg and "\n" not in msg


def test_folder_that_refuses_files_read_only_mount(readonly_dir):
    """A real refusal (read-only tmpfs, or chmod 0o500 without root): os.access would not always tell."""
    with pytest.raises(ForecastingError, match=r"cannot write --output .*does not accept new files"):
        ensure_writable(readonly_dir / "fc.csv", "--output")
    with pytest.raises(ForecastingError, match=r"it would be created in .*readonly, which does not accept new files"):
        ensure_writable(readonly_dir / "runs" / "x", "--out", kind="dir")


def test_permission_denied_is_reported_with_the_reason(tmp_path, monkeypatch):
    """Monkeypatched: the probe file's creation fails as on a folder without write permission."""
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(writable.tempfile, "mkstemp", refuse)
    with pytest.raises(ForecastingError) as exc:
        ensure_writable(tmp_path / "m.json", "--out")
    assert str(exc.value) == (f"cannot write --out {tmp_path / 'm.json'}: {tmp_path} does not accept new files "
                              "(Permission denied); choose a writable location or fix its permissions")


def test_unusable_name(tmp_path):
    with pytest.raises(ForecastingError, match="cannot be used"):
        ensure_writable(tmp_path / ("x" * 5000) / "out.csv", "--output")
