"""Peak memory and time of loading and preparing a large panel (default 10^4 items x 10^3 rows).

Usage::

    python scripts/panel_memory.py                      # 10,000 items x 1,000 hourly rows
    python scripts/panel_memory.py --items 100000       # the 10^5-item case (needs ~ a few GB)

Each measurement runs in a fresh process, so its peak resident set size (``ru_maxrss``) is
that stage's own: ``parquet`` loads a long parquet file written beforehand (lazily, only the
needed columns) and prepares it; ``polars`` builds the panel from an in-memory polars DataFrame
(the DataFrame itself counted) and prepares it. "baseline" is the process after importing
numpy/polars/torch and the package, before any data exists.
"""
from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_mb() -> float:
    """Peak resident set size so far (MB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _current_mb() -> float:
    """Resident set size now (MB), from /proc (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _frame(items: int, rows: int):
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    n = items * rows
    ids = pl.Series("unique_id", [f"item{i:06d}" for i in range(items)]).gather(np.repeat(np.arange(items), rows))
    # per-item starts up to a week apart: items differ in start and end
    start = np.repeat(rng.integers(0, 168, items), rows) + np.tile(np.arange(rows), items)
    ds = (np.datetime64("2020-01-01T00:00", "h") + start).astype("datetime64[us]")
    y = (rng.normal(size=n) + np.repeat(rng.normal(size=items) * 100, rows)).astype(np.float64)
    return pl.DataFrame({"unique_id": ids, "ds": ds, "y": y})


def _stage(kind: str, items: int, rows: int, path: str) -> dict:
    import numpy as np
    import polars as pl  # noqa: F401 - imported before the baseline, as a user session would
    import torch  # noqa: F401

    from forecasting.data.panel import load_panel, prepare_panel

    base = _rss_mb()
    t0 = time.perf_counter()
    if kind == "parquet":
        panel = load_panel(path)
    else:
        df = _frame(items, rows)
        after_df = _rss_mb()
        panel = load_panel(df)
        del df
    t_load = time.perf_counter() - t0
    after_load = _rss_mb()
    t0 = time.perf_counter()
    data = prepare_panel(panel, lookback=96, horizon=48, sampling="balanced")
    del panel  # the prepared data keeps the panel it needs
    x, y = data.train.batch(np.arange(256))
    t_prep = time.perf_counter() - t0
    gc.collect()
    out = {"stage": kind, "items": data.panel.n_items, "rows": data.panel.n_rows, "baseline_mb": round(base),
           "rss_after_prepare_mb": round(_current_mb()),
       "peak_after_load_mb": round(after_load), "peak_after_prepare_mb": round(_rss_mb()),
           "load_s": round(t_load, 2), "prepare_s": round(t_prep, 2),
           "panel_values_mb": round(data.panel.values.nbytes / 2**20, 1), "scaled_mb": round(data.scaled.numpy().nbytes / 2**20, 1),
           "window_index_kb": round(data.windows("train").nbytes() / 1024, 1), "train_windows": len(data.windows("train"))}
    if kind == "polars":
        out["peak_after_dataframe_mb"] = round(after_df)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=1_000)
    parser.add_argument("--stage", choices=["parquet", "polars"], help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(_stage(args.stage, args.items, args.rows, args.path)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "panel.parquet"
        t0 = time.perf_counter()
        _frame(args.items, args.rows).write_parquet(path)
        print(f"wrote {args.items} x {args.rows} rows to parquet ({path.stat().st_size / 2**20:.0f} MB) in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
        for stage in ("parquet", "polars"):
            done = subprocess.run([sys.executable, __file__, "--stage", stage, "--items", str(args.items),
                                   "--rows", str(args.rows), "--path", str(path)], capture_output=True, text=True, check=True)
            print(done.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
