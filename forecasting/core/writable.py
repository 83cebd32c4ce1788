"""Check that an output path can be written *before* any work is done.

A command that computes for minutes and then cannot save its result wastes the minutes and, worse,
used to end in an ``OSError`` traceback. Every command that writes calls :func:`ensure_writable`
on its output first, so a wrong ``--out`` fails at once with one line naming the path and the flag.

Writability is tested by creating (and removing) a probe file, not with ``os.access``: ``os.access``
answers from the permission bits, which is wrong for root (who may write anywhere except on a
read-only mount), for read-only mounts, ACLs and network file systems. Nothing else is created: a
missing folder is only checked to be creatable (its nearest existing ancestor is a writable folder),
so a command that then fails for another reason leaves no empty folder behind.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal

from forecasting.core.errors import ForecastingError

PROBE_PREFIX = ".forecasting-write-probe-"


def ensure_writable(path: str | os.PathLike, what: str, *, kind: Literal["file", "dir"] = "file") -> Path:
    """Raise a :class:`ForecastingError` unless ``path`` can be written; returns it as a :class:`Path`.

    Args:
        path: the file (``kind="file"``) or folder (``kind="dir"``) the command will write. A missing
            folder on the way is fine as long as it can be created.
        what: how the user gave the path, for the message: a flag (``--output``, ``--out``) or a
            positional name (``OUTPUT``).
        kind: ``file``: the target must not be a directory (an existing file is fine: it is replaced);
            ``dir``: the target must not be an existing file.

    Raises:
        ForecastingError: the target has the wrong kind, a component of the path is a file, or the
            folder the write would happen in does not accept a new file (permissions, read-only mount).
    """
    p = Path(path).expanduser()
    try:
        if kind == "file" and p.is_dir():
            raise ForecastingError(f"{what} {p} is a directory; name a file to write")
        if kind == "dir" and p.exists() and not p.is_dir():
            raise ForecastingError(f"{what} {p} is a file, not a folder; name a folder (created if missing)")
        # The folder the write (or the mkdir of the missing folders) happens in: the nearest existing ancestor.
        folder = p if kind == "dir" else p.parent
        while not folder.exists() and folder != folder.parent:
            folder = folder.parent
        if not folder.is_dir():
            raise ForecastingError(f"{what} {p}: {folder} is a file, not a folder; choose a path in a folder")
    except OSError as exc:  # ENAMETOOLONG and the like from stat()
        raise ForecastingError(f"{what} {p} cannot be used: {exc.strerror or exc}; choose another path") from exc
    try:
        fd, probe = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=folder)
    except OSError as exc:
        where = f"{folder}" if folder == (p if kind == "dir" else p.parent) else f"it would be created in {folder}, which"
        raise ForecastingError(f"cannot write {what} {p}: {where} does not accept new files ({exc.strerror or exc}); "
                               "choose a writable location or fix its permissions") from exc
    os.close(fd)
    os.unlink(probe)
    return p
