"""Run directories ``runs/<id>/``: the one writer and the one ``run.json`` schema.

The CLI (``forecasting train``, ``forecasting demo``) and the dashboard's training worker both
write runs through :func:`write_run`, and everything that reads runs (``--model`` of predict /
evaluate / backtest, the dashboard's run list) goes through :func:`read_run_meta`,
:func:`resolve_model_dir` and :func:`load_forecaster` here, so a run written by one surface
loads in the other.

A run directory::

    config.yaml          the resolved config (what ``Forecaster.fit`` was given)
    model/               the artifact of :meth:`Forecaster.save` (what ``--model runs/<id>`` loads)
    run.json             the record below
    baselines/<name>/    optional peers fitted on the same data (the dashboard's deterministic Koopa)
    train/               per-epoch metrics and checkpoints (CLI runs)
    metrics.json         test-split metrics (CLI runs unless ``--no-eval``)

Names and states in a runs folder (:mod:`forecasting.core.claims` has the mechanics)::

    <id>/                 finished: the layout above (no marker)
    <id>/.incomplete      claimed: created exclusively when the run starts, holding only this JSON
                          marker (owner PID and host, state, command, creation time) until the run
                          is complete; a second run with the same id fails at once
    .<id>.partial/        the run being built; renamed onto the emptied ``<id>/`` when complete
                          (a rename that cannot replace another run)

A claimed run is *running* while its owner process lives, else *interrupted*. An interrupted CLI
run keeps ``.<id>.partial/`` (config, checkpoints under ``train/``) and is *resumable*
(``forecasting train --resume <id>``, :func:`write_run` with ``resume=True``); anything else an
interrupted, cancelled or failed run leaves is removed. Readers (:func:`list_runs`,
:func:`resolve_model_dir`) never take a claimed run for a finished one; :func:`unfinished_runs`
lists them and :func:`clean_runs` removes what dead processes left (each new run does that for
its folder first).

``run.json`` (``schema`` 1) always has every key of :class:`RunRecord`; a value that does not
apply to a run is ``null``. Runs written before the schema existed (the old CLI record with
``training_summary``/``seconds``, the old dashboard record with ``summary.scorevi`` and ``key``)
are read through :func:`normalize_run_meta`, which maps their keys onto the schema.
"""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import logging
import shutil
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from forecasting.core import claims
from forecasting.core.atomic import atomic_write_text, json_safe, staged_dir
from forecasting.core.errors import ForecastingError

if TYPE_CHECKING:  # heavy imports (torch) only when a run is written or loaded
    from forecasting.forecaster.api import Forecaster
    from forecasting.forecaster.config import ForecasterConfig

log = logging.getLogger(__name__)

SCHEMA = 1
RUN_META = "run.json"
MODEL_SUBDIR = "model"
CONFIG_FILE = "config.yaml"
BASELINES_SUBDIR = "baselines"
MANIFEST = "manifest.json"
SOURCES = ("cli", "dashboard")
# Settings that may differ when a run is resumed: where it runs and how long a collective may wait
# change no number of the result on the same device (resume promises identical results there).
RESUME_FREE_KEYS = ("device", "training.dist_timeout_s", "training.pin_memory")


# ------------------------------------------------------------------------------------ schema
@dataclass
class RunRecord:
    """``run.json``: what was trained on what, where, how long, and how well.

    Attributes:
        schema: version of this layout (1).
        run_id: the run directory's name.
        created: UTC time the run was started, ISO 8601 (``2024-05-01T12:00:00Z``).
        source: which surface wrote it: ``cli`` or ``dashboard``.
        command: the command line for CLI runs (``forecasting train ...``), else ``None``.
        dataset: the data trained on as a registry name or file path (what ``evaluate``/``backtest``
            re-read when no ``--data`` is given).
        data_file: the file the dashboard read (uploads), else ``None``.
        data_digest: digest of the series (dashboard: "trained on this data" check), else ``None``.
        series: the series' name.
        rows: its length.
        columns: its channels.
        freq: its pandas frequency.
        config: the resolved config inside the run (``config.yaml``).
        config_source: the YAML the config came from (``--config``), else ``None``.
        model: the artifact directory inside the run (``model``).
        baselines: peers fitted on the same data: ``{name: {"model": relative path,
            "training_summary": {...}, "seconds": fit seconds}}``.
        package_version: ``forecasting.__version__`` that wrote the run.
        torch_version: torch's version.
        device: the device the model was fitted on (:func:`forecasting.core.device.describe_device`).
        torch_threads: torch CPU threads during the fit.
        training_summary: :attr:`Forecaster.summary` of the main model (method, windows, ...).
        seconds: timings: ``fit``, and ``evaluate`` / ``total`` where measured.
        test: ``{"windows", "samples"}`` of the test-split evaluation, else ``None``.
        metrics: test metrics on the original scale, else ``None``.
        metrics_scaled: test metrics on the standard-scaled data, else ``None``.
        cache_key: the dashboard's key of (data, settings), so an identical request reuses the run.
    """

    schema: int = SCHEMA
    run_id: str = ""
    created: str = ""
    source: str = "cli"
    command: str | None = None
    dataset: str | None = None
    data_file: str | None = None
    data_digest: str | None = None
    series: str | None = None
    rows: int | None = None
    columns: list[str] = field(default_factory=list)
    freq: str | None = None
    config: str | None = CONFIG_FILE
    config_source: str | None = None
    model: str = MODEL_SUBDIR
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    package_version: str | None = None
    torch_version: str | None = None
    device: dict[str, Any] | None = None
    torch_threads: int | None = None
    training_summary: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    test: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    metrics_scaled: dict[str, Any] | None = None
    cache_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


RUN_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(RunRecord))


def validate_run_meta(meta: dict[str, Any]) -> None:
    """Check a ``run.json`` dict against the schema: every key present, none unknown, known sources.

    Raises:
        ForecastingError: naming the missing or unknown keys.
    """
    missing = [k for k in RUN_KEYS if k not in meta]
    unknown = sorted(set(meta) - set(RUN_KEYS))
    if missing or unknown:
        raise ForecastingError(f"run.json does not follow schema {SCHEMA}: missing {missing}, unknown {unknown}; "
                               "write runs with forecasting.forecaster.runs.write_run")
    if meta["source"] not in SOURCES:
        raise ForecastingError(f"run.json source {meta['source']!r} is not one of {list(SOURCES)}")


def normalize_run_meta(raw: dict[str, Any]) -> dict[str, Any]:
    """A ``run.json`` as read from disk -> a dict with every schema key (old layouts mapped).

    Old CLI records lack ``source``/``created`` and keep the rest under the schema's names; old
    dashboard records hold the summaries under ``summary.scorevi`` / ``summary.deterministic``
    and the cache key under ``key``. Keys the schema does not know are kept as they are, so
    nothing a reader used disappears.
    """
    out = RunRecord().to_dict()
    # Both old writers wrote config.yaml and model/ (the defaults); schema and source are unknown unless recorded.
    out.update({"schema": None, "source": None})
    out.update(raw)
    if raw.get("schema") is None:  # written before the schema: map the old keys
        old = raw.get("summary") if isinstance(raw.get("summary"), dict) else {}
        out["source"] = raw.get("source") or ("cli" if raw.get("command") else None)
        if not raw.get("training_summary") and isinstance(old.get("scorevi"), dict):
            out["training_summary"] = old["scorevi"]
        if not raw.get("baselines") and isinstance(old.get("deterministic"), dict):
            out["baselines"] = {"deterministic": {"model": f"{BASELINES_SUBDIR}/deterministic",
                                                  "training_summary": old["deterministic"], "seconds": None}}
        if raw.get("cache_key") is None and raw.get("key") is not None:
            out["cache_key"] = raw["key"]
        out["training_summary"] = out.get("training_summary") or {}
        out["seconds"] = out.get("seconds") or {}
        out["baselines"] = out.get("baselines") or {}
        out["columns"] = list(out.get("columns") or [])
    return out


# ------------------------------------------------------------------------------------ reading
def resolve_model_dir(path: str | Path) -> Path:
    """The artifact directory for ``--model``: a run directory's ``model/`` or the artifact itself.

    Raises:
        ForecastingError: the path is missing or holds no complete artifact.
    """
    p = Path(path)
    if not p.exists():
        raise ForecastingError(f"model not found: {p}; pass a run directory written by `forecasting train` (runs/<id>)")
    if claims.read_claim(p) is not None:  # claimed: still running, or interrupted
        raise ForecastingError(unfinished_message(p))
    if (p / MODEL_SUBDIR / MANIFEST).is_file():
        return p / MODEL_SUBDIR
    if (p / MANIFEST).is_file():
        return p
    if p.is_dir() and (p / MODEL_SUBDIR).exists():
        raise ForecastingError(f"{p / MODEL_SUBDIR} is not a complete model artifact (no manifest.json); retrain with `forecasting train`")
    raise ForecastingError(f"{p} is not a run or model directory (no model/manifest.json); pass a directory written by `forecasting train`")


def load_forecaster(path: str | Path, device: str = "auto") -> "Forecaster":
    """Load the forecaster of a run directory or of an artifact directory."""
    from forecasting.forecaster.api import Forecaster

    return Forecaster.load(resolve_model_dir(path), device=device)


def read_run_meta(model_path: str | Path) -> dict[str, Any]:
    """The normalized ``run.json`` of the run ``model_path`` points into (``{}`` for a bare artifact).

    ``model_path`` may be the run directory or its ``model/``; an unreadable ``run.json`` is
    logged and treated as absent (the model itself may still be fine).
    """
    p = Path(model_path)
    for candidate in (p / RUN_META, p.parent / RUN_META):
        if candidate.is_file():
            try:
                raw = json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                log.warning("%s is unreadable; ignoring it", candidate)
                return {}
            return normalize_run_meta(raw) if isinstance(raw, dict) else {}
    return {}


@dataclass(frozen=True)
class RunInfo:
    """A finished run found by :func:`list_runs`."""

    path: Path
    name: str
    created: float  # the artifact's mtime: comparable across old and new runs
    meta: dict[str, Any]  # normalized run.json ({} when there is none)
    model: Path
    baselines: dict[str, Path]  # peers with a complete artifact


def list_runs(runs_dir: str | Path) -> list[RunInfo]:
    """Run directories under ``runs_dir`` holding a complete model artifact, newest first.

    Hidden directories (runs being built), claimed runs (running or interrupted: see
    :func:`unfinished_runs`) and directories without ``manifest.json`` are skipped; runs of every
    source and of the old layouts are listed.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    out = []
    for d in root.iterdir():
        if d.name.startswith(".") or not d.is_dir() or (d / claims.MARKER).exists():
            continue
        try:
            model = resolve_model_dir(d)
        except ForecastingError:
            continue
        meta = read_run_meta(d) if (d / RUN_META).is_file() else {}
        peers = {name: d / rel for name, rel in _baseline_paths(d, meta).items() if (d / rel / MANIFEST).is_file()}
        out.append(RunInfo(d, d.name, model.stat().st_mtime, meta, model, peers))
    return sorted(out, key=lambda r: r.created, reverse=True)


def _baseline_paths(run_dir: Path, meta: dict[str, Any]) -> dict[str, str]:
    """Recorded baselines, plus any ``baselines/<name>/`` on disk (runs without a record)."""
    paths = {name: str(entry.get("model") or f"{BASELINES_SUBDIR}/{name}")
             for name, entry in (meta.get("baselines") or {}).items() if isinstance(entry, dict)}
    base = run_dir / BASELINES_SUBDIR
    if base.is_dir():
        for d in base.iterdir():
            paths.setdefault(d.name, f"{BASELINES_SUBDIR}/{d.name}")
    return paths


# ------------------------------------------------------------------------------------ unfinished runs
@dataclass(frozen=True)
class UnfinishedRun:
    """A claimed run directory (``<id>/.incomplete``): running, or interrupted.

    Attributes:
        path: the run directory (holds only the marker until the run is complete).
        name: the run id.
        state: ``running`` (its process lives) or ``interrupted``.
        resumable: interrupted with its config and checkpoints kept in :attr:`staging`.
        staging: ``.<id>.partial`` beside it.
        marker: the marker's JSON (owner ``pid``/``host``, ``command``, ``created``, ...).
    """

    path: Path
    name: str
    state: str
    resumable: bool
    staging: Path
    marker: dict[str, Any]

    @property
    def pid(self) -> int | None:
        return (self.marker.get("owner") or {}).get("pid")


def unfinished_run(path: str | Path) -> UnfinishedRun | None:
    """The claimed run at ``path``, or ``None`` when ``path`` holds no claim (finished or absent)."""
    p = Path(path)
    marker = claims.read_claim(p)
    if marker is None:
        return None
    staging = p.parent / str(marker.get("staging") or claims.partial_path(p).name)
    state = claims.claim_status(marker)
    resumable = state == claims.INTERRUPTED and bool(marker.get("resumable")) and (staging / CONFIG_FILE).is_file()
    return UnfinishedRun(p, p.name, state, resumable, staging, marker)


def unfinished_runs(runs_dir: str | Path) -> list[UnfinishedRun]:
    """Claimed runs under ``runs_dir`` (running or interrupted), by name."""
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    found = (unfinished_run(d) for d in sorted(root.iterdir()) if not d.name.startswith(".") and d.is_dir())
    return [u for u in found if u is not None]


def unfinished_message(path: str | Path) -> str:
    """One line on a claimed run: running (whose, since when) or interrupted, and what to do."""
    u = unfinished_run(path)
    p = Path(path)
    out = p.parent
    if u is None:
        return f"run {p.name} already exists in {out}/; choose another --run-id or remove it"
    if u.state == claims.RUNNING:
        owner = u.marker.get("owner") or {}
        return (f"run {u.name} is still running (process {owner.get('pid', '?')} on {owner.get('host', '?')}, started "
                f"{u.marker.get('created') or u.marker.get('claimed', '?')}); choose another --run-id or wait for it to finish")
    if u.resumable:
        return (f"run {u.name} was interrupted; resume it with `forecasting train --resume {u.name} --out {out}` "
                f"or remove it with `forecasting runs clean --interrupted --out {out}`")
    return f"run {u.name} was interrupted and cannot be resumed; remove it with `forecasting runs clean --out {out}`"


def clean_runs(runs_dir: str | Path, *, interrupted: bool = False, dry_run: bool = False) -> list[claims.Leftover]:
    """Remove what dead processes left in ``runs_dir``; returns what was (or, with ``dry_run``, would be) removed.

    Always: staging folders of dead processes (``.<id>.partial`` no run claims, ``.<id>.tmp-...``,
    ``.<id>.old-...``), stale locks, and claimed runs whose process is gone and that cannot be
    resumed. Resumable interrupted runs (their checkpoints) only with ``interrupted=True``. Running
    runs are never touched.
    """
    found = claims.find_leftovers(runs_dir, interrupted=interrupted)
    if dry_run:
        return found
    return [item for item in found if claims.remove_leftover(item)]


def config_changes(saved: dict[str, Any], new: dict[str, Any], free: Sequence[str] = RESUME_FREE_KEYS) -> list[str]:
    """``key: old -> new`` for every dotted key whose value differs (``free`` keys excepted)."""
    a, b = _flatten(saved), _flatten(new)
    return [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and not any(k == f or k.startswith(f + ".") for f in free)]


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def read_resumable(final: str | Path) -> tuple[UnfinishedRun, dict[str, Any]]:
    """The interrupted run ``final`` and its saved resolved config (``config.yaml`` of its staging folder).

    Raises:
        ForecastingError: ``final`` is finished, missing, still running, or kept nothing to resume.
    """
    from forecasting.core.config import read_yaml

    p = Path(final)
    u = unfinished_run(p)
    if u is None:
        if (p / MODEL_SUBDIR).exists() or (p / RUN_META).exists():
            raise ForecastingError(f"run {p.name} in {p.parent}/ is finished; there is nothing to resume")
        raise ForecastingError(f"no run {p.name} in {p.parent}/ to resume; `forecasting runs list --out {p.parent}` "
                               "shows the runs there")
    if u.state == claims.RUNNING:
        raise ForecastingError(unfinished_message(p))
    if not u.resumable:
        raise ForecastingError(f"run {u.name} was interrupted before its config was saved, so it cannot be resumed; "
                               f"remove it with `forecasting runs clean --out {p.parent}` and start it again")
    return u, read_yaml(u.staging / CONFIG_FILE)


# ------------------------------------------------------------------------------------ configs
def load_run_config(path: str | Path | None, overrides: Sequence[str] = (),
                    dataset: str | None = None) -> tuple["ForecasterConfig", str | None, dict]:
    """YAML + dotted overrides -> ``(ForecasterConfig, dataset or None, resolved dict)``.

    The top-level ``dataset`` key is taken out before the rest is validated (unknown keys are an
    error with a did-you-mean); ``dataset`` (e.g. ``--data``) wins over the file's value. See
    :func:`forecasting.forecaster.config.read_forecaster_config`.
    """
    from forecasting.forecaster.config import read_forecaster_config

    return read_forecaster_config(path, overrides, dataset)


def find_config(explicit: str | Path | None, name: str = "demo.yaml") -> Path:
    """``explicit``, else ``configs/<name>`` in the working directory or in the source checkout.

    Raises:
        ForecastingError: no such config in either place.
    """
    if explicit:
        return Path(explicit)
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        candidate = base / "configs" / name
        if candidate.is_file():
            return candidate
    raise ForecastingError(f"configs/{name} not found; run from the repository root or pass --config")


# ------------------------------------------------------------------------------------ writing
def new_run_id(stem: str) -> str:
    """``<stem>-YYYYmmdd-HHMMSS`` (UTC) plus a short suffix: sortable and collision-free."""
    clean = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem) or "run"
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{clean}-{stamp}-{uuid.uuid4().hex[:4]}"


class RunWriter:
    """A run being built in its staging directory :attr:`dir` (see :func:`write_run`)."""

    def __init__(self, stage: Path, final: Path, record: RunRecord, *, resumable: bool = False, resume: bool = False):
        self.dir, self.final, self.record = stage, final, record
        self.resumable = resumable  # an interruption keeps the staging folder for a later resume
        self.resume = resume  # continuing an interrupted run: fits start from its checkpoints

    def write_config(self, resolved: dict[str, Any]) -> Path:
        """``config.yaml``: the resolved config (for CLI runs with its ``dataset`` key).

        In a resumable run this is the moment the run becomes resumable (a resume needs the config).
        """
        from forecasting.core.config import write_yaml

        write_yaml(resolved, self.dir / CONFIG_FILE)
        self.record.config = CONFIG_FILE
        if self.resumable and not (claims.read_claim(self.final) or {}).get("resumable"):
            claims.update_claim(self.final, resumable=True)
        return self.dir / CONFIG_FILE

    def record_data(self, frame: Any, dataset: str | None, *, data_file: str | None = None,
                    data_digest: str | None = None) -> None:
        """What the run trains on: the source (``dataset``, ``data_file``) and the series' shape."""
        self.record.dataset = dataset
        self.record.data_file = None if data_file is None else str(data_file)
        self.record.data_digest = data_digest
        self.record.series, self.record.rows = frame.name, int(frame.length)
        self.record.columns, self.record.freq = list(frame.columns), frame.freq

    def fit(self, data: Any, config: "ForecasterConfig", *, checkpoints: bool = False, progress: bool = False,
            on_epoch: Callable[[str, dict[str, Any]], None] | None = None) -> "Forecaster":
        """Fit the run's model, save it to ``model/`` and record summary, device and fit time.

        Args:
            data: a :class:`SeriesFrame` or :class:`PreparedData` (as :meth:`Forecaster.fit`).
            config: the forecaster config.
            checkpoints: keep per-epoch metrics and checkpoints under ``train/`` (in a resumed run:
                continue from them).
            progress: progress bars.
            on_epoch: per-epoch callback (as :meth:`Forecaster.fit`).
        """
        import torch

        from forecasting.core.device import describe_device
        from forecasting.forecaster.api import Forecaster

        t0 = time.perf_counter()
        fc = Forecaster.fit(data, config, run_dir=self.dir / "train" if checkpoints else None, progress=progress,
                            resume=self.resume and checkpoints, on_epoch=on_epoch)
        self.record.seconds["fit"] = round(time.perf_counter() - t0, 3)
        fc.save(self.dir / MODEL_SUBDIR)
        self.record.training_summary = fc.summary
        self.record.device = describe_device(fc.device)
        self.record.torch_threads = torch.get_num_threads()
        return fc

    def fit_baseline(self, name: str, data: Any, config: "ForecasterConfig", *,
                     on_epoch: Callable[[str, dict[str, Any]], None] | None = None) -> "Forecaster":
        """Fit a peer on the same data into ``baselines/<name>/`` and record it."""
        from forecasting.forecaster.api import Forecaster

        t0 = time.perf_counter()
        fc = Forecaster.fit(data, config, on_epoch=on_epoch)
        seconds = round(time.perf_counter() - t0, 3)
        rel = f"{BASELINES_SUBDIR}/{name}"
        fc.save(self.dir / rel)
        self.record.baselines[name] = {"model": rel, "training_summary": fc.summary, "seconds": seconds}
        return fc

    def record_evaluation(self, scores: Any, seconds: float | None = None) -> Path:
        """Test-split :class:`~forecasting.forecaster.backtest.Scores`: into the record and ``metrics.json``."""
        if seconds is not None:
            self.record.seconds["evaluate"] = round(seconds, 3)
        self.record.test = {"windows": scores.n_windows, "samples": scores.n_samples}
        self.record.metrics, self.record.metrics_scaled = scores.metrics, scores.metrics_scaled
        return write_json(self.dir / "metrics.json", {
            "split": "test", "windows": scores.n_windows, "samples": scores.n_samples, "metrics": scores.metrics,
            "metrics_scaled": scores.metrics_scaled, "reliability": scores.reliability})


@contextmanager
def write_run(final: str | Path, *, source: str, command: str | None = None, config_source: str | Path | None = None,
              cache_key: str | None = None, replace: bool = False, resumable: bool = False,
              resume: bool = False, options: dict[str, Any] | None = None) -> Iterator[RunWriter]:
    """Build the run directory ``final``: yields a :class:`RunWriter` on a staging directory; on a
    clean exit ``run.json`` is written and the directory moved into place.

    The run id is claimed when the block is entered (``final`` created exclusively, holding only a
    ``.incomplete`` marker: see the module docstring), so a second run with the same id fails at
    once and the finished run can never replace another. What dead processes left in the runs
    folder is removed first (:func:`clean_runs`; resumable runs are kept).

    Args:
        final: the run directory (``runs/<id>``); its name is the run id.
        source: ``cli`` or ``dashboard``.
        command: the command line (CLI runs).
        config_source: the YAML the config came from.
        cache_key: the dashboard's (data, settings) key.
        replace: swap out an existing ``final`` once the new run is complete (the demo's
            ``runs/demo``); otherwise an existing ``final`` is an error.
        resumable: on an interruption (``KeyboardInterrupt``: Ctrl-C, or SIGTERM under the CLI)
            after :meth:`RunWriter.write_config`, keep the staging folder with its checkpoints and
            mark the run interrupted, instead of removing it.
        resume: continue the interrupted run ``final`` (see :func:`read_resumable`) in its staging
            folder: :meth:`RunWriter.fit` with ``checkpoints=True`` starts from its checkpoints,
            and ``created``/``command``/``config_source`` are the original run's. A resumed run
            that fails is kept resumable.
        options: the caller's own settings to keep with an unfinished run (JSON; the CLI's
            evaluation options), read back from :attr:`UnfinishedRun.marker` when it is resumed.

    Raises:
        ForecastingError: ``final`` exists or is claimed (without ``replace``/``resume``), or
            ``resume`` finds no interrupted run there.
        ValueError: ``source`` is not one of :data:`SOURCES`, or ``replace`` with ``resume`` (a caller's bug).
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    if replace and (resume or resumable):
        raise ValueError("replace cannot be combined with resume/resumable")
    import torch

    from forecasting import __version__

    final = Path(final)
    record = RunRecord(run_id=final.name, created=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       source=source, command=command, config_source=None if config_source is None else str(config_source),
                       package_version=__version__, torch_version=torch.__version__.split("+")[0], cache_key=cache_key)
    _clean_before_run(final.parent)
    if replace:
        with staged_dir(final, replace=True) as stage:
            writer = RunWriter(stage, final, record)
            yield writer
            write_json(stage / RUN_META, record.to_dict())
        return
    stage = _claim(final, record, resume=resume, options=options)
    try:
        writer = RunWriter(stage, final, record, resumable=resumable or resume, resume=resume)
        yield writer
        write_json(stage / RUN_META, record.to_dict())
        claims.commit_claim(stage, final)
    except BaseException as exc:
        if not stage.exists():  # moved into place: a stop signal held back during the move is raised after it
            claims.release_claim(final)
            raise
        keep = resume or (resumable and isinstance(exc, KeyboardInterrupt) and (stage / CONFIG_FILE).is_file())
        if keep:  # the checkpoints stay for `forecasting train --resume`
            try:
                claims.update_claim(final, state=claims.INTERRUPTED, interrupted=type(exc).__name__)
            except OSError:  # the owner's death marks it interrupted just as well
                log.warning("could not mark %s interrupted", final)
        else:
            shutil.rmtree(stage, ignore_errors=True)
            claims.release_claim(final)
        raise


def _claim(final: Path, record: RunRecord, *, resume: bool, options: dict[str, Any] | None = None) -> Path:
    """Claim the run id (or, resuming, take over the interrupted run's claim); returns the staging folder."""
    if resume:
        read_resumable(final)  # the states a resume refuses, with their messages
        try:
            old = claims.take_claim(final)
        except claims.ClaimError:
            raise ForecastingError(f"run {final.name} is being resumed or removed by another process") from None
        record.created = old.get("created") or record.created
        record.command = old.get("command") or record.command
        record.config_source = old.get("config_source", record.config_source)
        stage = final.parent / str(old.get("staging") or claims.partial_path(final).name)
        _remove_temporaries(stage)
        return stage
    try:
        marker = claims.claim_dir(final, run_id=final.name, source=record.source, command=record.command,
                                  config_source=record.config_source, created=record.created, options=options or {})
    except claims.ClaimError:
        raise ForecastingError(unfinished_message(final)) from None
    stage = final.parent / marker["staging"]
    try:
        shutil.rmtree(stage, ignore_errors=True)  # an orphan of an earlier run; the id is ours now
        stage.mkdir()
    except BaseException:
        claims.release_claim(final)
        raise
    return stage


def _remove_temporaries(stage: Path) -> None:
    """Temporary files and folders an interrupted writer left inside its run (ours now: the claim was taken)."""
    for p in sorted(stage.rglob(".*"), key=lambda q: len(q.parts), reverse=True):
        if ".tmp" in p.name or ".old-" in p.name or p.name.endswith(".lock"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def _clean_before_run(runs_dir: Path) -> None:
    """Remove what dead processes left in ``runs_dir`` (never a resumable run); a failure only logs."""
    try:
        for item in clean_runs(runs_dir):
            log.info("removed %s: %s", item.path, item.detail)
    except OSError as exc:
        log.warning("could not clean leftovers in %s: %s", runs_dir, exc)


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomic JSON with NaN/inf written as ``null`` (strict JSON readers accept it)."""
    return atomic_write_text(path, json.dumps(json_safe(obj, stringify_unknown=True), indent=2) + "\n")
