"""Run one method of the probabilistic benchmark in its own process (so peak memory is per method).

The suite forks each method from a *forkserver* that has already imported torch, gluonts and
statsmodels (:func:`start_method_process`), so a method starts in milliseconds instead of paying
the imports again, and its ``ru_maxrss`` is its own high-water mark (imports included: the level
at start is reported beside it). A method can also be run by hand::

    python -m forecasting.bench.forecast.prob_worker SPEC.json RESULT.json

``SPEC.json`` is :func:`forecasting.bench.forecast.prob_methods.make_spec`'s dict; ``RESULT.json``
receives the result row, or ``{"error": "...", "traceback": "..."}`` when the method failed.
"""
from __future__ import annotations

import json
import logging
import multiprocessing as mp
import sys
import traceback
from pathlib import Path
from typing import Any

# Imported once by the forkserver; every method process is forked from it.
PRELOAD = [
    "torch", "numpy", "scipy.special", "scoringrules", "forecasting.bench.forecast.prob_methods", "forecasting.forecaster.api",
    "forecasting.evaluation.metrics", "forecasting.baselines.naive", "forecasting.baselines.statistical",
    "statsmodels.tsa.exponential_smoothing.ets", "statsmodels.tsa.arima.model", "forecasting.baselines.deepar",
    "lightning.pytorch", "gluonts.torch.model.deepar.lightning_module",
]

_CONTEXT: Any = None


def _context():
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = mp.get_context("forkserver")
        _CONTEXT.set_forkserver_preload(PRELOAD)
    return _CONTEXT


def run_to_file(spec: dict[str, Any], out_path: str | Path) -> int:
    """Run ``spec`` and write its row (or its error) to ``out_path`` atomically; 0 on success."""
    from forecasting.bench.forecast.prob_methods import run_cell_method
    from forecasting.core.atomic import atomic_write_text, json_safe as _clean

    try:
        row = run_cell_method(spec)
        code = 0
    except Exception as exc:  # noqa: BLE001 - reported as an error row by the parent
        tb = traceback.format_exc()
        sys.stderr.write(tb)
        row = {"error": f"{type(exc).__name__}: {exc}", "traceback": tb[-3000:]}
        code = 1
    atomic_write_text(out_path, json.dumps(_clean(row)))
    return code


def _child(spec: dict[str, Any], out_path: str, level: int) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr,
                        force=True)
    sys.exit(run_to_file(spec, out_path))


def run_isolated(spec: dict[str, Any], out_path: Path, timeout: float) -> dict[str, Any]:
    """Run one method in a process forked from the preloaded forkserver; returns its row or an error row."""
    proc = _context().Process(target=_child, args=(spec, str(out_path), logging.getLogger().getEffectiveLevel()),
                              name=f"prob-{spec['method']}")
    proc.start()
    proc.join(timeout)
    if proc.is_alive():
        proc.kill()
        proc.join()
        return {"error": f"timed out after {timeout:.0f} s (raise --method-timeout or lower the budget)"}
    if out_path.exists():
        try:
            return json.loads(out_path.read_text())
        except json.JSONDecodeError as exc:
            return {"error": f"unreadable worker result: {exc}"}
    return {"error": f"method process exited with code {proc.exitcode} without a result "
                     "(killed by a signal, e.g. out of memory?)"}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2:
        sys.stderr.write("usage: python -m forecasting.bench.forecast.prob_worker SPEC.json RESULT.json\n")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return run_to_file(json.loads(Path(argv[0]).read_text()), argv[1])


if __name__ == "__main__":
    sys.exit(main())
