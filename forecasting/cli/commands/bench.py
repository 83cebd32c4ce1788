"""``forecasting bench <suite>``: benchmarks that write JSON + Markdown (+ PNG) result files.

Each suite lives in ``forecasting/bench/<module>.py`` and exposes ``add_arguments(parser)``
and ``run(args) -> int``. Suites are imported only when run (they pull in heavy peers).
"""
from __future__ import annotations

import argparse
import importlib
import shlex
import sys

from forecasting.cli.entry import add_unavailable, is_third_party
from forecasting.core.writable import ensure_writable

# suite name -> (module, one-line help)
SUITES = {
    "forecast": ("forecasting.bench.forecast.main", "point/probabilistic forecasting benchmark on the benchmark datasets"),
    "inference": ("forecasting.bench.inference.main", "synthetic targets with known posteriors: ScoreVI vs ADVI/GSM/BaM, and cost"),
    "vision": ("forecasting.bench.vision.main", "Bayesian ResNet/ViT calibration benchmark (and paper-scale GPU check)"),
    "predict": ("forecasting.bench.predict", "batch prediction throughput and memory vs statsmodels ETS and DeepAR"),
    "sensitivity": ("forecasting.bench.sensitivity", "ScoreVI-Koopa sensitivity to proximal weight x MC samples (ETTh2, H=48)"),
    "gpu": ("forecasting.bench.gpu", "GPU check: ScoreVI-Koopa and vision step times, peak memory"),
}


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="run a benchmark suite and write result files")
    suites = bench.add_subparsers(dest="suite", metavar="SUITE")
    for name, (module_name, help_text) in SUITES.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # suite not available in this build
            if is_third_party(exc):  # e.g. optuna missing: the other suites must still run
                add_unavailable(suites, name, exc)
                continue
            raise
        parser = suites.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(parser)
        parser.set_defaults(func=_runner(module))
    bench.set_defaults(func=lambda args: (bench.print_help(), 2)[1])


def _runner(module):
    def run(args: argparse.Namespace) -> int:
        if getattr(args, "out", None):  # every suite's --out is its results folder: check it before the benchmark runs
            ensure_writable(args.out, "--out", kind="dir")
        argv = getattr(args, "argv", None) or sys.argv[1:]
        args.command_line = "forecasting " + " ".join(shlex.quote(a) for a in argv)
        return module.run(args)

    return run
