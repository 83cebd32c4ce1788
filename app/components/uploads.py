"""Where the dashboard keeps uploaded files, and for how long (no Streamlit here).

An upload must be on disk because the data layer reads files (and recognises benchmark files by
their name). Those files are the user's data, so they are private and short-lived:

* one folder per server process and browser session, ``<root>/<pid>-<session id>/`` (mode 0700),
  files in it mode 0600; the root itself is 0700 and per user;
* the folder is removed when the session ends (:class:`SessionFolder`'s finalizer runs when
  Streamlit drops the session's state), by :func:`sweep` on every page load for sessions the
  server no longer has (a fallback: Streamlit has no documented end-of-session hook), and by
  :func:`sweep` at server start for folders of dead servers or older than :data:`STALE_HOURS`;
* the page names a file by the name it was uploaded under, never by its path here
  (:func:`redact`).

Removing a folder under a live session is harmless: the page writes the upload again from
Streamlit's in-memory copy on every rerun (:func:`save`).
"""
from __future__ import annotations

import atexit
import math
import os
import re
import shutil
import stat
import tempfile
import time
import weakref
from pathlib import Path
from typing import Callable

ROOT_ENV = "FORECASTING_DASHBOARD_UPLOADS"  # tests (and admins) point the uploads elsewhere
STALE_HOURS = 12.0  # folders this old are removed at start even if their server still runs
LEGACY_ROOT = "forecasting-dashboard-uploads"  # earlier versions kept every upload here, world-readable, forever
_FOLDER = re.compile(r"^(\d+)-([A-Za-z0-9_-]+)$")
_fallback_root: Path | None = None


def upload_root() -> Path:
    """The per-user folder holding every session's uploads (created 0700).

    ``$FORECASTING_DASHBOARD_UPLOADS`` if set, else ``<tmp>/forecasting-dashboard-uploads-<uid>``.
    A folder of that name that is not ours (another user, a symlink) is not trusted — someone
    could read the uploads — and a fresh private temporary folder is used instead.
    """
    global _fallback_root
    env = os.environ.get(ROOT_ENV)
    uid = os.getuid() if hasattr(os, "getuid") else 0
    root = Path(env) if env else Path(tempfile.gettempdir()) / f"forecasting-dashboard-uploads-{uid}"
    if _private_dir(root):
        return root
    if _fallback_root is None or not _private_dir(_fallback_root):
        _fallback_root = Path(tempfile.mkdtemp(prefix="forecasting-dashboard-uploads-"))  # mkdtemp: 0700, ours
        atexit.register(shutil.rmtree, _fallback_root, True)  # a random name no later start would find
    return _fallback_root


def _private_dir(path: Path) -> bool:
    """Create ``path`` (0700) or check an existing one is a real folder owned by us; make it 0700."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = path.lstat()
    except OSError:
        return False
    if not stat.S_ISDIR(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()):
        return False
    if stat.S_IMODE(st.st_mode) != 0o700:
        path.chmod(0o700)
    return True


def session_folder(root: Path, session_id: str) -> Path:
    """``root/<pid>-<session id>/``, created with mode 0700 (the pid tells a later server whose it was)."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", session_id) or "session"
    folder = root / f"{os.getpid()}-{safe}"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    folder.chmod(0o700)  # mkdir's mode is masked by the umask
    return folder


def save(folder: Path, name: str, content: bytes) -> Path:
    """Write ``content`` into ``folder`` under (a sanitised) ``name``, private (0600); earlier uploads of
    this session are dropped, so a session holds one file at a time."""
    from app.components.data_source import save_upload

    path = save_upload(name, content, folder)
    path.chmod(0o600)
    path.parent.chmod(0o700)
    for other in folder.iterdir():
        if other != path.parent:
            _remove(other)
    return path


class SessionFolder:
    """Removes a session's upload folder when this object is garbage-collected.

    The dashboard keeps one in ``st.session_state``: when Streamlit shuts a session down and drops
    its state (or the user clears it), the folder goes too. ``weakref.finalize`` also runs at
    interpreter exit, so a stopped server leaves nothing behind.
    """

    def __init__(self, folder: Path):
        self.folder = folder
        self._finalizer = weakref.finalize(self, _remove, folder)

    def remove(self) -> None:
        """Remove the folder now (idempotent)."""
        self._finalizer()


def sweep(root: Path, is_active: Callable[[str], bool] | None = None, *, max_age_h: float = STALE_HOURS,
          now: float | None = None, pid_alive: Callable[[int], bool] | None = None) -> list[Path]:
    """Remove upload folders no session needs any more; return what was removed.

    A folder of this server process goes when ``is_active(session_id)`` says its session has
    ended (``is_active=None``: unknown, kept). A folder of another process goes when that process
    is gone or the folder is older than ``max_age_h`` hours; so does anything else in ``root``
    (e.g. the digest folders of earlier dashboard versions) past that age.
    """
    if not root.is_dir():
        return []
    now = time.time() if now is None else now
    alive = pid_alive or _pid_alive
    removed = []
    for entry in root.iterdir():
        try:
            old = now - entry.lstat().st_mtime > max_age_h * 3600.0
        except OSError:
            continue
        m = _FOLDER.match(entry.name)
        if m is None:
            gone = old
        elif int(m.group(1)) == os.getpid():
            gone = is_active is not None and not is_active(m.group(2))
        else:
            gone = old or not alive(int(m.group(1)))
        if gone:
            _remove(entry)
            removed.append(entry)
    return removed


def sweep_all(is_active: Callable[[str], bool] | None = None) -> list[Path]:
    """:func:`sweep` the upload root, and the old shared folder of earlier versions when it is ours
    (its entries go once older than :data:`STALE_HOURS`)."""
    removed = sweep(upload_root(), is_active)
    legacy = Path(tempfile.gettempdir()) / LEGACY_ROOT
    try:
        ours = legacy.is_dir() and not legacy.is_symlink() and (not hasattr(os, "getuid") or legacy.stat().st_uid == os.getuid())
    except OSError:
        ours = False
    if ours and os.environ.get(ROOT_ENV) is None:
        removed += sweep(legacy, None)
        if not any(legacy.iterdir()):
            legacy.rmdir()
    return removed


def redact(text: str, path: str | Path | None, name: str, root: str | Path | None = None) -> str:
    """``text`` with the upload's stored path (and any other path under ``root``) replaced by ``name``,
    the file's name as uploaded — the user never sees where the server keeps it."""
    if path is not None:
        text = text.replace(str(path), name)
    if root is not None:
        text = re.sub(re.escape(str(root)) + r"[^\s:;,'\"]*", name, text)
    return text


def too_large_message(name: str, size_bytes: int, limit_mb: int) -> str | None:
    """Why ``name`` cannot be used when it is over ``limit_mb`` (Streamlit's MB: 2**20 bytes), else ``None``."""
    size_mb = size_bytes / 2**20
    if size_mb <= limit_mb:
        return None
    shown = f"{size_mb:,.0f}" if round(size_mb) > limit_mb else f"{size_mb:,.2f}"  # never "200 MB; the limit is 200 MB"
    step = 100 if size_mb > 100 else 10  # a round number the file fits under
    suggest = int(math.ceil(size_mb / step) * step)
    suggest = suggest if suggest > limit_mb else limit_mb + step
    return (f"{name} is {shown} MB; the limit is {limit_mb} MB — start the dashboard with "
            f"`forecasting dashboard --max-upload-mb {suggest}` to raise it (or upload a smaller file).")


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there; the age rule has to do
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # exists but not ours (or cannot tell): keep its folders
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            path.unlink()
        except OSError:
            pass
