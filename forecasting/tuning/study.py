"""Hyperparameter sweeps with Optuna: tune ScoreVI-Koopa's proximal weight, MC samples and friends.

The ScoreVI paper (Kim 2026, arXiv 2602.05873) names the proximal weight λ and the number of Monte
Carlo samples S as its sensitive hyperparameters; this module makes tuning them a product feature.

Example::

    from forecasting.tuning.study import TuneJob, tune

    result = tune(TuneJob(config="configs/ETTh2.yaml", space="configs/sweeps/default.yaml", trials=30, workers=2))
    result.best_yaml          # runs/tune/ETTh2-default/best.yaml, trainable with `forecasting train --config`
    result.summary_md         # runs/tune/ETTh2-default/summary.md (+ history/importances/contour PNG and HTML)

Parallel and distributed through Optuna's own storage:

* default: a journal file ``<out>/study.journal`` (Optuna's ``JournalFileBackend``: appends under a
  file lock, safe for several processes on one machine or on a shared POSIX file system);
* ``storage="postgresql://user:pw@host/db"`` (any SQLAlchemy URL, also ``mysql+pymysql://``,
  ``sqlite:///file.db``): workers on many machines run the same command and share one study;
* ``workers=K`` starts K local processes (``spawn``) on the same study; ``trials`` is split among them.

The study remembers the base config and the search space (study user attributes); a second
command on the same study must use the same ones (else it is an error), so every trial of a study
answers the same question. Running again with the same storage and study name adds trials;
``trials=0`` only rewrites the report from the storage.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from forecasting.core.errors import ForecastingError
from forecasting.core.writable import ensure_writable
from forecasting.tuning.space import SearchSpace, load_space

log = logging.getLogger(__name__)

JOURNAL_NAME = "study.journal"
DEFAULT_ROOT = Path("runs") / "tune"


@dataclass(frozen=True)
class TuneJob:
    """What ``forecasting tune`` was asked to do (plain data: it travels to worker processes).

    Attributes:
        config: base run config YAML (ForecasterConfig sections + optional ``dataset``).
        space: sweep YAML (see :mod:`forecasting.tuning.space`).
        trials: trials this command runs in total (split among ``workers``); 0 = report only.
        workers: local worker processes sharing the study.
        storage: RDB URL (``postgresql://...``), ``journal:PATH``/a file path, or ``None`` for
            ``<out>/study.journal``.
        study: study name (default ``<config stem>-<space stem>``).
        timeout: seconds after which each worker starts no new trial.
        out: output folder (default ``runs/tune/<study>``).
        overrides: ``key=value`` applied to the base config before the sweep values.
        data / data_dir: dataset (name or file) replacing the config's ``dataset``, and where
            registered benchmark files live.
        objectives: replaces the sweep file's objectives (``val_crps`` [, ``train_seconds``]).
        seed: replaces the sweep file's sampler seed.
        threads: torch threads per worker (default: CPU cores // workers).
        command: the command line, for the summary.
    """

    config: str | None
    space: str
    trials: int = 20
    workers: int = 1
    storage: str | None = None
    study: str | None = None
    timeout: float | None = None
    out: str | None = None
    overrides: tuple[str, ...] = ()
    data: str | None = None
    data_dir: str | None = None
    objectives: tuple[str, ...] | None = None
    seed: int | None = None
    threads: int | None = None
    command: str = ""


@dataclass(frozen=True)
class Resolved:
    """A validated job: base config as a raw dict, the space, names and paths."""

    job: TuneJob
    base: dict[str, Any]
    dataset: str
    space: SearchSpace
    study_name: str
    out: Path
    storage: str  # URL or "journal:<path>"


@dataclass
class TuneResult:
    """Where the outputs went and what the study holds."""

    study_name: str
    storage: str
    out: Path
    n_trials: int
    states: dict[str, int]
    best_yaml: Path | None
    summary_md: Path
    files: list[Path] = field(default_factory=list)
    best_values: list[float] | None = None
    best_params: dict[str, Any] | None = None


# ------------------------------------------------------------------------------------ resolve
def resolve(job: TuneJob) -> Resolved:
    """Validate everything that can be checked before a trial runs (config, space, names)."""
    from forecasting.forecaster.runs import load_run_config
    from forecasting.core.config import to_dict

    if job.trials < 0 or job.workers < 1:
        raise ForecastingError(f"--trials must be >= 0 and --workers >= 1 (got {job.trials}, {job.workers})")
    if job.timeout is not None and job.timeout <= 0:
        raise ForecastingError(f"--timeout must be > 0 seconds, got {job.timeout}")
    config, dataset, _ = load_run_config(job.config, list(job.overrides), job.data)
    if not dataset:
        raise ForecastingError(f"{job.config} names no dataset; pass --data PATH_OR_NAME or add 'dataset: NAME' to the config")
    space = load_space(job.space, job.objectives)
    if job.seed is not None:
        space = dataclasses.replace(space, sampler=dataclasses.replace(space.sampler, seed=int(job.seed)))
    base = to_dict(config)
    space.check_against(base)
    name = job.study or f"{Path(job.config).stem if job.config else 'config'}-{Path(job.space).stem}"
    if not name or any(ch in name for ch in "/\\"):
        raise ForecastingError(f"study name {name!r} must be non-empty and contain no slashes")
    out = Path(job.out) if job.out else DEFAULT_ROOT / name
    storage = job.storage or f"journal:{out / JOURNAL_NAME}"
    if "://" not in storage and not storage.startswith("journal:"):
        storage = f"journal:{storage}"
    # Before any trial: the report folder and a journal file must be writable (checked, nothing created yet).
    ensure_writable(out, "--out", kind="dir")
    if storage.startswith("journal:"):
        ensure_writable(storage[len("journal:"):], "--storage" if job.storage else "the study journal (--storage)")
    return Resolved(job, base, dataset, space, name, out, storage)


def make_storage(url: str) -> Any:
    """An Optuna storage: ``journal:PATH`` -> journal file (process-safe), else an RDB URL.

    RDB storages get a heartbeat, so a trial whose worker died (killed machine, OOM) is marked
    FAIL after the grace period instead of staying RUNNING forever.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if url.startswith("journal:"):
        path = Path(url[len("journal:"):])
        path.parent.mkdir(parents=True, exist_ok=True)
        return JournalStorage(JournalFileBackend(str(path)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat is "experimental"
            return optuna.storages.RDBStorage(url, heartbeat_interval=60, grace_period=300,
                                              engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else None)
    except ImportError as exc:
        raise ForecastingError(f"storage {url!r} needs a database driver that is not installed ({exc}); "
                               "e.g. pip install psycopg2-binary for PostgreSQL or pymysql for MySQL") from exc
    except Exception as exc:  # noqa: BLE001 - connection/URL problems are the user's to fix
        raise ForecastingError(f"cannot open the study storage {url!r}: {type(exc).__name__}: {str(exc).splitlines()[0]}") from exc


def _directions(space: SearchSpace) -> list[str]:
    return ["minimize"] * len(space.objectives)


def _fingerprint(res: Resolved) -> dict[str, Any]:
    # What makes two commands ask the same question. The device is left out: machines with and
    # without a GPU may work on one study.
    base = {k: v for k, v in res.base.items() if k != "device"}
    base["training"] = {k: v for k, v in base.get("training", {}).items() if k != "device"}
    return {
        "base_config": base,
        "dataset": res.dataset,
        "space": {p.key: p.describe() for p in res.space.params},
        "objectives": list(res.space.objectives),
        "evaluation": dataclasses.asdict(res.space.evaluation),
    }


def open_study(res: Resolved, create: bool = True, sampler: Any = None, pruner: Any = None) -> Any:
    """Create (or load) the study and check that it was made for the same config and space."""
    import optuna

    storage = make_storage(res.storage)
    fp = json.loads(json.dumps(_fingerprint(res), default=str))
    if create:
        study = optuna.create_study(storage=storage, study_name=res.study_name, directions=_directions(res.space),
                                    load_if_exists=True, sampler=sampler, pruner=pruner)
    else:
        study = optuna.load_study(study_name=res.study_name, storage=storage, sampler=sampler, pruner=pruner)
    stored = study.user_attrs.get("fingerprint")
    if stored is None:
        study.set_user_attr("fingerprint", fp)
        study.set_user_attr("objectives", list(res.space.objectives))
    elif stored != fp:
        diff = sorted(k for k in fp if stored.get(k) != fp[k])
        raise ForecastingError(
            f"study {res.study_name!r} in {res.storage} was created with a different {', '.join(diff)}; "
            "use another --study name (or the original config/space/--set values)"
        )
    if len(study.directions) != len(res.space.objectives):
        raise ForecastingError(f"study {res.study_name!r} has {len(study.directions)} objective(s), the space asks for "
                               f"{len(res.space.objectives)}; use another --study name")
    return study


def _sampler(space: SearchSpace, worker: int) -> Any:
    import optuna

    s = space.sampler
    seed = s.seed + worker
    if s.kind == "grid":
        return optuna.samplers.GridSampler(space.grid(), seed=seed)
    if s.kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # multivariate TPE models the λ × S interaction; constant_liar keeps parallel workers from
    # proposing the same point while a trial is running.
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=s.n_startup_trials, multivariate=s.multivariate,
                                      constant_liar=True)


def _pruner(space: SearchSpace) -> Any:
    import optuna

    p = space.pruner
    if space.multi_objective or p.kind == "none":
        return optuna.pruners.NopPruner()
    if p.kind == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps)
    if p.kind == "percentile":
        return optuna.pruners.PercentilePruner(p.percentile, n_startup_trials=p.n_startup_trials,
                                               n_warmup_steps=p.n_warmup_steps)
    return optuna.pruners.HyperbandPruner(min_resource=max(1, p.n_warmup_steps), reduction_factor=p.reduction_factor)


# ------------------------------------------------------------------------------------ run
def run_worker(res: Resolved, n_trials: int, worker: int = 0, threads: int | None = None) -> None:
    """Run ``n_trials`` trials of the study in this process (the body of each ``--workers`` process)."""
    import socket
    import warnings

    import optuna
    import torch

    from forecasting.data import load_series
    from forecasting.tuning.objective import TrialRunner

    if threads:
        torch.set_num_threads(threads)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    from forecasting.core.config import from_dict
    from forecasting.forecaster.config import DataSection

    # read as `forecasting train` reads with the same config (time format, columns, encoding, ...)
    data = from_dict(DataSection, res.base.get("data"), "data")
    frame = load_series(res.dataset, data_dir=res.job.data_dir, **data.read_options())
    study = open_study(res, create=False, sampler=_sampler(res.space, worker), pruner=_pruner(res.space))
    runner = TrialRunner(res.base, res.space, frame, worker=f"{socket.gethostname()}/{worker}")
    study.optimize(runner, n_trials=n_trials, timeout=res.job.timeout, catch=(Exception,), gc_after_trial=True)


def _worker_entry(res: Resolved, n_trials: int, worker: int, threads: int | None, level: int) -> None:
    # Spawned process: fresh interpreter, so logging is configured again here.
    import optuna

    logging.basicConfig(level=level, format=f"%(levelname)s worker{worker} %(name)s: %(message)s")
    optuna.logging.set_verbosity(optuna.logging.INFO if level <= logging.INFO else optuna.logging.WARNING)
    run_worker(res, n_trials, worker, threads)


def split_trials(total: int, workers: int) -> list[int]:
    """``total`` trials over ``workers`` processes as evenly as possible (no zero-trial workers)."""
    base, extra = divmod(total, workers)
    return [n for n in (base + (1 if i < extra else 0) for i in range(workers)) if n > 0]


def tune(job: TuneJob) -> TuneResult:
    """Run the sweep and write the report (best YAML, plots, Markdown summary) under ``out``.

    Raises:
        ForecastingError: a bad config/space/storage, or a worker process that crashed (the
            trials it finished stay in the storage; the report is still written).
    """
    import optuna

    from forecasting.tuning.report import write_report

    res = resolve(job)
    res.out.mkdir(parents=True, exist_ok=True)
    level = logging.getLogger().getEffectiveLevel()
    optuna.logging.set_verbosity(optuna.logging.INFO if level <= logging.INFO else optuna.logging.WARNING)
    study = open_study(res, create=True)  # create once here so that workers only load it
    crashed: list[str] = []
    trials = job.trials
    if trials > 0 and res.space.sampler.kind == "grid":
        trials = min(trials, enqueue_grid(study, res.space))
        if trials == 0:
            log.info("study %s: every grid cell has a trial already; only the report is written", res.study_name)
    if trials > 0:
        counts = split_trials(trials, job.workers)
        threads = job.threads or (max(1, (os.cpu_count() or 1) // len(counts)) if len(counts) > 1 else None)
        log.info("study %s: %d trial(s) on %d worker(s), storage %s", res.study_name, trials, len(counts), res.storage)
        if len(counts) == 1:
            run_worker(res, counts[0], 0, threads)
        else:
            crashed = _run_processes(res, counts, threads, level)
    study = open_study(res, create=False)
    result = write_report(study, res)
    if crashed:
        raise ForecastingError(f"worker process(es) {', '.join(crashed)} exited with an error (see the log above); "
                               f"finished trials are kept in {res.storage} and the report {result.summary_md} was written")
    return result


def enqueue_grid(study: Any, space: SearchSpace) -> int:
    """Queue every grid cell that has no trial yet; returns the number of cells waiting.

    Optuna's GridSampler picks cells independently in each worker, and parallel workers can pick
    the same cell at the same moment (duplicates, and cells never run). Queued trials are instead
    claimed atomically through the storage, so every worker, local or remote, takes a different cell.
    """
    import itertools

    from optuna.trial import TrialState

    grid = space.grid()
    seen = {tuple(sorted(t.params.items())) for t in study.get_trials(deepcopy=False)
            if t.state != TrialState.WAITING}
    # A queued trial keeps its values in the system attribute "fixed_params" until a worker claims it.
    waiting = {tuple(sorted(t.system_attrs.get("fixed_params", t.params).items()))
               for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))}
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values))
        key = tuple(sorted(params.items()))
        if key not in seen and key not in waiting:
            study.enqueue_trial(params)
            waiting.add(key)
    return len(waiting)


def _run_processes(res: Resolved, counts: Sequence[int], threads: int | None, level: int) -> list[str]:
    import multiprocessing as mp

    ctx = mp.get_context("spawn")  # fork after torch/optuna threads start is unsafe
    procs = [ctx.Process(target=_worker_entry, args=(res, n, i, threads, level), name=f"tune-worker{i}")
             for i, n in enumerate(counts)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(timeout=10)
        raise
    return [f"{p.name} (exit {p.exitcode})" for p in procs if p.exitcode != 0]


def states(study: Any) -> dict[str, int]:
    """Number of trials per state name (COMPLETE, PRUNED, FAIL, RUNNING, ...)."""
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out

