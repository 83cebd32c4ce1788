"""Atomic file writes: a temporary file in the same folder, then ``os.replace``.

Readers never see a half-written file, and an interrupted run (Ctrl-C) leaves the previous
file intact. One place for this so every writer (CLI, reports, sweeps) behaves the same.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path


def chmod_default(path: str | os.PathLike) -> None:
    """Give a ``mkstemp`` file (mode 0600) the usual permissions of a new file (0666 minus umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        chmod_default(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
