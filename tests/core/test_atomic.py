"""The one atomic writer: files and directories replace their target only when complete."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from forecasting.core.atomic import AtomicFile, atomic_path, atomic_write_bytes, atomic_write_text, atomic_write_with, staged_dir
from forecasting.core.errors import ForecastingError


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_text_and_bytes_round_trip_with_usual_permissions(tmp_path):
    text = atomic_write_text(tmp_path / "sub" / "a.txt", "héllo\n")
    data = atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert text.read_text(encoding="utf-8") == "héllo\n" and data.read_bytes() == b"\x00\x01"
    # mkstemp makes 0600 files; a result file should get the mode any new file gets
    assert text.stat().st_mode & 0o777 == _default_mode()
    assert _hidden(tmp_path) == [] and _hidden(tmp_path / "sub") == []


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = atomic_write_text(tmp_path / "fig.png", "old")
    seen: list[Path] = []

    def half_then_fail(tmp: Path) -> None:
        seen.append(tmp)
        tmp.write_text("half-writ")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write_with(target, half_then_fail)
    assert target.read_text() == "old"
    assert _hidden(tmp_path) == [], "temporary file left behind"
    # the temporary file is a hidden sibling that keeps the suffix (matplotlib picks the format from it)
    assert seen[0].parent == tmp_path and seen[0].name.startswith(".fig.png.") and seen[0].suffix == ".png"


def test_atomic_path_block_and_explicit_commit_abort(tmp_path):
    with atomic_path(tmp_path / "c.csv") as tmp:
        tmp.write_text("a,b\n")
        assert not (tmp_path / "c.csv").exists()  # nothing visible before the block ends
    assert (tmp_path / "c.csv").read_text() == "a,b\n"
    f = AtomicFile(tmp_path / "c.csv")
    f.tmp.write_text("new\n")
    f.abort()
    assert (tmp_path / "c.csv").read_text() == "a,b\n" and _hidden(tmp_path) == []
    f = AtomicFile(tmp_path / "c.csv")
    f.tmp.write_text("new\n")
    assert f.commit() == tmp_path / "c.csv"
    assert (tmp_path / "c.csv").read_text() == "new\n"


def test_staged_dir_creates_and_refuses_to_overwrite_without_replace(tmp_path):
    with staged_dir(tmp_path / "run") as tmp:
        (tmp / "x").write_text("1")
    assert (tmp_path / "run" / "x").read_text() == "1"
    with pytest.raises(ForecastingError, match="already exists"):
        with staged_dir(tmp_path / "run"):
            pass
    assert _hidden(tmp_path) == []


def test_staged_dir_replace_keeps_the_old_directory_until_the_new_one_is_complete(tmp_path):
    final = tmp_path / "model"
    with staged_dir(final) as tmp:
        (tmp / "w").write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with staged_dir(final, replace=True) as tmp:
            (tmp / "w").write_text("new")
            assert (final / "w").read_text() == "old"  # still there while the new one is written
            raise KeyboardInterrupt
    assert (final / "w").read_text() == "old" and _hidden(tmp_path) == []
    with staged_dir(final, replace=True) as tmp:
        (tmp / "w").write_text("new")
    assert (final / "w").read_text() == "new" and _hidden(tmp_path) == [], "old copy not removed"


def test_staged_dir_puts_the_old_directory_back_when_the_swap_fails(tmp_path, monkeypatch):
    final = tmp_path / "model"
    with staged_dir(final) as tmp:
        (tmp / "w").write_text("old")
    real_rename = Path.rename

    def rename(self: Path, target):
        if self.name.startswith(".model.tmp-"):  # the new directory's move into place fails
            raise OSError("disk on fire")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", rename)
    with pytest.raises(OSError, match="disk on fire"):
        with staged_dir(final, replace=True) as tmp:
            (tmp / "w").write_text("new")
    monkeypatch.undo()
    assert (final / "w").read_text() == "old" and _hidden(tmp_path) == []
