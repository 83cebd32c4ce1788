"""Owning a directory name while it is being built, and finding what dead processes left behind.

:func:`forecasting.core.atomic.staged_dir` and the run writer
(:func:`forecasting.forecaster.runs.write_run`) build a directory under a hidden sibling and
move it into place when complete. Two processes building the same name must not both succeed,
and a process killed half-way (SIGKILL, power loss, OOM killer) must not leave debris that no
later process recognises. Names on disk, next to the final directory ``<name>``:

``<name>/.incomplete``
    a *claim*: ``<name>`` was created exclusively (``mkdir``) at the start and holds only this
    JSON marker (owner PID, host, process start time, state ``running``/``interrupted``, the
    staging folder's name) until the build is complete. A second builder fails at once; readers
    that see the marker know the directory is not finished.
``.<name>.partial/``
    the staging folder of a claimed build; renamed onto the (then empty) ``<name>`` when complete.
    ``rename(2)`` replaces only an *empty* directory, so it can never replace another build.
``.<name>.tmp-<host>.<pid>-<hex>/`` and ``.<name>.old-<host>.<pid>-<hex>/``
    the staging folder and the set-aside previous version of a *replacing* build
    (``staged_dir(..., replace=True)``: model artifacts, the demo's ``runs/demo``); the owner is
    in the name (``<host>`` is a short hash of the host name).
``.<name>.lock``
    the lock of a replacing build (created with ``O_EXCL``; JSON owner).

A claim or lock whose owner is dead (no such PID on this host, or the PID now belongs to a
process started later) is *stale*; :func:`find_leftovers` lists such leftovers and
:func:`remove_leftovers` removes them. Owners on another host are never judged (a PID means
nothing there), so a folder shared over NFS is only cleaned of this host's leftovers.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forecasting.core.errors import ForecastingError

MARKER = ".incomplete"
PARTIAL = ".partial"
RUNNING, INTERRUPTED = "running", "interrupted"

# .<name>.tmp-<host>.<pid>-<hex8> (this version) or .<name>.tmp-<hex8> (earlier versions: no owner)
_STAGE_RE = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?:(?P<host>[0-9a-f]{6})\.(?P<pid>\d+)-)?[0-9a-f]{8}$")
_LOCK_RE = re.compile(r"^\.(?P<name>.+)\.lock$")
_PARTIAL_RE = re.compile(r"^\.(?P<name>.+)\.partial$")


# ------------------------------------------------------------------------------------ owners
def host_tag(host: str | None = None) -> str:
    """A short, file-name-safe tag of the host name (6 hex digits)."""
    return hashlib.sha1((host or socket.gethostname()).encode("utf-8")).hexdigest()[:6]


def process_started(pid: int) -> float | None:
    """When process ``pid`` started (seconds since the epoch), or ``None`` where it cannot be read.

    Linux: ``/proc/<pid>/stat`` (start time in clock ticks after boot) plus the boot time of
    ``/proc/stat``; elsewhere ``None`` (owners are then judged by the PID alone).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat[stat.rindex(")") + 2 :].split()[19])  # field 22; the name (field 2) may hold spaces
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host (a zombie — exited, not yet reaped — counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z"
    except (OSError, ValueError, IndexError):
        return True


_SELF_STARTED = process_started(os.getpid()) or time.time()


def this_process_started() -> float:
    """When the current process started (seconds since the epoch)."""
    return _SELF_STARTED


def owner_record() -> dict[str, Any]:
    """The current process as an owner: ``{"pid", "host", "started"}``."""
    return {"pid": os.getpid(), "host": socket.gethostname(), "started": process_started(os.getpid())}


def owner_alive(owner: dict[str, Any] | None) -> bool:
    """Whether the process that wrote ``owner`` still runs; an owner on another host counts as alive.

    A PID is reused once its process has ended, so a live PID whose process started after the
    recorded start time is somebody else: the owner is dead.
    """
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
        return False
    if owner.get("host") not in (None, socket.gethostname()):
        return True  # cannot be judged from here
    if not process_alive(owner["pid"]):
        return False
    recorded, now = owner.get("started"), process_started(owner["pid"])
    return recorded is None or now is None or abs(now - float(recorded)) < 2.0


def _pid_in_name_alive(host: str, pid: int, created: float) -> bool:
    """Owner of a ``.tmp-<host>.<pid>-`` folder: alive unless dead here, or the PID's process is younger than the folder."""
    if host != host_tag():
        return True
    if not process_alive(pid):
        return False
    started = process_started(pid)
    return started is None or started <= created + 2.0


# ------------------------------------------------------------------------------------ claims
class ClaimError(ForecastingError):
    """``path`` is claimed by another build (``marker`` holds its claim; ``None``: a finished directory)."""

    def __init__(self, message: str, path: Path, marker: dict[str, Any] | None = None):
        super().__init__(message)
        self.path, self.marker = path, marker


def partial_path(final: str | Path) -> Path:
    """The staging folder of a claimed build of ``final``: ``.<name>.partial`` beside it."""
    final = Path(final)
    return final.parent / f".{final.name}{PARTIAL}"


def read_claim(final: str | Path) -> dict[str, Any] | None:
    """The claim marker of ``final`` (``None`` when it has none; an unreadable one reads as ``{"_mtime": ...}``)."""
    path = Path(final) / MARKER
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raw = None
    # Unreadable (torn by a crash, or not ours): still a claim, judged by its age (see claim_status).
    return raw if isinstance(raw, dict) else {"_mtime": _mtime(path)}


def claim_status(marker: dict[str, Any]) -> str:
    """``running`` (owner alive) or ``interrupted`` (marked so, or its owner is dead)."""
    if marker.get("state") == INTERRUPTED:
        return INTERRUPTED
    if not marker.get("owner"):  # unreadable or half-written: judge by age (a claim is written right after mkdir)
        return RUNNING if time.time() - float(marker.get("_mtime", time.time())) < 60 else INTERRUPTED
    return RUNNING if owner_alive(marker["owner"]) else INTERRUPTED


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_marker(final: Path, marker: dict[str, Any]) -> None:
    from forecasting.core.atomic import atomic_write_text

    atomic_write_text(final / MARKER, json.dumps(marker, indent=1) + "\n")


def claim_dir(final: str | Path, **info: Any) -> dict[str, Any]:
    """Create ``final`` exclusively, holding only its claim marker; returns the marker.

    Args:
        final: the directory to build.
        info: extra JSON fields for the marker (what a reader or a resume needs).

    Raises:
        ClaimError: ``final`` exists (a finished directory, or another build's claim).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(final)  # the exclusive step: exactly one of several builders succeeds
    except FileExistsError:
        marker = read_claim(final)
        if marker is None:
            raise ClaimError(f"{final} already exists; choose another name or remove it", final) from None
        raise ClaimError(f"{final} is being built by another process or was interrupted ({claim_status(marker)})",
                         final, marker) from None
    marker = {"state": RUNNING, "owner": owner_record(), "claimed": _now(), "staging": partial_path(final).name,
              "resumable": False, **info}
    try:
        _write_marker(final, marker)
    except BaseException:
        shutil.rmtree(final, ignore_errors=True)
        raise
    return marker


def update_claim(final: str | Path, **changes: Any) -> dict[str, Any]:
    """Rewrite the claim marker of ``final`` with ``changes`` (atomically); returns it."""
    final = Path(final)
    marker = {**(read_claim(final) or {}), **changes, "updated": _now()}
    _write_marker(final, marker)
    return marker


def take_claim(final: str | Path, *, allow_running: bool = False) -> dict[str, Any]:
    """Take over the claim of an interrupted build of ``final`` (to resume or remove it); returns the old marker.

    The marker is first renamed to a name of this process: of several processes taking over at
    once exactly one rename succeeds. The new marker names this process as the owner.

    Raises:
        ClaimError: ``final`` has no claim, its owner still runs, or another process took it first.
    """
    final = Path(final)
    marker = read_claim(final)
    if marker is None:
        raise ClaimError(f"{final} has no unfinished build to take over", final)
    if not allow_running and claim_status(marker) == RUNNING:
        raise ClaimError(f"{final} is still being built by process {(marker.get('owner') or {}).get('pid')}", final, marker)
    mine = final / f"{MARKER}.taken-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        os.rename(final / MARKER, mine)
    except FileNotFoundError:
        raise ClaimError(f"{final} was taken over by another process just now", final, marker) from None
    try:
        old = json.loads(mine.read_text(encoding="utf-8"))
    except ValueError:
        old = {}
    old = old if isinstance(old, dict) else {}
    _write_marker(final, {**old, "state": RUNNING, "owner": owner_record(), "updated": _now()})
    mine.unlink()
    return old


def release_claim(final: str | Path) -> None:
    """Give up the claim: remove the marker and ``final`` itself if nothing else is in it."""
    final = Path(final)
    (final / MARKER).unlink(missing_ok=True)
    try:
        final.rmdir()
    except OSError:  # not empty: a completed move whose marker was not yet removed keeps its content
        pass


def commit_claim(stage: str | Path, final: str | Path) -> Path:
    """Move the complete ``stage`` onto the claimed ``final``; never replaces anything else.

    The marker moves into ``stage`` first (``final`` is then empty), ``stage`` is renamed onto
    ``final`` (``rename(2)`` refuses a non-empty target), then the marker is removed. Stop
    signals are held back meanwhile (:func:`forecasting.core.signals.deferred`); a crash between
    the steps leaves a state :func:`find_leftovers` recognises.

    Raises:
        ForecastingError: ``final`` holds something other than its claim (nothing is replaced).
    """
    from forecasting.core.signals import deferred

    stage, final = Path(stage), Path(final)
    with deferred():
        os.rename(final / MARKER, stage / MARKER)
        try:
            os.rename(stage, final)
        except OSError as exc:
            os.rename(stage / MARKER, final / MARKER)  # back as it was: the staging folder stays intact
            raise ForecastingError(f"cannot move the finished {stage.name} onto {final}: {exc.strerror or exc}; "
                                   f"{final} holds something else, which was left untouched") from exc
        (final / MARKER).unlink(missing_ok=True)
    return final


# ------------------------------------------------------------------------------------ locks
def lock_path(final: str | Path) -> Path:
    final = Path(final)
    return final.parent / f".{final.name}.lock"


def acquire_lock(final: str | Path) -> Path:
    """Create ``.<name>.lock`` beside ``final`` with ``O_EXCL``, taking over a lock whose owner is dead.

    Raises:
        ClaimError: a live process holds the lock.
    """
    path = lock_path(final)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = _read_lock(path)
            if holder is None or _lock_alive(path, holder):
                pid = (holder or {}).get("pid")
                raise ClaimError(f"{final} is being written by another process{f' (pid {pid})' if pid else ''}; "
                                 "wait for it to finish", Path(final)) from None
            try:  # dead owner: move its lock aside (one of several takers wins), then retry O_EXCL
                os.rename(path, path.with_name(f"{path.name}.stale-{os.getpid()}-{uuid.uuid4().hex[:8]}"))
            except FileNotFoundError:
                continue
            for stale in path.parent.glob(f"{path.name}.stale-{os.getpid()}-*"):
                stale.unlink(missing_ok=True)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(owner_record(), fh)
        return path
    raise ClaimError(f"{final} is being written by another process; wait for it to finish", Path(final))


def release_lock(final: str | Path) -> None:
    lock_path(final).unlink(missing_ok=True)


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8") or "null")
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        raw = None
    return raw if isinstance(raw, dict) else {}


def _lock_alive(path: Path, holder: dict[str, Any]) -> bool:
    if not holder:  # created, not yet written (or the writer died right there): young means alive
        try:
            return time.time() - path.stat().st_mtime < 60
        except FileNotFoundError:
            return False
    return owner_alive(holder)


# ------------------------------------------------------------------------------------ leftovers
@dataclass(frozen=True)
class Leftover:
    """Something a dead or interrupted process left in a folder.

    Attributes:
        path: the file or directory (for a claim: the claimed directory).
        kind: ``staging`` (a hidden build folder), ``swap`` (a set-aside old version), ``lock``,
            ``claim`` (an unfinished build that cannot be resumed) or ``interrupted`` (one that can).
        detail: one line for people (whose it was, why it is stale).
        staging: for claims, the staging folder that goes with it.
    """

    path: Path
    kind: str
    detail: str
    staging: Path | None = None


def find_leftovers(folder: str | Path, *, interrupted: bool = False) -> list[Leftover]:
    """Leftovers of dead processes directly in ``folder`` (see the module docstring for the names).

    Args:
        folder: e.g. a runs folder.
        interrupted: also list interrupted builds that could be resumed (kind ``interrupted``);
            by default they are kept.

    Folders of earlier versions (``.<name>.tmp-<hex>``, no owner recorded) count as stale when
    they are older than the current process.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    out: list[Leftover] = []
    claimed_stages: set[str] = set()
    entries = sorted(root.iterdir())
    for d in entries:  # claims first: they say which .partial folders are still wanted
        if d.name.startswith(".") or not d.is_dir() or not (d / MARKER).exists():
            continue
        marker = read_claim(d) or {}
        staging = root / str(marker.get("staging") or partial_path(d).name)
        claimed_stages.add(staging.name)
        if claim_status(marker) == RUNNING:
            continue
        resumable = bool(marker.get("resumable")) and staging.is_dir()
        if resumable and not interrupted:
            continue
        pid = (marker.get("owner") or {}).get("pid")
        out.append(Leftover(d, INTERRUPTED if resumable else "claim",
                            f"unfinished build of {d.name} (process {pid}, {marker.get('state', '?')}, now gone)"
                            + ("; it could be resumed" if resumable else ""), staging if staging.is_dir() else None))
    for p in entries:
        if not p.name.startswith("."):
            continue
        m = _STAGE_RE.match(p.name)
        if m and p.is_dir():
            kind = "staging" if m["kind"] == "tmp" else "swap"
            if m["pid"] is None:
                if _mtime(p) < this_process_started():
                    out.append(Leftover(p, kind, f"{kind} folder of an earlier version (no owner recorded)"))
            elif not _pid_in_name_alive(m["host"], int(m["pid"]), _mtime(p)):
                out.append(Leftover(p, kind, f"{kind} folder of process {m['pid']}, which is gone"))
            continue
        m = _PARTIAL_RE.match(p.name)
        if m and p.is_dir() and p.name not in claimed_stages:
            live = read_claim(root / m["name"])  # claimed after the listing was read?
            if live is not None and (live.get("staging") in (None, p.name)):
                continue
            own = read_claim(p)  # a move in progress carries its marker (commit_claim)
            if own and own.get("owner") and claim_status(own) == RUNNING:
                continue
            out.append(Leftover(p, "staging", f"staging folder of {m['name']} that no build claims"))
            continue
        m = _LOCK_RE.match(p.name)
        if m and p.is_file():
            holder = _read_lock(p)
            if holder is not None and not _lock_alive(p, holder):
                out.append(Leftover(p, "lock", f"lock of process {holder.get('pid', '?')}, which is gone"))
    return out


def remove_leftover(item: Leftover) -> bool:
    """Remove one leftover; returns ``False`` if it changed meanwhile (e.g. a build was resumed) and was kept."""
    if item.kind in ("claim", INTERRUPTED):
        try:  # take the claim first, so a build resumed meanwhile is not removed under it
            take_claim(item.path)
        except ClaimError:
            return False
        if item.staging is not None:
            shutil.rmtree(item.staging, ignore_errors=True)
        release_claim(item.path)
        return True
    if item.kind == "lock":
        item.path.unlink(missing_ok=True)
        return True
    shutil.rmtree(item.path, ignore_errors=True)
    name = _PARTIAL_RE.match(item.path.name)
    if name:  # an empty placeholder left by a move cut short goes with it
        try:
            (item.path.parent / name["name"]).rmdir()
        except OSError:
            pass
    return True


def remove_leftovers(folder: str | Path, *, interrupted: bool = False) -> list[Leftover]:
    """Remove what :func:`find_leftovers` finds; returns what was removed."""
    return [item for item in find_leftovers(folder, interrupted=interrupted) if remove_leftover(item)]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return time.time()
