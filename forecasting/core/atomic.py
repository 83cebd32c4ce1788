"""Atomic file writes: a temporary file in the same folder, then ``os.replace``.

Readers never see a half-written file, and an interrupted run (Ctrl-C) leaves the previous
file intact. One place for this so every writer (CLI, reports, sweeps, checkpoints, downloads)
behaves the same:

* :func:`atomic_write_text` / :func:`atomic_write_bytes` — the content is in memory;
* :func:`atomic_write_with` — a library writes the file itself (``fig.savefig(path)``,
  ``torch.save``, ``df.write_parquet``): it gets the temporary path;
* :func:`atomic_path` — the same as a ``with`` block, for writes spread over several statements;
* :class:`AtomicFile` — explicit ``commit()`` / ``abort()`` for a writer object that streams over
  many calls (the batch predictor's output);
* :func:`staged_dir` — a whole directory, moved in when complete (its name claimed at the start
  or its replacement locked: :mod:`forecasting.core.claims`).

The temporary file is hidden (``.<name>.<random>.tmp<suffix>``) and keeps the target's suffix,
so writers that pick the format from the file name (matplotlib) still do.
"""
from __future__ import annotations

import math
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar


T = TypeVar("T")


def chmod_default(path: str | os.PathLike) -> None:
    """Give a ``mkstemp`` file (mode 0600) the usual permissions of a new file (0666 minus umask)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


class AtomicFile:
    """A hidden temporary sibling of ``path`` that replaces ``path`` on :meth:`commit`.

    The temporary file is created (empty) at construction, in the target's folder so the final
    ``os.replace`` stays on one filesystem and is atomic. :meth:`abort` removes it; the target is
    untouched until :meth:`commit`. As a context manager it yields the temporary path and
    commits on normal exit, aborts on any exception (Ctrl-C included).

    Args:
        path: the final file; its folder is created if missing.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp reserves a unique name, so two writers of the same target never share a temp file.
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=f".tmp{self.path.suffix}", dir=self.path.parent)
        os.close(fd)
        self.tmp = Path(tmp)

    def commit(self) -> Path:
        """Move the finished temporary file onto the target (usual permissions); returns the target."""
        try:
            chmod_default(self.tmp)
            os.replace(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return self.path

    def abort(self) -> None:
        """Remove the temporary file; the target keeps its previous content (or stays absent)."""
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def atomic_path(path: str | os.PathLike) -> AtomicFile:
    """``with atomic_path(target) as tmp:`` write ``tmp``; it replaces ``target`` when the block succeeds."""
    return AtomicFile(path)


def atomic_write_with(path: str | os.PathLike, write: Callable[[Path], T]) -> Path:
    """Call ``write(tmp)`` to create a temporary sibling of ``path``, then rename it onto ``path``.

    For libraries that write the file themselves, e.g.
    ``atomic_write_with(png, lambda tmp: fig.savefig(tmp, dpi=110))``. If ``write`` raises, the
    temporary file is removed and ``path`` keeps its previous content.
    """
    with AtomicFile(path) as tmp:
        write(tmp)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    return atomic_write_with(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file in the same folder and ``os.replace``."""
    return atomic_write_with(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


@contextmanager
def staged_dir(final: str | Path, replace: bool = False) -> Iterator[Path]:
    """Build a directory under a hidden temporary sibling; move it to ``final`` on success.

    Without ``replace`` the name is *claimed* at the start (:func:`forecasting.core.claims.claim_dir`:
    ``final`` is created exclusively, holding only a ``.incomplete`` marker), so a second builder of
    the same name fails at once instead of swapping the first one out at the end; the directory is
    built in ``.<name>.partial`` and renamed onto the emptied placeholder, a rename that cannot
    replace anything else (:func:`~forecasting.core.claims.commit_claim`).

    With ``replace=True`` (an artifact re-saved in place, the demo's ``runs/demo``) a lock file
    ``.<name>.lock`` keeps two builders apart, and an existing ``final`` is swapped out only after
    the new one is complete: the old one is renamed aside, the new one renamed in, and only then is
    the old one deleted; if the second rename fails, the old one is put back. (POSIX has no portable
    atomic swap of two directories, so between the two renames — two system calls — ``final`` is
    briefly absent; it is never half-written.) Temporary names carry the owner's PID, so what a
    killed process leaves is recognised later (:func:`forecasting.core.claims.find_leftovers`).

    On any exception (including Ctrl-C) the temporary directory is removed and ``final`` — if it
    existed — is left exactly as it was.

    Raises:
        ForecastingError: ``final`` exists or is claimed (without ``replace``), or another process
            is replacing it.
    """
    from forecasting.core import claims

    final = Path(final)
    if not replace:
        claims.claim_dir(final)
        tmp = claims.partial_path(final)
        try:
            shutil.rmtree(tmp, ignore_errors=True)  # an orphan of an earlier build; the name is ours now
            tmp.mkdir()
            yield tmp
            claims.commit_claim(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            claims.release_claim(final)
            raise
        return
    owner = f"{claims.host_tag()}.{os.getpid()}"
    claims.acquire_lock(final)
    try:
        marker = claims.read_claim(final)
        if marker is not None and claims.claim_status(marker) == claims.RUNNING:
            raise claims.ClaimError(f"{final} is being built by another process; wait for it to finish", final, marker)
        tmp = final.parent / f".{final.name}.tmp-{owner}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        try:
            yield tmp
            old = None
            if final.exists():
                old = final.parent / f".{final.name}.old-{owner}-{uuid.uuid4().hex[:8]}"
                final.rename(old)
            try:
                tmp.rename(final)
            except BaseException:
                if old is not None:
                    old.rename(final)  # the swap failed: the previous directory goes back under its name
                raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        claims.release_lock(final)


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
