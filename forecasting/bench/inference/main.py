"""``forecasting bench inference``: ScoreVI vs ADVI / GSM / BaM on targets with known answers, and cost.

(a) Gaussian targets (dim 10/100/1000, condition number 10³, axis-aligned and rotated);
(b) conjugate Bayesian linear regression, N = 10⁴, mini-batches of 100 (noisy scores);
(c) a Gaussian-mixture target fitted with a Gaussian family (forward and reverse KL);
plus a ScoreVI ablation (the evidence for the library defaults) and the cost benchmark
(one ScoreVI iteration on a ~1M-parameter MLP vs S deterministic SGD steps; memory in units of P).
All methods use the same S, the same start q0 and the same mini-batch sequence. ADVI gets a
small learning-rate grid and is reported at its best rate; BaM likewise over its λ.
"""
from __future__ import annotations

import argparse
import logging
import math
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ADVI_LRS = (0.003, 0.01, 0.03, 0.1)
BAM_REGS = (0.1, 1.0, 10.0, 100.0, 1000.0)  # + the paper's decaying λ_t = B·D/(t+1)
ITERS, QUICK_ITERS = 2000, 200  # iterations per run without --iters (full run, --quick)
MAX_DENSE_DIM = 200  # GSM/BaM are O(P³) per iteration: low dimension only


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="docs/results", help="output folder (inference.json/.md + PNGs)")
    parser.add_argument("--quick", action="store_true", help="small dims and few iterations (smoke run, ~1 min)")
    parser.add_argument("--iters", type=int, default=None, help=f"iterations per run (default {ITERS}, quick {QUICK_ITERS})")
    parser.add_argument("--mc-samples", type=int, default=4, help="S, the same for every method")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = steadier timings on shared CPUs)")
    parser.add_argument("--device", default="cpu", help="device for the cost benchmark (synthetic runs use CPU)")
    parser.add_argument("--skip-cost", action="store_true", help="skip the 1M-parameter cost benchmark")
    parser.add_argument("--only", choices=["a", "b", "c", "ablation", "cost"], action="append",
                        help="run only these sections (repeatable)")


def run(args: argparse.Namespace) -> int:
    import torch

    from forecasting.bench.inference import targets as T
    from forecasting.bench.inference.plots import plot_target
    from forecasting.bench.inference.runner import best_of, run_curve
    from forecasting.core.device import resolve_device
    from forecasting.evaluation.results import write_results

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    iters = args.iters or (QUICK_ITERS if args.quick else ITERS)
    s = args.mc_samples
    sections = set(args.only or ["a", "b", "c", "ablation", "cost"])
    if args.skip_cost:
        sections.discard("cost")
    budget = 10.0 if args.quick else 40.0  # seconds per dense-method run (BaM grid: half each)
    started = time.perf_counter()

    rows: list[dict[str, Any]] = []
    all_curves: dict[str, list[dict]] = {}
    grids: list[dict[str, Any]] = []
    scorevi_cfg = {"mc_samples": s}

    def fit_all(problem, section: str, init_scale: float, with_dense: bool, full_batch_twin=None,
                extra: list[tuple[str, str, dict, str]] = ()) -> None:
        curves = [run_curve(problem, "scorevi", scorevi_cfg, "diagonal", iters, init_scale=init_scale,
                            seed=args.seed, label="scorevi")]
        for label, method, cfg, fam in extra:
            curves.append(run_curve(problem, method, dict(cfg, mc_samples=s), fam, iters, init_scale=init_scale,
                                    seed=args.seed, label=label))
        advi = [run_curve(problem, "advi", {"mc_samples": s, "lr": lr}, "diagonal", iters, init_scale=init_scale,
                          seed=args.seed, label=f"advi lr={lr:g}") for lr in (ADVI_LRS[1:3] if args.quick else ADVI_LRS)]
        best_advi = best_of(advi)
        grids.extend({"target": problem.name, "method": c.label, "kl_stationary": c.stationary(),
                      "error": c.error} for c in advi)
        best_advi.label = f"advi (best lr={best_advi.config['lr']:g})"
        curves.append(best_advi)
        if with_dense and problem.dim <= MAX_DENSE_DIM:
            curves.append(run_curve(problem, "gsm", {"mc_samples": s}, "full", iters, init_scale=init_scale,
                                    seed=args.seed, label="gsm", time_budget_s=budget))
            bam_grid = [{"reg": r} for r in (BAM_REGS[1:3] if args.quick else BAM_REGS)]
            bam_grid.append({"reg": float(s * problem.dim), "schedule": "decay"})
            bams = [run_curve(problem, "bam", dict(g, mc_samples=s), "full", iters, init_scale=init_scale,
                              seed=args.seed, label=f"bam reg={g['reg']:g}{' decay' if 'schedule' in g else ''}",
                              time_budget_s=budget / 3)
                    for g in bam_grid]
            grids.extend({"target": problem.name, "method": c.label, "kl_stationary": c.stationary(),
                          "error": c.error} for c in bams)
            best_bam = best_of(bams)
            best_bam.label = f"bam (best: {best_bam.label[4:]})"
            curves.append(best_bam)
            if full_batch_twin is not None:  # the same dense methods with exact scores: their bias under noise
                bam_cfg = {k: v for k, v in best_bam.config.items() if k in ("reg", "schedule")}
                for method, cfg in (("gsm", {}), ("bam", bam_cfg)):
                    c = run_curve(full_batch_twin, method, dict(cfg, mc_samples=s), "full", iters,
                                  init_scale=init_scale, seed=args.seed, label=f"{method} (full-batch scores)",
                                  time_budget_s=budget / 2)
                    curves.append(c)
                # Reference outside the same-S rule: BaM's batch statistics are rank-deficient when
                # S < dim, so also show it with S = 2·dim on exact scores.
                curves.append(run_curve(full_batch_twin, "bam", {"mc_samples": 2 * problem.dim, "reg": 100.0}, "full",
                                        iters, init_scale=init_scale, seed=args.seed,
                                        label=f"bam (full-batch scores, S={2 * problem.dim}, reg=100; reference)",
                                        time_budget_s=budget / 2))
        elif with_dense:
            for method in ("gsm", "bam"):
                rows.append({"target": problem.name, "section": section, "method": method, "family": "full",
                             "error": f"skipped: dense O(P³) method, dim {problem.dim} > {MAX_DENSE_DIM}"})
        advi_final = best_advi.stationary()
        floor = problem.mean_field_floor() if hasattr(problem, "mean_field_floor") else None
        for c in curves:
            it, sec = c.first_reaching(advi_final) if math.isfinite(advi_final) else (None, None)
            row = {"target": problem.name, "section": section, "method": c.label, "family": c.family,
                   "iters": c.iters[-1] if c.iters else 0,
                   "metrics": {"kl": c.final("kl"), "kl_forward": c.final("kl_forward"),
                               "neg_elbo": c.final("neg_elbo"), "kl_stationary": c.stationary("kl"),
                               "iters_to_advi_final": it, "seconds_to_advi_final": sec},
                   "seconds": {"train": c.total_seconds}, "config": c.config}
            if floor is not None and c.family == "diagonal":
                row["metrics"]["kl_floor_mean_field"] = floor
            if c.error:
                row["error"] = c.error
            rows.append(row)
        all_curves[problem.name] = [c.to_dict() for c in curves]
        plot_target(out / f"inference_{problem.name}.png", problem.name, all_curves[problem.name], floor)
        log.info("%s done (%.0fs elapsed)", problem.name, time.perf_counter() - started)

    if "a" in sections:
        dims = (10, 100) if args.quick else (10, 100, 1000)
        for dim in dims:
            fit_all(T.gaussian_problem(dim, 1e3, rotated=False, seed=args.seed), "a", 1.0, with_dense=True)
        for dim in ((10,) if args.quick else (10, 100)):
            fit_all(T.gaussian_problem(dim, 1e3, rotated=True, seed=args.seed), "a", 1.0, with_dense=True)
    if "b" in sections:
        n, d = (10_000, 20)
        prob = T.RegressionProblem(n, d, batch_size=100, seed=args.seed)
        twin = T.RegressionProblem(n, d, batch_size=n, seed=args.seed)
        fit_all(prob, "b", 1.0, with_dense=True, full_batch_twin=twin)
    if "c" in sections:
        for dim in ((2,) if args.quick else (2, 10)):
            fit_all(T.MixtureProblem(dim, seed=args.seed), "c", 1.0, with_dense=True,
                    extra=[("scorevi mixture family (adam)", "scorevi",
                            {"family": "mixture", "components": 2, "lr": 0.05}, "mixture")])

    ablation: list[dict[str, Any]] = []
    if "ablation" in sections:
        ablation = _ablation(args, iters, s, T, run_curve)
    cost: list[dict[str, Any]] = []
    if "cost" in sections:
        from forecasting.bench.inference.cost import run_cost

        device = resolve_device(args.device)
        cost = run_cost(device, mc_samples=s, reps=3 if args.quick else 5)
    goals = _goals(rows, cost, iters)
    md = _markdown(rows, grids, ablation, cost, goals, iters, s, args)
    write_results(out, "inference", rows + cost, device=str(args.device), command=args.command_line,
                  markdown=md, extra={"goals": goals, "grids": grids, "ablation": ablation,
                                      "curves": all_curves, "iters": iters, "mc_samples": s,
                                      "threads": args.threads, "wall_seconds": time.perf_counter() - started})
    log.info("wrote %s (%.0fs)", out / "inference.md", time.perf_counter() - started)
    return 0


def _ablation(args, iters, s, T, run_curve) -> list[dict[str, Any]]:
    """ScoreVI variants on a rotated Gaussian and the noisy regression: the evidence for the defaults."""
    variants = [
        ("default (closed form, λ=0.1, κ=1, ρ=0.95)", {}),
        ("fixed λ=1 (κ=0)", {"proximal_adaptive": 0.0, "proximal_weight": 1.0}),
        ("κ=0.3", {"proximal_adaptive": 0.3}),
        ("κ=3", {"proximal_adaptive": 3.0}),
        ("no pooling ρ=0", {"pool_decay": 0.0}),
        ("ρ=0.99", {"pool_decay": 0.99}),
        ("λ_t=0.1·(1+0.01t)", {"proximal_schedule": "linear", "proximal_growth": 0.01}),
        ("S=1", {"mc_samples": 1}),
        ("identity weighting", {"weighting": "identity"}),
        ("adam solver lr=0.05", {"solver": "adam", "lr": 0.05}),
    ]
    if args.quick:
        variants = variants[:3] + variants[-2:-1]
    problems = [T.gaussian_problem(100 if not args.quick else 10, 1e3, rotated=True, seed=args.seed),
                T.RegressionProblem(10_000, 20, batch_size=100, seed=args.seed)]
    out = []
    for prob in problems:
        for label, cfg in variants:
            c = run_curve(prob, "scorevi", dict({"mc_samples": s}, **cfg), "diagonal", max(iters // 2, 100), init_scale=1.0,
                          seed=args.seed, label=label)
            out.append({"target": prob.name, "variant": label, "kl_final": c.final(), "kl_stationary": c.stationary(),
                        "iters_to_kl_below_1": c.first_reaching(1.0)[0], "seconds": c.total_seconds,
                        "error": c.error})
    return out


def _goals(rows, cost, iters) -> list[dict[str, Any]]:
    goals = []
    by = {}
    for r in rows:
        by.setdefault(r["target"], {})[r["method"]] = r
    for target, methods in by.items():
        sv = methods.get("scorevi")
        advi = next((m for k, m in methods.items() if k.startswith("advi")), None)
        if not sv or not advi or "metrics" not in sv or "metrics" not in advi:
            continue
        sec = sv.get("section")
        if sec in ("a", "b"):
            it = sv["metrics"]["iters_to_advi_final"]
            goals.append({"goal": "ScoreVI reaches ADVI's final KL in ≤ 1/3 of ADVI's iterations", "target": target,
                          "value": it, "threshold": iters / 3, "met": it is not None and it <= iters / 3})
        if sec == "b":
            goals.append({"goal": "under mini-batch noise ScoreVI's stationary KL ≤ ADVI's", "target": target,
                          "value": sv["metrics"]["kl_stationary"], "threshold": advi["metrics"]["kl_stationary"],
                          "met": sv["metrics"]["kl_stationary"] <= advi["metrics"]["kl_stationary"]})
            for m in ("gsm", "bam"):
                noisy = next((v for k, v in methods.items() if k.startswith(m) and "full-batch" not in k), None)
                exact = next((v for k, v in methods.items() if k.startswith(m) and "full-batch" in k), None)
                if noisy and exact and "metrics" in noisy and "metrics" in exact:
                    goals.append({"goal": f"{m.upper()} bias under noise visible (mini-batch KL ≫ full-batch KL)",
                                  "target": target, "value": noisy["metrics"]["kl_stationary"],
                                  "threshold": exact["metrics"]["kl_stationary"],
                                  "met": noisy["metrics"]["kl_stationary"] > 10 * exact["metrics"]["kl_stationary"]})
        if sec == "c":
            goals.append({"goal": "ScoreVI's forward KL < ADVI's on the mixture target", "target": target,
                          "value": sv["metrics"]["kl_forward"], "threshold": advi["metrics"]["kl_forward"],
                          "met": sv["metrics"]["kl_forward"] < advi["metrics"]["kl_forward"]})
    for r in cost:
        m = r.get("metrics", {})
        if r["method"].startswith("scorevi closed_form fp64 pool [vmap]") or r["method"].startswith("scorevi closed_form fp32 pool [vmap]"):
            goals.append({"goal": "one ScoreVI iteration ≤ 1.3 × S deterministic steps", "target": r["method"],
                          "value": m.get("ratio_to_S_sgd_steps"), "threshold": 1.3,
                          "met": m.get("ratio_to_S_sgd_steps", 99) <= 1.3})
            extra = m.get("state_floats_per_P", 0) + m.get("transient_floats_per_P", 0)
            goals.append({"goal": "extra memory ≤ 8 × P floats (persistent + per-iteration)", "target": r["method"],
                          "value": extra, "threshold": 8.0, "met": extra <= 8.0})
    return goals


def _fmt(v, digits=4):
    from forecasting.evaluation.results import format_number

    return format_number(v, digits)


def _markdown(rows, grids, ablation, cost, goals, iters, s, args) -> str:
    from forecasting.evaluation.results import rows_to_markdown

    parts = [f"All runs: S = {s} samples per iteration for every method, {iters} iterations, the same start "
             "q0 = N(0, I), the same seeds and mini-batch sequence; torch threads = "
             f"{args.threads}. `kl` = KL(q‖p) to the exact answer at the end, `kl_stationary` = median over the last "
             "25 % of checkpoints, `iters_to_advi_final` = first checkpoint where KL ≤ ADVI's stationary KL "
             "(ADVI at its best learning rate). ScoreVI/ADVI use the diagonal family (floor = best mean-field KL); "
             "GSM/BaM fit a dense Gaussian. Seconds count only update calls.\n"]
    sections = {"a": "(a) Gaussian targets", "b": "(b) Conjugate linear regression, mini-batch scores",
                "c": "(c) Gaussian-mixture target, Gaussian family (mismatch; KLs by Monte Carlo)"}
    keys = ["kl", "kl_stationary", "kl_forward", "neg_elbo", "kl_floor_mean_field", "iters_to_advi_final",
            "seconds_to_advi_final"]
    for sec, title in sections.items():
        sec_rows = [r for r in rows if r.get("section") == sec]
        if sec_rows:
            parts.append(f"## {title}\n\n" + rows_to_markdown(sec_rows, keys=["target", "method", "family"],
                                                              metric_keys=keys) + "\n")
            for t in dict.fromkeys(r["target"] for r in sec_rows):
                parts.append(f"![{t}](inference_{t}.png)\n")
    if goals:
        lines = ["| goal | target | value | threshold | met |", "|---|---|---|---|---|"]
        lines += [f"| {g['goal']} | {g['target']} | {_fmt(g['value'])} | {_fmt(g['threshold'])} | "
                  f"{'yes' if g['met'] else '**no**'} |" for g in goals]
        parts.append("## Goals (issue 4)\n\n" + "\n".join(lines) + "\n")
    if grids:
        lines = ["| target | run | kl_stationary | error |", "|---|---|---|---|"]
        lines += [f"| {g['target']} | {g['method']} | {_fmt(g['kl_stationary'])} | {g['error'] or ''} |" for g in grids]
        parts.append("## Hyperparameter grids of the baselines (the best is reported above)\n\n" + "\n".join(lines) + "\n")
    if ablation:
        lines = ["| target | ScoreVI variant | kl_final | kl_stationary | iters to KL<1 | seconds | error |",
                 "|---|---|---|---|---|---|---|"]
        lines += [f"| {a['target']} | {a['variant']} | {_fmt(a['kl_final'])} | {_fmt(a['kl_stationary'])} | "
                  f"{a['iters_to_kl_below_1'] if a['iters_to_kl_below_1'] is not None else '–'} | {_fmt(a['seconds'], 2)} | "
                  f"{a['error'] or ''} |" for a in ablation]
        parts.append("## ScoreVI ablation (evidence for the defaults)\n\n" + "\n".join(lines) + "\n")
    if cost:
        p = cost[0]["params"]
        parts.append(f"## Cost: ~1M-parameter MLP (P = {p:,}), batch {cost[0]['batch_size']}, S = {s}, device "
                     f"{args.device}\n\n" + rows_to_markdown(cost, keys=["method"]) +
                     "\n\n`ratio_to_S_sgd_steps` = one iteration / (S × one deterministic SGD step), same process. "
                     "`state_floats_per_P` = persistent floats held by the algorithm state (family, pooled statistics "
                     "— fp64 counts double — and optimiser moments) per parameter; `transient_floats_per_P` = the "
                     "per-iteration copy q_t plus the S samples and S scores.\n")
    return "\n".join(parts)
