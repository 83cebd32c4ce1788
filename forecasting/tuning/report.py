"""The outputs of a sweep, rebuilt from the study storage alone.

``<out>/`` receives:

* ``best.yaml`` — the base config with the best trial's values: ``forecasting train --config best.yaml``.
  For a two-objective study, the Pareto trial with the lowest validation CRPS (every Pareto trial
  gets ``pareto/trial-<n>.yaml``).
* ``trials.csv`` — one row per trial: state, objective values, parameters, validation (and test)
  metrics, the epoch a pruned trial stopped at, the error of a failed one.
* ``history.png``, ``importances.png``, ``contour.png`` (proximal weight × MC samples when both are
  searched, else the two most important parameters), ``intermediate.png`` (per-epoch validation
  CRPS: what the pruner saw), ``pareto.png`` (two objectives) — each also as interactive
  ``.html`` (plotly; loads plotly.js from its CDN when opened).
* ``summary.md`` — what was run, trial counts per state, the best setting, the top trials,
  failures with their reasons, and the figures.
"""
from __future__ import annotations

import csv
import io
import logging
import warnings
from pathlib import Path
from typing import Any, Callable

import yaml

from forecasting.tuning.space import MC_SAMPLES, PROXIMAL_WEIGHT, with_params

log = logging.getLogger(__name__)


def write_report(study: Any, res: Any) -> Any:
    """Write every output of the study into ``res.out``; returns a :class:`forecasting.tuning.study.TuneResult`."""
    from forecasting.core.atomic import atomic_write_text
    from forecasting.tuning.study import TuneResult, states

    out: Path = res.out
    out.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    counts = states(study)
    complete = [t for t in trials if t.state.name == "COMPLETE" and t.values is not None]
    multi = len(study.directions) > 1
    files: list[Path] = []

    files.append(atomic_write_text(out / "trials.csv", _trials_csv(trials, res)))
    best_yaml, best, pareto = None, None, []
    if complete:
        if multi:
            pareto = sorted(study.best_trials, key=lambda t: t.values[0])
            best = pareto[0]
            for t in pareto:
                files.append(atomic_write_text(out / "pareto" / f"trial-{t.number}.yaml", _config_yaml(t, res, study)))
        else:
            best = study.best_trial
        best_yaml = atomic_write_text(out / "best.yaml", _config_yaml(best, res, study))
        files.append(best_yaml)
    figures, skipped = _figures(study, res, out)
    files.extend(figures.values())
    importances = _importances(study)
    summary = _summary(study, res, trials, counts, best, pareto, importances, figures, skipped)
    summary_md = atomic_write_text(out / "summary.md", summary)
    files.append(summary_md)
    return TuneResult(
        study_name=res.study_name, storage=res.storage, out=out, n_trials=len(trials), states=counts,
        best_yaml=best_yaml, summary_md=summary_md, files=files,
        best_values=list(best.values) if best is not None else None,
        best_params=dict(best.params) if best is not None else None,
    )


# ------------------------------------------------------------------------------------ files
def best_config(trial: Any, res: Any) -> dict[str, Any]:
    """The resolved run config (``dataset`` first) of a trial: base config + the trial's values."""
    from forecasting.core.config import from_dict, to_dict
    from forecasting.forecaster.config import ForecasterConfig

    config = from_dict(ForecasterConfig, with_params(res.base, dict(trial.params)))
    return {"dataset": res.dataset, **to_dict(config)}


def _config_yaml(trial: Any, res: Any, study: Any) -> str:
    names = list(study.user_attrs.get("objectives", ["val_crps"]))
    values = ", ".join(f"{n} {v:.6g}" for n, v in zip(names, trial.values))
    params = ", ".join(f"{k}={_fmt(v)}" for k, v in trial.params.items())
    header = (
        f"# Best setting of study {res.study_name!r} (trial {trial.number}: {values}).\n"
        f"# Tuned: {params}\n"
        f"# Retrain: forecasting train --config <this file>\n"
    )
    return header + yaml.safe_dump(best_config(trial, res), sort_keys=False)


def _trials_csv(trials: list[Any], res: Any) -> str:
    keys = [p.key for p in res.space.params]
    n_obj = len(res.space.objectives)
    skip = {"epoch_val_crps", *res.space.objectives}  # objectives have their own columns
    attrs = sorted({k for t in trials for k in t.user_attrs if k not in skip})
    header = ["number", "state", *res.space.objectives, "duration_s", *keys, *attrs]
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    for t in trials:
        # Optuna gives a pruned trial its last intermediate value; only finished trials have objectives.
        values = list(t.values) if t.values is not None and t.state.name == "COMPLETE" else [None] * n_obj
        duration = t.duration.total_seconds() if t.duration is not None else None
        writer.writerow([t.number, t.state.name, *values, duration, *[t.params.get(k) for k in keys],
                         *[t.user_attrs.get(a) for a in attrs]])
    return buf.getvalue()


# ------------------------------------------------------------------------------------ figures
def _target(study: Any) -> tuple[Callable[[Any], float] | None, str]:
    if len(study.directions) > 1:
        return (lambda t: t.values[0]), "val_crps"
    return None, "val_crps"


def contour_params(study: Any, importances: dict[str, float] | None = None) -> list[str] | None:
    """Proximal weight × MC samples when both were searched, else the two most important parameters."""
    names = {k for t in study.get_trials(deepcopy=False) for k in t.params}
    if PROXIMAL_WEIGHT in names and MC_SAMPLES in names:
        return [PROXIMAL_WEIGHT, MC_SAMPLES]
    ranked = list(importances or {}) or sorted(names)
    return ranked[:2] if len(ranked) >= 2 else None


def _figures(study: Any, res: Any, out: Path) -> tuple[dict[str, Path], dict[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    import optuna.visualization as pv
    import optuna.visualization.matplotlib as pm

    from forecasting.core.atomic import atomic_write_with

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    target, name = _target(study)
    tkw = {"target": target, "target_name": name} if target is not None else {"target_name": name}
    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    imp = _importances(study)
    pair = contour_params(study, imp)
    plots: dict[str, tuple[Callable, Callable, dict[str, Any]]] = {
        "history": (pm.plot_optimization_history, pv.plot_optimization_history, tkw),
        "importances": (pm.plot_param_importances, pv.plot_param_importances,
                        {**tkw, "evaluator": _evaluator()}),
        "intermediate": (pm.plot_intermediate_values, pv.plot_intermediate_values, {}),
    }
    if pair:
        plots["contour"] = (pm.plot_contour, pv.plot_contour, {**tkw, "params": pair})
    if len(study.directions) > 1:
        names = list(study.user_attrs.get("objectives", ["val_crps", "train_seconds"]))
        plots["pareto"] = (pm.plot_pareto_front, pv.plot_pareto_front, {"target_names": names})
    figures: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    for key, (mpl_fn, plotly_fn, kw) in plots.items():
        if key == "intermediate" and (len(study.directions) > 1 or not any(t.intermediate_values for t in study.get_trials(deepcopy=False))):
            skipped[key] = "no per-epoch reports (multi-objective studies cannot prune)"
            continue
        if key in ("importances", "contour") and len(complete) < 2:
            skipped[key] = "needs at least 2 completed trials"
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ax = mpl_fn(study, **kw)
                fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
                if key == "contour":
                    fig.set_size_inches(7.5, 6)
                fig.tight_layout()
                png = out / f"{key}.png"
                atomic_write_with(png, lambda tmp: fig.savefig(tmp, dpi=110))
                plt.close(fig)
                figures[key] = png
                html = plotly_fn(study, **kw)
                figures[f"{key}_html"] = atomic_write_with(
                    out / f"{key}.html", lambda tmp: html.write_html(str(tmp), include_plotlyjs="cdn"))
        except Exception as exc:  # noqa: BLE001 - a figure that cannot be drawn must not lose the report
            skipped[key] = f"{type(exc).__name__}: {exc}"
            log.warning("figure %s not drawn: %s", key, exc)
            plt.close("all")
    return figures, skipped


def _evaluator() -> Any:
    from optuna.importance import FanovaImportanceEvaluator

    return FanovaImportanceEvaluator(seed=0)


def _importances(study: Any) -> dict[str, float]:
    import optuna

    complete = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(complete) < 2:
        return {}
    target, _ = _target(study)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(optuna.importance.get_param_importances(study, evaluator=_evaluator(), target=target))
    except Exception as exc:  # noqa: BLE001 - e.g. every completed trial has the same values
        log.info("parameter importances unavailable: %s", exc)
        return {}


# ------------------------------------------------------------------------------------ summary
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _summary(study: Any, res: Any, trials: list[Any], counts: dict[str, int], best: Any, pareto: list[Any],
             importances: dict[str, float], figures: dict[str, Path], skipped: dict[str, str]) -> str:
    objectives = list(study.user_attrs.get("objectives", res.space.objectives))
    multi = len(objectives) > 1
    lines = [f"# Sweep `{res.study_name}`", ""]
    if res.job.command:
        lines += ["Command:", "", "```", res.job.command, "```", ""]
    lines += [
        f"- dataset: `{res.dataset}`; base config: `{res.job.config}`"
        + (f" with `{' '.join('--set ' + o for o in res.job.overrides)}`" if res.job.overrides else ""),
        f"- search space: `{res.space.source}`; storage: `{res.storage}`",
        f"- objective(s): {', '.join(objectives)} (minimised). val_crps = CRPS of the predictive on the validation "
        f"split, standard-scaled data, {res.space.evaluation.samples} samples, "
        f"{res.space.evaluation.max_windows or 'all'} windows, seed {res.space.evaluation.seed}.",
        f"- sampler: {res.space.sampler.kind} (seed {res.space.sampler.seed}; worker i uses seed + i); pruner: "
        + ("none (Optuna cannot prune multi-objective studies)" if multi else res.space.pruner.kind),
        f"- trials: {len(trials)} — " + ", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items())),
        "",
        "| parameter | distribution |",
        "|---|---|",
        *[f"| `{p.key}` | {p.describe()} |" for p in res.space.params],
        "",
    ]
    if best is None:
        lines += ["No trial completed, so there is no best setting yet (see the failures below).", ""]
    else:
        vals = ", ".join(f"{n} **{v:.5g}**" for n, v in zip(objectives, best.values))
        lines += [f"## Best setting (trial {best.number}: {vals})", ""]
        lines += [f"- `{k}` = {_fmt(v)}" for k, v in best.params.items()]
        extra = {k: best.user_attrs.get(k) for k in ("val_coverage_90", "val_interval_width_90", "train_seconds",
                                                     "test_crps", "test_coverage_90") if best.user_attrs.get(k) is not None}
        if extra:
            lines += ["- also: " + ", ".join(f"{k} {_fmt(v)}" for k, v in extra.items())]
        lines += ["", f"Retrain it: `forecasting train --config {res.out / 'best.yaml'}`", ""]
    if multi and pareto:
        lines += ["## Pareto front (validation CRPS vs training seconds)", "",
                  "| trial | val_crps | train_seconds | " + " | ".join(f"`{p.key}`" for p in res.space.params) + " |",
                  "|---|---|---|" + "---|" * len(res.space.params)]
        for t in pareto:
            lines.append(f"| {t.number} | {t.values[0]:.5g} | {t.values[1]:.3g} | "
                         + " | ".join(_fmt(t.params.get(p.key)) for p in res.space.params) + " |")
        lines += ["", f"Each Pareto trial's config: `{res.out / 'pareto'}/trial-<n>.yaml`.", ""]
    if importances:
        lines += ["## Parameter importances (fANOVA on val_crps)", "", "| parameter | importance |", "|---|---|"]
        lines += [f"| `{k}` | {v:.3f} |" for k, v in importances.items()]
        lines += [""]
    done = sorted((t for t in trials if t.state.name == "COMPLETE" and t.values), key=lambda t: t.values[0])
    if done:
        keys = [p.key for p in res.space.params]
        lines += ["## Completed trials (best 15 by val_crps)", "",
                  "| trial | " + " | ".join(objectives) + " | val coverage_90 | " + " | ".join(f"`{k}`" for k in keys) + " |",
                  "|---|" + "---|" * (len(objectives) + 1 + len(keys))]
        for t in done[:15]:
            lines.append(f"| {t.number} | " + " | ".join(f"{v:.5g}" for v in t.values)
                         + f" | {_fmt(t.user_attrs.get('val_coverage_90'))} | "
                         + " | ".join(_fmt(t.params.get(k)) for k in keys) + " |")
        lines += [""]
    pruned = [t for t in trials if t.state.name == "PRUNED"]
    if pruned:
        lines += [f"## Pruned trials ({len(pruned)})", "",
                  ", ".join(f"{t.number} (epoch {t.user_attrs.get('pruned_at_epoch', max(t.intermediate_values or [0]))})"
                            for t in pruned), ""]
    failed = [t for t in trials if t.state.name == "FAIL"]
    if failed:
        lines += [f"## Failed trials ({len(failed)})", "", "| trial | parameters | error |", "|---|---|---|"]
        for t in failed:
            err = str(t.user_attrs.get("error", "no reason recorded (the worker process died?)")).splitlines()[0][:300]
            params = ", ".join(f"{k}={_fmt(v)}" for k, v in t.params.items())
            lines.append(f"| {t.number} | {params} | {err.replace('|', '/')} |")
        lines += [""]
    running = counts.get("RUNNING", 0)
    if running:
        lines += [f"{running} trial(s) are still RUNNING in the storage (another worker is busy, or a worker died: "
                  "with an RDB storage the heartbeat marks dead ones FAIL after 5 minutes).", ""]
    if figures:
        lines += ["## Figures", ""]
        for key in ("history", "importances", "contour", "intermediate", "pareto"):
            if key in figures:
                lines += [f"![{key}]({figures[key].name}) ([interactive]({key}.html))", ""]
    for key, why in skipped.items():
        lines += [f"- {key} figure not drawn: {why}"]
    if skipped:
        lines += [""]
    return "\n".join(lines)

