"""Atomic file writes: a temporary file in the same folder, then ``os.replace``.

Readers never see a half-written file, and an interrupted run (Ctrl-C) leaves the previous
file intact. One place for this so every writer (CLI, reports, sweeps) behaves the same.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from forecasting.core.errors import ForecastingError


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


@contextmanager
def staged_dir(final: str | Path, replace: bool = False) -> Iterator[Path]:
    """Build a directory under a hidden temporary sibling; rename it to ``final`` on success.

    On any exception (including Ctrl-C) the temporary directory is removed and ``final`` — if it
    existed — is left exactly as it was. With ``replace=True`` an existing ``final`` is swapped
    out only after the new one is complete.
    """
    final = Path(final)
    if final.exists() and not replace:
        raise ForecastingError(f"{final} already exists; choose another --run-id or remove it")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        old = None
        if final.exists():
            old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            final.rename(old)
        tmp.rename(final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def json_safe(obj: Any, stringify_unknown: bool = False) -> Any:
    """JSON-safe copy: NaN/inf -> None, 0-d numpy/torch scalars -> Python, tuples -> lists.

    With ``stringify_unknown`` any other object becomes its ``str``; otherwise it is kept (and
    ``json.dumps`` will complain about it, which is what result files want).
    """
    if isinstance(obj, dict):
        return {str(k): json_safe(v, stringify_unknown) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v, stringify_unknown) for v in obj]
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if stringify_unknown and not (isinstance(obj, (str, int, float, bool)) or obj is None):
        return str(obj)
    return obj
