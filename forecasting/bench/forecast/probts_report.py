"""Result files of the ProbTS protocol run: ``probts.json`` / ``probts.md``, goals of issue 11 measured.

Published numbers (docs/evaluation.md, "Protocol 2") are kept apart from ours and always labelled
as published; our rows say "ours" and name the command that produced them.
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

SUITE = "probts"
ANALYSIS_FILE = f"{SUITE}.analysis.md"
DATASETS = ("ETTh1", "ETTh2", "exchange_rate", "national_illness")
LONGEST = {"ETTh1": 720, "ETTh2": 720, "exchange_rate": 720, "national_illness": 60}
SHORTEST = {"ETTh1": 96, "ETTh2": 96, "exchange_rate": 96, "national_illness": 24}

# CRPS / NMAE at H = 720 (ILI 60): the K²VAE repository's result figure, as quoted in docs/evaluation.md.
PUBLISHED_LONG: dict[str, dict[str, tuple[float, float | None]]] = {
    "K²VAE (best published probabilistic)": {"ETTh1": (.314, .396), "ETTh2": (.280, .278), "exchange_rate": (.069, .084),
                                             "national_illness": (.142, .167)},
    "Koopa + distribution head": {"ETTh1": (.318, .412), "ETTh2": (.293, .286), "exchange_rate": (.091, .116),
                                  "national_illness": (.228, .288)},
    "PatchTST + head": {"ETTh1": (.323, .428), "ETTh2": (.304, .371), "exchange_rate": (.097, .126),
                        "national_illness": (.233, .287)},
    "CSDI (ProbTS)": {"ETTh1": (.528, .657), "ETTh2": (.302, .382), "exchange_rate": (.143, .173),
                      "national_illness": (.283, .299)},
    "PatchTST, point (ProbTS)": {"ETTh1": (.397, None), "ETTh2": (.252, None), "exchange_rate": (.072, None),
                                 "national_illness": (.147, None)},
}
# CRPS at H = 96 (ILI 24), ProbTS.
PUBLISHED_SHORT: dict[str, dict[str, float]] = {
    "CSDI (ProbTS)": {"ETTh1": .437, "ETTh2": .164, "exchange_rate": .028, "national_illness": .250},
    "PatchTST, point (ProbTS)": {"ETTh1": .328, "ETTh2": .177, "exchange_rate": .023, "national_illness": .169},
    "iTransformer, point (ProbTS)": {"national_illness": .094},
}
BEST_PUBLISHED = "K²VAE (best published probabilistic)"
HEAD_PUBLISHED = "Koopa + distribution head"
SCOREVI = "scorevi-koopa"
HEADS = ("koopa-head-t", "koopa-head-gaussian")
QUICK_GOAL_S = 30 * 60
FULL_GOAL_S = 3 * 3600


def aggregate(rows: list[dict]) -> dict[tuple[str, int, str], dict[str, Any]]:
    """``(dataset, horizon, method) -> {crps, crps_std, nmae, nmae_std, seeds, ...}`` over seeds."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        if "metrics" in r:
            groups[(r["dataset"], int(r["horizon"]), r["method"])].append(r)
    out = {}
    for key, rs in groups.items():
        agg: dict[str, Any] = {"seeds": len(rs), "windows": int(rs[0]["metrics"]["n_windows"]),
                               "train_s": sum(r["seconds"]["train"] for r in rs) / len(rs)}
        for m in ("crps", "nmae", "coverage_50", "coverage_90"):
            vals = [r["metrics"][m] for r in rs if m in r["metrics"]]
            if vals:
                mean = sum(vals) / len(vals)
                agg[m] = mean
                agg[f"{m}_std"] = math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1)) if len(vals) > 1 else None
        out[key] = agg
    return out


def _pm(agg: dict | None, key: str = "crps") -> str:
    if not agg or key not in agg:
        return "–"
    std = agg.get(f"{key}_std")
    return f"{agg[key]:.3f} ± {std:.3f}" if std is not None else f"{agg[key]:.3f}"


def best_richer(agg: dict, methods: list[str]) -> str | None:
    """The richer ScoreVI family with the lower mean CRPS over the longest-horizon cells it ran."""
    richer = [m for m in methods if m.startswith("scorevi-koopa-")]
    scored = {}
    for m in richer:
        vals = [agg[(ds, h, m)]["crps"] for ds, h in LONGEST.items() if (ds, h, m) in agg]
        if vals:
            scored[m] = sum(vals) / len(vals)
    return min(scored, key=scored.get) if scored else None


def goals(agg: dict, wall: float, quick: bool, partial: bool) -> dict[str, dict[str, Any]]:
    """Issue 11's goals, measured (``met`` None = not measurable from these rows)."""
    out: dict[str, dict[str, Any]] = {}
    beat, reach, detail_beat, detail_reach = 0, 0, [], []
    measured = 0
    for ds, h in LONGEST.items():
        s = agg.get((ds, h, SCOREVI))
        if not s:
            continue
        measured += 1
        ours_heads = [agg[(ds, h, m)]["crps"] for m in HEADS if (ds, h, m) in agg]
        published_head = PUBLISHED_LONG[HEAD_PUBLISHED][ds][0]
        ok = s["crps"] < published_head and all(s["crps"] < v for v in ours_heads)
        beat += ok
        detail_beat.append(f"{ds} H={h}: {s['crps']:.3f} vs published head {published_head:.3f}, our heads "
                           + ("/".join(f"{v:.3f}" for v in ours_heads) or "–") + (" ✓" if ok else " ✗"))
        best = PUBLISHED_LONG[BEST_PUBLISHED][ds][0]
        reach += s["crps"] <= best
        detail_reach.append(f"{ds}: {s['crps']:.3f} vs K²VAE {best:.3f}" + (" ✓" if s["crps"] <= best else " ✗"))
    out["beats_koopa_head_every_dataset_at_longest"] = {
        "met": (beat == measured == 4) if measured == 4 else None, "value": f"{beat}/{measured}: " + "; ".join(detail_beat)}
    out["reaches_k2vae_on_2_datasets_at_longest"] = {
        "met": (reach >= 2) if measured == 4 else None, "value": f"{reach}/{measured}: " + "; ".join(detail_reach)}
    limit = QUICK_GOAL_S if quick else FULL_GOAL_S
    out["runtime_quick_30min" if quick else "runtime_full_3h"] = {
        "met": None if partial else wall <= limit, "value": f"{wall / 60:.1f} min (goal ≤ {limit / 60:.0f} min)"}
    return out


def render(rows: list[dict], settings: dict, methods: list[str], budget, wall: float, partial: bool, quick: bool,
           analysis: str = "") -> tuple[str, dict]:
    agg = aggregate(rows)
    g = goals(agg, wall, quick, partial)
    lines = ["## Setup", "",
             "- Protocol: ProbTS long horizon (docs/evaluation.md, \"Protocol 2\"): lookback 96 (ILI 36), test windows every "
             f"{settings['test_stride']} rows, {settings['samples']} samples, CRPS over the 19 quantile levels 0.05…0.95 "
             "and NMAE, per window normalised by Σ|y| on the original scale, averaged over windows; docs/koopa.md splits, "
             "scaler fitted on training rows. A point forecast scores CRPS = NMAE.",
             f"- Methods (ours): {', '.join(methods)}. Koopa architecture: the dataset's official preset at the horizon "
             "(longest tabled horizon for 336/720), segment length L/2.",
             f"- Budget per fit: {budget.describe()}.",
             f"- Seeds: {'one (--quick)' if quick else 'three at the longest horizon (mean ± sample std), one elsewhere'}; "
             f"device {settings['device']}, {settings['threads'] or 'default'} torch thread(s).",
             f"- Wall time: {wall / 60:.1f} min{' (partial: running or interrupted)' if partial else ''}.",
             "- ILI has only 1–2 test windows at stride 96: its numbers rest on one or two 36-week windows.",
             "", "## Goals of issue 11 (measured, not tuned for)", ""]
    for name, v in g.items():
        verdict = "not measured" if v["met"] is None else ("met" if v["met"] else "**missed**")
        lines.append(f"- {verdict} — {name.replace('_', ' ')}: {v['value']}")
    lines += ["", "## CRPS / NMAE at H = 720 (ILI 60): published beside ours", "",
              "| model | source | " + " | ".join(DATASETS) + " |", "|---|---|" + "---|" * len(DATASETS)]
    for name, vals in PUBLISHED_LONG.items():
        cells = [f"{c:.3f}/{n:.3f}" if n is not None else f"{c:.3f}" for c, n in (vals[d] for d in DATASETS)]
        lines.append(f"| {name} | published (as quoted in docs/evaluation.md) | " + " | ".join(cells) + " |")
    for m in methods:
        cells = []
        for d in DATASETS:
            a = agg.get((d, LONGEST[d], m))
            cells.append(f"{_pm(a)} / {_pm(a, 'nmae')}" if a else "–")
        lines.append(f"| {m} | ours | " + " | ".join(cells) + " |")
    richer = best_richer(agg, methods)
    if richer:
        lines += ["", f"Best richer family at the longest horizon (mean CRPS): `{richer}`."]
    lines += ["", "## All horizons (ours; CRPS / NMAE, coverage of the 50 % and 90 % central intervals)", "",
              "| dataset | H | windows | " + " | ".join(methods) + " | published CRPS at this H |",
              "|---|---|---|" + "---|" * (len(methods) + 1)]
    for d in DATASETS:
        for h in sorted({k[1] for k in agg if k[0] == d}):
            first = next((agg[(d, h, m)] for m in methods if (d, h, m) in agg), None)
            cells = []
            for m in methods:
                a = agg.get((d, h, m))
                if not a:
                    cells.append("–")
                    continue
                cov = f" ({a['coverage_50']:.2f}/{a['coverage_90']:.2f})" if "coverage_90" in a else ""
                cells.append(f"{_pm(a)} / {_pm(a, 'nmae')}{cov}")
            pub = ""
            if h == LONGEST[d]:
                pub = "; ".join(f"{n.split(' (')[0]} {v[d][0]:.3f}" for n, v in PUBLISHED_LONG.items())
            elif h == SHORTEST[d]:
                pub = "; ".join(f"{n} {v[d]:.3f}" for n, v in PUBLISHED_SHORT.items() if d in v)
            lines.append(f"| {d} | {h} | {first['windows'] if first else '–'} | " + " | ".join(cells) + f" | {pub} |")
    errors = [r for r in rows if r.get("error")]
    if errors:
        lines += ["", "## Failed fits", ""] + [f"- {r['dataset']} H={r['horizon']} {r['method']} seed {r['seed']}: "
                                               f"{r['error'].splitlines()[0][:300]}" for r in errors]
    lines += ["", "## Training seconds per fit (mean over seeds)", "",
              "| dataset | H | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
    for d in DATASETS:
        for h in sorted({k[1] for k in agg if k[0] == d}):
            lines.append(f"| {d} | {h} | " + " | ".join(f"{agg[(d, h, m)]['train_s']:.0f}" if (d, h, m) in agg else "–"
                                                      for m in methods) + " |")
    if analysis:
        lines += ["", "## Analysis", "", analysis.strip()]
    return "\n".join(lines), g


def write(out: Path, rows: list[dict], settings: dict, command: str, methods: list[str], budget, wall: float,
          partial: bool, quick: bool) -> None:
    from forecasting.evaluation.results import write_results

    analysis_path = out / ANALYSIS_FILE
    analysis = analysis_path.read_text(encoding="utf-8") if analysis_path.exists() else ""
    md, g = render(rows, settings, methods, budget, wall, partial, quick, analysis)
    write_results(out, SUITE, rows, device=settings["device"], command=command, markdown=md,
                  extra={"settings": settings, "methods": methods, "budget_text": budget.describe(), "wall_seconds": wall,
                         "partial": partial, "quick": quick, "goals": g,
                         "published": {"H_longest": PUBLISHED_LONG, "H_shortest": PUBLISHED_SHORT}})


def rerender(out_dir: str | Path) -> Path:
    """Rewrite ``<out>/probts.md`` (and the JSON's goals) from ``<out>/probts.json``, e.g. after writing
    ``probts.analysis.md``; rows, command and settings are kept."""
    import json

    from forecasting.bench.forecast.probts import ProbTSBudget

    out = Path(out_dir)
    payload = json.loads((out / f"{SUITE}.json").read_text())
    write(out, payload["rows"], payload["settings"], payload.get("command") or "", payload["methods"],
          ProbTSBudget(**payload["settings"]["budget"]), payload["wall_seconds"], payload["partial"], payload["quick"])
    return out / f"{SUITE}.md"


if __name__ == "__main__":  # python -m forecasting.bench.forecast.probts_report --rerender DIR
    import argparse

    p = argparse.ArgumentParser(description="re-render probts.md from probts.json")
    p.add_argument("--rerender", required=True, metavar="DIR")
    print(rerender(p.parse_args().rerender))
