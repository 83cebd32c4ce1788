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

It is built under a hidden temporary sibling and renamed into place when complete
(:func:`forecasting.core.atomic.staged_dir`): an interrupted, cancelled or failed run leaves
nothing that looks finished, and listings skip hidden directories.

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
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

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

    Hidden directories (staged or interrupted runs) and directories without ``manifest.json``
    are skipped; runs of every source and of the old layouts are listed.
    """
    root = Path(runs_dir)
    if not root.is_dir():
        return []
    out = []
    for d in root.iterdir():
        if d.name.startswith(".") or not d.is_dir():
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

    def __init__(self, stage: Path, final: Path, record: RunRecord):
        self.dir, self.final, self.record = stage, final, record

    def write_config(self, resolved: dict[str, Any]) -> Path:
        """``config.yaml``: the resolved config (for CLI runs with its ``dataset`` key)."""
        from forecasting.core.config import write_yaml

        write_yaml(resolved, self.dir / CONFIG_FILE)
        self.record.config = CONFIG_FILE
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
            checkpoints: keep per-epoch metrics and checkpoints under ``train/``.
            progress: progress bars.
            on_epoch: per-epoch callback (as :meth:`Forecaster.fit`).
        """
        import torch

        from forecasting.core.device import describe_device
        from forecasting.forecaster.api import Forecaster

        t0 = time.perf_counter()
        fc = Forecaster.fit(data, config, run_dir=self.dir / "train" if checkpoints else None, progress=progress,
                            on_epoch=on_epoch)
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
              cache_key: str | None = None, replace: bool = False) -> Iterator[RunWriter]:
    """Build the run directory ``final``: yields a :class:`RunWriter` on a staging directory; on a
    clean exit ``run.json`` is written and the directory renamed into place.

    Args:
        final: the run directory (``runs/<id>``); its name is the run id.
        source: ``cli`` or ``dashboard``.
        command: the command line (CLI runs).
        config_source: the YAML the config came from.
        cache_key: the dashboard's (data, settings) key.
        replace: swap out an existing ``final`` once the new run is complete (the demo's
            ``runs/demo``); otherwise an existing ``final`` is an error.

    Raises:
        ForecastingError: ``final`` exists (without ``replace``).
        ValueError: ``source`` is not one of :data:`SOURCES` (a caller's bug).
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    import torch

    from forecasting import __version__

    final = Path(final)
    record = RunRecord(run_id=final.name, created=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                       source=source, command=command, config_source=None if config_source is None else str(config_source),
                       package_version=__version__, torch_version=torch.__version__.split("+")[0], cache_key=cache_key)
    with staged_dir(final, replace=replace) as stage:
        writer = RunWriter(stage, final, record)
        yield writer
        write_json(stage / RUN_META, record.to_dict())


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomic JSON with NaN/inf written as ``null`` (strict JSON readers accept it)."""
    return atomic_write_text(path, json.dumps(json_safe(obj, stringify_unknown=True), indent=2) + "\n")
