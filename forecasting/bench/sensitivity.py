"""Sensitivity study: ScoreVI-Koopa's CRPS and coverage over proximal weight λ × MC samples S.

The ScoreVI paper (Kim 2026, arXiv 2602.05873) names λ and S as its sensitive hyperparameters;
this study makes that limitation visible on ETTh2 (H = 48):

1. a 4 × 3 grid (``configs/sweeps/sensitivity.yaml``, Optuna's GridSampler, no pruning), every cell
   with the same training budget (same epochs and batches; S changes the cost per step);
2. a small TPE search over the continuous box (``configs/sweeps/sensitivity_tpe.yaml``, median
   pruning) on the same budget, whose best trial is the *tuned* setting;
3. heatmaps of validation CRPS, test CRPS and test 90 % coverage with the tuned setting (★), the
   grid cell that validation selects (□) and the forecaster's default λ, S (○) marked, plus
   the table, in ``docs/results/sensitivity.{json,md}`` and ``docs/results/sensitivity/``.

Run (≈ 10 min of CPU with the default budget)::

    python -m forecasting.bench.sensitivity --out docs/results

Both studies go through :func:`forecasting.tuning.study.tune`, so their full reports (summary, best
YAML, history/importances/contour plots) land in ``<out>/sensitivity/{grid,tpe}/``; the Optuna
storage stays under ``runs/tune/`` (recreated on each run unless ``--resume``).
"""
from __future__ import annotations

import argparse
import logging
import math
import shlex
import sys
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SUITE = "sensitivity"
# ETTh2 at H = 48 with Koopa's setting for the shape (L = 2H, seg_len = H) and a small budget that is
# identical for every cell: 1 MAP warm-start epoch + 3 posterior epochs of 150 batches of 32 windows.
BUDGET = (
    "data.lookback=96", "data.horizon=48", "model.seg_len=48",
    "inference.warm_start_epochs=1", "training.epochs=3", "training.patience=3",
    "training.max_batches_per_epoch=150", "training.batch_size=32", "device=cpu",
)


def _default_setting() -> tuple[float, int]:
    """The forecaster's current ScoreVI default (λ, S): the ○ mark on the heatmaps."""
    from forecasting.forecaster.config import KoopaScoreVIConfig

    cfg = KoopaScoreVIConfig()
    return float(cfg.proximal_weight), int(cfg.mc_samples)


DEFAULT_SETTING = _default_setting()


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default="configs/ETTh2.yaml", help="base config (default %(default)s)")
    p.add_argument("--grid", default="configs/sweeps/sensitivity.yaml", help="grid space (λ × S)")
    p.add_argument("--tpe", default="configs/sweeps/sensitivity_tpe.yaml", help="TPE space for the tuned mark")
    p.add_argument("--tpe-trials", type=int, default=8, help="TPE trials (0 = mark only the validation-selected cell)")
    p.add_argument("--out", default="docs/results", help="results folder (default %(default)s)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="extra overrides after the study's budget (repeatable)")
    p.add_argument("--data-dir", help="directory holding ETTh2.csv (else $FORECASTING_DATA, ../shared/data)")
    p.add_argument("--workers", type=int, default=1, help="worker processes per study (default %(default)s)")
    p.add_argument("--resume", action="store_true", help="keep the existing studies under runs/tune/ and add to them")
    p.add_argument("--report-only", action="store_true",
                   help="run no trial: rebuild the reports, heatmap and tables from the studies under runs/tune/")


def run(args: argparse.Namespace) -> int:
    from forecasting.evaluation.results import write_results
    from forecasting.tuning.study import JOURNAL_NAME, DEFAULT_ROOT, TuneJob, tune

    command = getattr(args, "command_line", None) or "python -m forecasting.bench.sensitivity " + " ".join(
        shlex.quote(a) for a in sys.argv[1:])
    out = Path(args.out)
    figures = out / SUITE
    rerendered = False
    if getattr(args, "report_only", False) and (out / f"{SUITE}.json").is_file():
        import json

        # The numbers come from the run that measured them: keep its command in the result files.
        command = json.loads((out / f"{SUITE}.json").read_text(encoding="utf-8")).get("command") or command
        rerendered = True
    overrides = tuple(BUDGET) + tuple(args.overrides)
    c0 = time.process_time()
    studies: dict[str, Any] = {}
    for kind, space, trials in (("grid", args.grid, 1), ("tpe", args.tpe, args.tpe_trials)):
        if trials <= 0:
            continue
        name = f"{SUITE}-{kind}"
        journal = DEFAULT_ROOT / name / JOURNAL_NAME
        if args.report_only:
            trials = 0
        else:
            if journal.exists() and not args.resume:
                journal.unlink()  # a fresh measurement each run
            trials = trials if kind == "tpe" else _grid_size(space)
        job = TuneJob(config=args.config, space=space, trials=trials,
                      workers=args.workers, storage=f"journal:{journal}", study=name, out=str(figures / kind),
                      overrides=overrides, data_dir=args.data_dir, command=command)
        studies[kind] = tune(job)
    grid_trials = _load(studies["grid"])
    tpe_trials = _load(studies["tpe"]) if "tpe" in studies else []
    rows = _one_per_cell([_row(t, "grid") for t in grid_trials]) + [_row(t, "tpe") for t in tpe_trials]
    marks = _marks(rows)
    for r in rows:
        r["selected_by_validation"] = r is marks.get("grid_best")
        r["tuned"] = r is marks.get("tuned")
    heatmap = _heatmap(rows, marks, figures / "heatmap.png")
    # Wall clock from the trials' own timestamps (so that --report-only reports the measurement's time).
    wall = _span(grid_trials) + _span(tpe_trials)
    cpu = time.process_time() - c0
    cpu_trials = sum(r["seconds"].get("train_cpu") or 0.0 for r in rows)
    markdown = _markdown(rows, marks, heatmap, out, command, wall, cpu_trials, overrides)
    if rerendered:
        markdown += "\n_Tables and figures re-rendered from the stored studies (`--report-only`); numbers unchanged._\n"
    write_results(out, SUITE, rows, device="cpu", command=command, markdown=markdown,
                  extra={"budget": list(overrides), "wall_seconds": round(wall, 1),
                         "cpu_seconds_report": round(cpu, 1), "cpu_seconds_training": round(cpu_trials, 1),
                         "default_setting": list(DEFAULT_SETTING)})
    print(out / f"{SUITE}.md")
    return 0


def _span(trials: list[Any]) -> float:
    starts = [t.datetime_start for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete for t in trials if t.datetime_complete is not None]
    return (max(ends) - min(starts)).total_seconds() if starts and ends else 0.0


def _grid_size(space_path: str) -> int:
    from forecasting.tuning.space import load_space

    n = 1
    for values in load_space(space_path).grid().values():
        n *= len(values)
    return n


def _load(result: Any) -> list[Any]:
    import optuna

    from forecasting.tuning.study import make_storage

    study = optuna.load_study(study_name=result.study_name, storage=make_storage(result.storage))
    return study.get_trials(deepcopy=False)


def _row(t: Any, search: str) -> dict[str, Any]:
    from forecasting.tuning.space import MC_SAMPLES, PROXIMAL_WEIGHT

    a = t.user_attrs
    row: dict[str, Any] = {
        "dataset": "ETTh2", "horizon": 48, "method": "scorevi-koopa", "search": search, "trial": t.number,
        "proximal_weight": float(t.params[PROXIMAL_WEIGHT]), "mc_samples": int(t.params[MC_SAMPLES]),
        "state": t.state.name,
        "metrics": {"val_crps": a.get("val_crps"), "val_coverage_90": a.get("val_coverage_90"),
                    "crps": a.get("test_crps"), "coverage_90": a.get("test_coverage_90"),
                    "interval_width_90": a.get("test_interval_width_90"), "mse": a.get("test_mse")},
        "seconds": {"train": a.get("train_seconds"), "train_cpu": a.get("train_cpu_seconds")},
    }
    if t.state.name == "FAIL":
        row["error"] = a.get("error", "failed")
    if t.state.name == "PRUNED":
        row["pruned_at_epoch"] = a.get("pruned_at_epoch")
    return row


def _one_per_cell(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per grid cell (a completed trial first), in case a study holds a cell twice."""
    out: dict[tuple[float, int], dict[str, Any]] = {}
    for r in rows:
        key = (r["proximal_weight"], r["mc_samples"])
        if key not in out or (not _ok(out[key]) and _ok(r)):
            out[key] = r
    return list(out.values())


def _ok(r: dict[str, Any]) -> bool:
    v = r["metrics"].get("val_crps")
    return r["state"] == "COMPLETE" and v is not None and math.isfinite(v)


def _marks(rows: list[dict[str, Any]]) -> dict[str, Any]:
    grid = [r for r in rows if r["search"] == "grid" and _ok(r)]
    tpe = [r for r in rows if r["search"] == "tpe" and _ok(r)]
    marks: dict[str, Any] = {}
    if grid:
        marks["grid_best"] = min(grid, key=lambda r: r["metrics"]["val_crps"])
    pool = tpe or grid
    if pool:
        marks["tuned"] = min(pool, key=lambda r: r["metrics"]["val_crps"])
    return marks


def _axes(rows: list[dict[str, Any]]) -> tuple[list[float], list[int]]:
    grid = [r for r in rows if r["search"] == "grid"]
    return sorted({r["proximal_weight"] for r in grid}), sorted({r["mc_samples"] for r in grid})


def _cell(rows: list[dict[str, Any]], lam: float, s: int) -> dict[str, Any] | None:
    return next((r for r in rows if r["search"] == "grid" and r["proximal_weight"] == lam and r["mc_samples"] == s), None)


def _position(values: list[float], v: float) -> float:
    """Continuous position of ``v`` on a log-spaced categorical axis (for the TPE mark)."""
    logs = [math.log(x) for x in values]
    lv = math.log(v)
    if len(logs) == 1:
        return 0.0
    for i in range(len(logs) - 1):
        if lv <= logs[i + 1] or i == len(logs) - 2:
            return i + (lv - logs[i]) / (logs[i + 1] - logs[i])
    return float(len(logs) - 1)


def _heatmap(rows: list[dict[str, Any]], marks: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    lams, ss = _axes(rows)
    panels = [("val_crps", "validation CRPS (scaled)", "viridis_r"), ("crps", "test CRPS (scaled)", "viridis_r"),
              ("coverage_90", "test 90% coverage", "RdBu")]
    with plt.style.context("default"):  # optuna's matplotlib plots switch the global style to ggplot
        return _draw(rows, marks, path, lams, ss, panels, plt, np)


def _draw(rows, marks, path, lams, ss, panels, plt, np) -> Path:
    from forecasting.core.atomic import atomic_write_with

    box = {"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.75}
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    for ax, (key, title, cmap) in zip(axes, panels):
        grid = np.full((len(ss), len(lams)), np.nan)
        for i, s in enumerate(ss):
            for j, lam in enumerate(lams):
                r = _cell(rows, lam, s)
                if r is not None and _ok(r) and r["metrics"].get(key) is not None:
                    grid[i, j] = r["metrics"][key]
        if key == "coverage_90":
            from matplotlib.colors import TwoSlopeNorm

            lo = min(0.8, float(np.nanmin(grid)) - 0.01) if np.isfinite(grid).any() else 0.8
            # white = nominal 0.90; red = under-covering (too narrow), blue = over-covering (too wide)
            im = ax.imshow(grid, origin="lower", cmap=cmap, norm=TwoSlopeNorm(vcenter=0.9, vmin=lo, vmax=1.0), aspect="auto")
        else:
            im = ax.imshow(grid, origin="lower", cmap=cmap, aspect="auto")
        fig.colorbar(im, ax=ax, shrink=0.85)
        for i, s in enumerate(ss):
            for j, lam in enumerate(lams):
                r = _cell(rows, lam, s)
                if r is None:
                    continue
                if not _ok(r):
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="xx", color="0.5"))
                    ax.text(j, i, "failed", ha="center", va="center", fontsize=9, color="0.2")
                else:
                    ax.text(j, i + 0.22, f"{grid[i, j]:.3f}", ha="center", va="center", fontsize=9, bbox=box)
        if marks.get("grid_best") is not None:
            b = marks["grid_best"]
            j, i = lams.index(b["proximal_weight"]), ss.index(b["mc_samples"])
            ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=2.5, color="red"))
        if DEFAULT_SETTING[0] in lams and DEFAULT_SETTING[1] in ss:
            ax.plot(lams.index(DEFAULT_SETTING[0]), ss.index(DEFAULT_SETTING[1]) - 0.18, "o", mfc="none", mec="black",
                    ms=11, mew=1.5)
        t = marks.get("tuned")
        if t is not None:
            ax.plot(_position(lams, t["proximal_weight"]), _position([float(s) for s in ss], t["mc_samples"]), "*",
                    color="gold", mec="black", ms=17)
        ax.set_xticks(range(len(lams)), [f"{v:g}" for v in lams])
        ax.set_yticks(range(len(ss)), [str(v) for v in ss])
        ax.grid(False)
        ax.set_xlabel("proximal weight λ (log-spaced)")
        ax.set_ylabel("MC samples S")
        ax.set_title(title)
    fig.suptitle("ScoreVI-Koopa on ETTh2, H = 48: □ cell chosen by validation CRPS, ★ TPE-tuned, "
                 f"○ default (λ={DEFAULT_SETTING[0]:g}, S={DEFAULT_SETTING[1]})")
    fig.tight_layout()
    try:
        return atomic_write_with(path, lambda tmp: fig.savefig(tmp, dpi=110))
    finally:
        plt.close(fig)


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{digits}f}" if isinstance(v, float) else str(v)


def _markdown(rows: list[dict[str, Any]], marks: dict[str, Any], heatmap: Path, out: Path, command: str,
              wall: float, cpu: float, overrides: tuple[str, ...]) -> str:
    lams, ss = _axes(rows)
    ok = [r for r in rows if r["search"] == "grid" and _ok(r)]
    lines = [
        "## Sensitivity of ScoreVI-Koopa to the proximal weight λ and the MC sample count S (ETTh2, H = 48)",
        "",
        "The ScoreVI paper names λ and S as its sensitive hyperparameters. Every cell below is one fit with the "
        "**same training budget**: " + ", ".join(f"`{o}`" for o in overrides) + " on top of `configs/ETTh2.yaml` "
        "(ScoreVI, diagonal family, MAP warm start with the prior centred there). S changes the cost of each step, "
        "not the number of steps. Metrics: CRPS on the standard-scaled data (100 samples, 300 evenly spaced "
        "windows, seed 0), 90 % central-interval coverage; validation chooses, test only reports.",
        "",
        f"Budget actually spent: {wall / 60:.1f} min wall clock, {cpu / 60:.1f} min CPU in the fits (wall time is "
        "inflated when the machine's cores are shared with other jobs).",
        "",
        f"![heatmaps]({heatmap.relative_to(out).as_posix()})",
        "",
        "□ = grid cell with the lowest validation CRPS (what a grid search picks); ★ = best of the TPE search over "
        "the continuous box (`configs/sweeps/sensitivity_tpe.yaml`); "
        f"○ = the forecaster's default (λ = {DEFAULT_SETTING[0]:g}, S = {DEFAULT_SETTING[1]}).",
        "",
    ]
    for key, title in (("crps", "Test CRPS"), ("coverage_90", "Test 90 % coverage"), ("val_crps", "Validation CRPS")):
        lines += [f"### {title} (rows: S, columns: λ)", "", "| S \\ λ | " + " | ".join(f"{v:g}" for v in lams) + " |",
                  "|---|" + "---|" * len(lams)]
        for s in ss:
            cells = []
            for lam in lams:
                r = _cell(rows, lam, s)
                if r is None:
                    cells.append("")
                elif not _ok(r):
                    cells.append("failed")
                else:
                    mark = (" □" if r is marks.get("grid_best") else "") + (" ○" if (lam, s) == DEFAULT_SETTING else "")
                    cells.append(_fmt(r["metrics"].get(key)) + mark)
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        lines += [""]
    lines += ["### Training seconds per cell: CPU (wall on the shared machine)", "",
              "| S \\ λ | " + " | ".join(f"{v:g}" for v in lams) + " |", "|---|" + "---|" * len(lams)]
    for s in ss:
        secs = [(_cell(rows, lam, s) or {}).get("seconds", {}) for lam in lams]
        lines.append(f"| {s} | " + " | ".join(f"{_fmt(x.get('train_cpu'), 1)} ({_fmt(x.get('train'), 0)})" for x in secs) + " |")
    lines += [""]
    failed = [r for r in rows if r["state"] == "FAIL"]
    if failed:
        lines += ["### Failed fits", ""]
        lines += [f"- {r['search']} λ = {r['proximal_weight']:g}, S = {r['mc_samples']}: {str(r.get('error', '')).splitlines()[0][:300]}"
                  for r in failed]
        lines += [""]
    tpe = [r for r in rows if r["search"] == "tpe"]
    if tpe:
        lines += ["### TPE search (same budget; median pruning from the per-epoch validation CRPS)", "",
                  "| trial | λ | S | state | val CRPS | test CRPS | test coverage_90 |", "|---|---|---|---|---|---|---|"]
        for r in sorted(tpe, key=lambda r: r["trial"]):
            m = r["metrics"]
            star = " ★" if r is marks.get("tuned") else ""
            lines.append(f"| {r['trial']}{star} | {r['proximal_weight']:.3g} | {r['mc_samples']} | {r['state'].lower()} | "
                         f"{_fmt(m.get('val_crps'))} | {_fmt(m.get('crps'))} | {_fmt(m.get('coverage_90'))} |")
        lines += [""]
    if ok:
        crps = [r["metrics"]["crps"] for r in ok if r["metrics"].get("crps") is not None]
        cov = [r["metrics"]["coverage_90"] for r in ok if r["metrics"].get("coverage_90") is not None]
        lines += ["### What the grid shows", ""]
        if crps:
            lines += [f"- Test CRPS over the {len(ok)} converged cells: {min(crps):.4f} – {max(crps):.4f} "
                      f"(worst / best = {max(crps) / min(crps):.2f}×)."]
        if cov:
            lines += [f"- Test 90 % coverage: {min(cov):.3f} – {max(cov):.3f} (nominal 0.900)."]
        n_grid = len([r for r in rows if r["search"] == "grid"])
        if failed:
            lines += [f"- {sum(1 for r in failed if r['search'] == 'grid')} of {n_grid} "
                      "grid cells failed (see above): the limitation the paper names, made visible."]
        else:
            lines += [f"- Every one of the {n_grid} cells converged, λ = 1 included (the forecaster's config records λ = 1 "
                      "and 3 diverging on ETTh2 in an earlier state of the code; in this run the MAP warm start, the prior "
                      "centred on it and the engine's adaptive proximal damping `proximal_adaptive = 1` are on)."]
        vals = [r["metrics"]["val_crps"] for r in ok]
        if crps and max(crps) / min(crps) < 1.05:
            lines += [f"- At this budget the sensitivity is small: a {100 * (max(crps) / min(crps) - 1):.1f} % spread in test "
                      f"CRPS and {100 * (max(vals) / min(vals) - 1):.1f} % in validation CRPS across two decades of S "
                      "and three of λ: the ranking of cells rests on differences of the order of the evaluation noise, "
                      "and a sweep over these two knobs gains little accuracy here."]
        by_s = {s: [r["seconds"].get("train_cpu") for r in ok if r["mc_samples"] == s and r["seconds"].get("train_cpu")]
                for s in sorted({r["mc_samples"] for r in ok})}
        cost = ", ".join(f"S = {s}: {sum(v) / len(v):.0f} s" for s, v in by_s.items() if v)
        if cost:
            lines += [f"- Training cost, mean CPU seconds per fit: {cost}."]
        t, g = marks.get("tuned"), marks.get("grid_best")
        if g is not None:
            lines += [f"- Validation picks λ = {g['proximal_weight']:g}, S = {g['mc_samples']} on the grid "
                      f"(test CRPS {_fmt(g['metrics'].get('crps'))}, coverage {_fmt(g['metrics'].get('coverage_90'), 3)})."]
        if t is not None and t["search"] == "tpe":
            lines += [f"- TPE tuned: λ = {t['proximal_weight']:.3g}, S = {t['mc_samples']} "
                      f"(test CRPS {_fmt(t['metrics'].get('crps'))}, coverage {_fmt(t['metrics'].get('coverage_90'), 3)})."]
        lines += [""]
    lines += ["Full Optuna reports (history, importances, λ × S contour, best YAML): "
              "[grid](sensitivity/grid/summary.md), [TPE](sensitivity/tpe/summary.md).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m forecasting.bench.sensitivity", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from forecasting.core.errors import ForecastingError

    try:
        return run(args)
    except ForecastingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
