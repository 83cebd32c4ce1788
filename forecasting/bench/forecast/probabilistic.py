"""Probabilistic forecasting benchmark: Bayesian Koopa (ScoreVI) against every peer (issue 5, item 4).

``forecasting bench forecast --suite probabilistic [--datasets ...] [--horizons ...] --out DIR
[--quick] [--samples 100] [--seed] [--device] [--methods ...]``

For every (dataset, horizon) — ETTh1, ETTh2, exchange_rate (H = 48, 96) and national_illness
(H = 24, 36) by default — with the docs/koopa.md protocol (lookback ``2H``, splits, scaler fitted on
training rows), each method of :data:`forecasting.bench.forecast.prob_methods.METHODS` runs in **its own
process** (:mod:`forecasting.bench.forecast.prob_worker`: peak RSS per method; a crash or timeout is an
error row, never a missing one), draws ``--samples`` predictive samples per test window, and is
scored with the docs/evaluation.md metrics on the scaled data. Writes ``<out>/probabilistic.json``,
``<out>/probabilistic.md`` and PNGs under ``<out>/probabilistic/``; partial results are written
after every method, and ``--resume`` reuses finished rows of an interrupted run with the same
settings. Goals are measured and reported (:mod:`forecasting.bench.forecast.prob_report`), never asserted.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUITE = "probabilistic"
PROB_HORIZONS = {"ETTh1": (48, 96), "ETTh2": (48, 96), "exchange_rate": (48, 96), "national_illness": (24, 36)}
QUICK_HORIZONS = {"ETTh1": 96, "ETTh2": 96, "exchange_rate": 96, "national_illness": 24}
DEFAULT_TIMEOUT_S = 1800
ANALYSIS_FILE = f"{SUITE}.analysis.md"  # hand-written reading of a run's numbers, embedded in the Markdown when present


def add_suite_arguments(parser: argparse.ArgumentParser) -> None:
    """Options only the probabilistic suite reads (``forecast.py`` adds them to the shared parser)."""
    from forecasting.bench.forecast.prob_methods import DEFAULT_METHODS, METHODS, Budget

    full, quick = Budget(), Budget.quick()  # defaults of the budget flags, stated from the source (never stale)

    g = parser.add_argument_group("probabilistic suite")
    g.add_argument("--samples", type=int, default=100, help="predictive samples per window (default: %(default)s)")
    g.add_argument("--methods", nargs="+", default=None, metavar="NAME",
                   help=f"methods to run (default: {' '.join(DEFAULT_METHODS)}; known: {' '.join(METHODS)})")
    g.add_argument("--protocol", default="koopa", choices=["koopa", "probts"],
                   help="windowing/scoring protocol (default: %(default)s): koopa = docs/evaluation.md's protocol 1 "
                        "(docs/koopa.md), probts = its protocol 2, written to <out>/probts.json/.md")
    g.add_argument("--max-test-windows", type=int, default=None,
                   help=f"test windows scored per cell (strided; default {full.max_test_windows}, quick {quick.max_test_windows})")
    g.add_argument("--stat-windows", type=int, default=None,
                   help=f"of those, windows given to ETS (default {full.stat_windows}, quick {quick.stat_windows})")
    g.add_argument("--koopa-epochs", type=int, default=None,
                   help=f"epochs of every Koopa variant (default {full.koopa_epochs}, quick {quick.koopa_epochs})")
    g.add_argument("--koopa-batches", type=int, default=None,
                   help=f"max batches per epoch of every Koopa variant (default {full.koopa_batches}, quick {quick.koopa_batches})")
    g.add_argument("--method-timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per method before it becomes an error row")
    g.add_argument("--in-process", action="store_true", help="run methods in this process (no per-method peak RSS; tests)")
    g.add_argument("--resume", action="store_true", help="reuse finished rows of <out>/probabilistic.json run with the same settings")
    from forecasting.bench.forecast.probts import add_arguments as probts_arguments

    probts_arguments(parser)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Standalone use: the shared forecast options (which include this suite's)."""
    from forecasting.bench.forecast.main import add_arguments as shared

    shared(parser)
    if not any(a.dest == "samples" for a in parser._actions):
        add_suite_arguments(parser)


def prob_horizons(dataset: str, requested: list[int] | None, quick: bool) -> list[int]:
    if requested:
        return list(requested)[:1] if quick else list(requested)
    if quick:
        return [QUICK_HORIZONS.get(dataset, 96)]
    return list(PROB_HORIZONS.get(dataset, (48, 96)))


def make_budget(args: argparse.Namespace):
    from forecasting.bench.forecast.prob_methods import Budget

    budget = Budget.quick() if args.quick else Budget()
    changes = {k: v for k, v in {"max_test_windows": getattr(args, "max_test_windows", None),
                                 "stat_windows": getattr(args, "stat_windows", None),
                                 "koopa_epochs": getattr(args, "koopa_epochs", None),
                                 "koopa_batches": getattr(args, "koopa_batches", None)}.items() if v is not None}
    budget = dataclasses.replace(budget, **changes)
    if budget.warm_start_epochs >= budget.koopa_epochs:
        # A short --koopa-epochs keeps at least one variational epoch (the warm start is the rest).
        log.info("--koopa-epochs %d: MAP warm start shortened to %d epoch(s)", budget.koopa_epochs, budget.koopa_epochs - 1)
        budget = dataclasses.replace(budget, warm_start_epochs=budget.koopa_epochs - 1)
    return budget


def _methods(args: argparse.Namespace) -> list[str]:
    from forecasting.bench.forecast.prob_methods import DEFAULT_METHODS

    names = [n for raw in (args.methods or DEFAULT_METHODS) for n in raw.replace(",", " ").split()]
    return list(dict.fromkeys(names))


def run(args: argparse.Namespace) -> int:
    from forecasting.bench.forecast.prob_methods import PROTOCOLS, make_spec
    from forecasting.core.device import resolve_device
    from forecasting.core.errors import ForecastingError

    protocol = getattr(args, "protocol", "koopa")
    if protocol == "probts":
        from forecasting.bench.forecast.probts import run as run_probts

        return run_probts(args)
    if protocol not in PROTOCOLS:
        raise ForecastingError(f"unknown --protocol {protocol}; use koopa or probts")
    n_samples = int(getattr(args, "samples", 100))
    if n_samples < 2:
        raise ForecastingError("--samples must be >= 2 (coverage, CRPS and NLL need a spread); the benchmark uses 100")
    budget = make_budget(args)
    methods = _methods(args)
    device = str(resolve_device(getattr(args, "device", "auto")))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = getattr(args, "command_line", None) or "forecasting bench forecast " + " ".join(sys.argv[1:])
    settings = {"budget": dataclasses.asdict(budget), "samples": n_samples, "seed": args.seed, "protocol": protocol,
                "device": device, "threads": int(getattr(args, "threads", 0) or 0)}
    previous = _previous_rows(out, settings) if getattr(args, "resume", False) else {}
    per_ds = {ds: prob_horizons(ds, args.horizons, args.quick) for ds in args.datasets}
    # First horizon of every dataset before any second one: an interrupted run still covers all datasets.
    cells = [(ds, hs[i]) for i in range(max(map(len, per_ds.values()), default=0)) for ds, hs in per_ds.items() if i < len(hs)]
    fan_horizon = {ds: hs[0] for ds, hs in per_ds.items() if hs}
    figures: dict[str, list[str]] = {}
    reused = 0
    timeout = float(getattr(args, "method_timeout", DEFAULT_TIMEOUT_S))
    in_process = bool(getattr(args, "in_process", False))
    log.info("probabilistic benchmark: %d cells x %d methods, %s; %s", len(cells), len(methods),
             "in-process" if in_process else "one process per method", budget.describe())
    t_start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="prob-bench-") as tmp:
        for ds, h in cells:
            for method in methods:
                key = (ds, h, method)
                if key in previous:
                    reused += 1
                    rows.append(previous[key])
                    log.info("%s H=%d %s: reused from the previous run", ds, h, method)
                    continue
                base = {"dataset": ds, "horizon": h, "method": method}
                try:
                    spec = make_spec(ds, h, method, samples=n_samples, seed=args.seed, device=device,
                                     data_dir=getattr(args, "data_dir", None), budget=budget, protocol=protocol,
                                     fan=(h == fan_horizon[ds]), threads=int(getattr(args, "threads", 0) or 0))
                except Exception as exc:  # noqa: BLE001 - a bad cell is an error row
                    rows.append({**base, "error": f"{type(exc).__name__}: {exc}"})
                    continue
                t0 = time.perf_counter()
                row = _run_in_process(spec) if in_process else _run_isolated(spec, timeout, Path(tmp))
                row = {**base, "lookback": spec["lookback"], **row}
                row.setdefault("seconds", {})["wall"] = time.perf_counter() - t0
                rows.append(row)
                _log_row(row)
                _write(out, rows, settings, command, methods, budget, time.perf_counter() - t_start, figures, partial=True,
                       reused=reused)
            figures.update(_figures(out, rows, methods, {(ds, h)}))
    wall = time.perf_counter() - t_start
    _write(out, rows, settings, command, methods, budget, wall, figures, partial=False, reused=reused)
    return 0


def _log_row(row: dict[str, Any]) -> None:
    if row.get("error"):
        log.error("%s H=%s %s: ERROR %s", row["dataset"], row["horizon"], row["method"], row["error"])
        return
    if "metrics" not in row:  # the step-timing pseudo method
        st = row.get("info", {}).get("step_timing", {})
        log.info("%s H=%s %s: %s", row["dataset"], row["horizon"], row["method"],
                 {k: round(v, 3) for k, v in st.get("seconds_per_step", {}).items()})
        return
    m, s = row["metrics"], row["seconds"]
    log.info("%s H=%s %-22s mse %.4f crps %.4f cov90 %.3f nll %.3f | train %.1fs predict %.1fs wall %.1fs rss %.0f MiB",
             row["dataset"], row["horizon"], row["method"], m["mse"], m["crps"], m["coverage_90"], m["nll"],
             s.get("train", 0.0), s.get("predict", 0.0), s.get("wall", 0.0), row.get("peak_rss_mb", 0.0))


def _run_in_process(spec: dict[str, Any]) -> dict[str, Any]:
    from forecasting.bench.forecast.prob_methods import run_cell_method

    try:
        row = run_cell_method(spec)
        row["peak_rss_note"] = "in-process run: high-water mark of the whole benchmark process so far"
        return row
    except Exception as exc:  # noqa: BLE001 - a failed method is an error row
        log.exception("%s H=%d %s failed", spec["dataset"], spec["horizon"], spec["method"])
        return {"error": f"{type(exc).__name__}: {exc}"}


def _run_isolated(spec: dict[str, Any], timeout: float, tmp: Path) -> dict[str, Any]:
    """One method in its own process (forked from a preloaded forkserver): its ``ru_maxrss`` is its peak RSS."""
    from forecasting.bench.forecast.prob_worker import run_isolated

    out_path = tmp / f"{spec['dataset']}_H{spec['horizon']}_{spec['method']}.json"
    return run_isolated(spec, out_path, timeout)


def _previous_rows(out: Path, settings: dict[str, Any]) -> dict[tuple, dict]:
    from forecasting.evaluation.results import reusable_rows

    return reusable_rows(out / f"{SUITE}.json", settings, lambda r: (r["dataset"], int(r["horizon"]), r["method"]))


def _figures(out: Path, rows: list[dict[str, Any]], methods: list[str], cells: set[tuple[str, int]]) -> dict[str, list[str]]:
    from forecasting.bench.forecast import prob_report

    try:
        return prob_report.make_figures(rows, out / SUITE, out, methods, only=cells)
    except Exception:  # noqa: BLE001 - figures never cost the numbers
        log.exception("figures failed")
        return {}


def _write(out: Path, rows: list[dict[str, Any]], settings: dict[str, Any], command: str, methods: list[str], budget,
           wall: float, figures: dict[str, list[str]], partial: bool, reused: int = 0) -> None:
    from forecasting.bench.forecast import prob_report
    from forecasting.evaluation.results import write_results

    summary = prob_report.summarise(rows)
    method_wall = sum(float(r.get("seconds", {}).get("wall", 0.0) or 0.0) for r in rows)
    markdown = prob_report.render_markdown(
        rows, summary, methods, _context(out, settings, budget, methods, wall, partial, reused, method_wall), figures)
    write_results(out, SUITE, rows, device=settings["device"], command=command, markdown=markdown,
                  extra={"settings": settings, "methods": methods, "budget_text": budget.describe(),
                         "wall_seconds": wall, "partial": partial, "rows_reused": reused,
                         "sum_method_wall_seconds": method_wall, "goals": summary["goals"],
                         "goal_values": summary["per_cell"], "figures": figures})
    if not partial:
        for name, g in summary["goals"].items():
            log.info("goal %s: %s (%s)", name, "not measured" if g["met"] is None else ("met" if g["met"] else "missed"),
                     g["value"])
        log.info("wrote %s/%s.json and .md (%.0f s)", out, SUITE, wall)


def _context(out: Path, settings: dict[str, Any], budget, methods: list[str], wall: float, partial: bool,
             reused: int = 0, method_wall: float | None = None) -> dict[str, Any]:
    analysis = out / ANALYSIS_FILE
    setup = setup_lines(settings, budget, methods, wall, partial)
    if reused:
        setup.append(f"--resume: {reused} rows were reused from an earlier invocation with identical settings; the sum of "
                     f"all rows' per-method wall times is {method_wall or 0.0:.0f} s.")
    return {"setup": setup, "notes": NOTES,
            "analysis_text": analysis.read_text(encoding="utf-8") if analysis.exists() else ""}


def rerender(out_dir: str | Path) -> Path:
    """Rewrite ``<out>/probabilistic.md`` from ``<out>/probabilistic.json`` (same rows, command and figures),
    e.g. after writing ``probabilistic.analysis.md``. The JSON is left untouched."""
    from forecasting.bench.forecast import prob_report
    from forecasting.bench.forecast.prob_methods import Budget
    from forecasting.core.atomic import atomic_write_text

    out = Path(out_dir)
    payload = json.loads((out / f"{SUITE}.json").read_text())
    rows, settings, methods = payload["rows"], payload["settings"], payload["methods"]
    budget = Budget(**settings["budget"])
    summary = prob_report.summarise(rows)
    body = prob_report.render_markdown(rows, summary, methods,
                                       _context(out, settings, budget, methods, payload["wall_seconds"], payload["partial"],
                                                payload.get("rows_reused", 0), payload.get("sum_method_wall_seconds")),
                                       payload.get("figures", {}))
    host = payload["host"]
    header = (f"# Benchmark: {SUITE}\n\nCreated {payload['created']} on {host['device']} (torch {host['torch']}, "
              f"{host['cpu_count']} CPUs).\n")
    if payload.get("command"):
        header += f"\nCommand:\n\n```\n{payload['command']}\n```\n"
    return atomic_write_text(out / f"{SUITE}.md", header + "\n" + body + "\n")


def setup_lines(settings: dict[str, Any], budget, methods: list[str], wall: float, partial: bool) -> list[str]:
    lines = [f"Protocol: {settings['protocol']} (docs/koopa.md: lookback 2H, ETT 12/4/4 months, others 70/10/20, scaler fitted on "
             "training rows, metrics on the standard-scaled data unless named `_original`).",
             f"Methods: {', '.join(methods)}; {settings['samples']} predictive samples per window; seed {settings['seed']}; "
             f"device {settings['device']}.",
             f"Budget: {budget.describe()}.",
             f"Wall time of the run: {wall:.0f} s{' (partial: still running or interrupted)' if partial else ''}."]
    return lines


NOTES = [
    "Every method runs in its own Python process; `peak RSS` is that process's high-water mark (`ru_maxrss`), which "
    "includes the interpreter, torch and gluonts imports (`rss_at_start_mb` in the JSON is the level after start-up).",
    "Test windows are an evenly strided subset of the stride-1 test windows, identical for every method of a cell; "
    "ETS (fitted per window and channel) is scored on an evenly spaced subset of those, and every other method is "
    "also scored on that subset (`metrics_stat_subset` in the JSON) for the ScoreVI-vs-ETS comparison.",
    "`mse` is the error of the sample mean, `mae` of the sample median; the deterministic-Koopa MSE of the goal is the "
    "conformal model's point forecast (the same network without intervals).",
    "`crps`: fair ensemble estimator (scoringrules, PWM form); `nll`: Gaussian KDE of the samples (Silverman bandwidth) "
    "for every method, so NLLs are comparable; `pit_error`: Wasserstein-1 distance of the randomised PIT to uniform; "
    "`msis` at α = 0.05 scaled by each window's in-sample seasonal-naive MAE; quantiles at the Weibull plotting position.",
    "Seasons: ETTh 24, exchange_rate 7 (daily rows), national_illness 52 (the seasonal naive gets max(L, 52) context rows; "
    "MSIS falls back to m = 1 when the season does not fit the lookback).",
    "Seconds are wall-clock on a shared 2-core machine with other jobs running; `train` includes validation passes, "
    "`per_step` (JSON) is the pure optimiser-step time of the main phase. Compare ratios within a cell.",
]


if __name__ == "__main__":  # python -m forecasting.bench.forecast.probabilistic --rerender DIR
    import argparse as _argparse

    _p = _argparse.ArgumentParser(description="re-render probabilistic.md from probabilistic.json")
    _p.add_argument("--rerender", required=True, metavar="DIR")
    print(rerender(_p.parse_args().rerender))
