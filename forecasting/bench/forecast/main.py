"""``forecasting bench forecast --suite point|probabilistic``: the forecasting benchmarks (dispatcher).

Each suite is a module ``forecasting.bench.forecast_<suite>`` with ``run(args) -> int``; this
file only declares the shared options and dispatches. A suite whose module is not part of this
build gives a clear error instead of a traceback.
"""
from __future__ import annotations

import argparse
import importlib

from forecasting.core.errors import ForecastingError

SUITES = {
    "point": "forecasting.bench.forecast.point",
    "probabilistic": "forecasting.bench.forecast.probabilistic",
}
BENCHMARK_DATASETS = ("ETTh1", "ETTh2", "exchange_rate", "national_illness")
# The long-horizon protocol's horizons (docs/koopa.md): ILI is weekly and short, so it has its own.
DEFAULT_HORIZONS = {"ETTh1": (48, 96, 144, 192), "ETTh2": (48, 96, 144, 192), "exchange_rate": (48, 96, 144, 192),
                    "national_illness": (24, 36, 48, 60)}


def _horizons_help() -> str:
    """The per-dataset default horizons as --help states them, read from :data:`DEFAULT_HORIZONS` (never stale)."""
    by_horizons: dict[tuple[int, ...], list[str]] = {}
    for name, hs in DEFAULT_HORIZONS.items():
        by_horizons.setdefault(hs, []).append(name)
    common = max(by_horizons, key=lambda hs: len(by_horizons[hs]))
    others = [f"{', '.join(names)} {' '.join(map(str, hs))}" for hs, names in by_horizons.items() if hs != common]
    return "; ".join([" ".join(map(str, common)), *others])


def _csv_list(text: str) -> list[str]:
    return [t for t in text.replace(",", " ").split() if t]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suite", choices=sorted(SUITES), default="point", help="which benchmark (default: %(default)s)")
    parser.add_argument("--datasets", nargs="+", default=list(BENCHMARK_DATASETS), metavar="NAME",
                        help="registered dataset names (space- or comma-separated; default: %(default)s)")
    parser.add_argument("--horizons", nargs="+", type=int, default=None, metavar="H",
                        help=f"horizons for every dataset (default: {_horizons_help()})")
    parser.add_argument("--out", default="docs/results", help="output folder for <suite>.json/.md (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="one horizon per dataset and a capped budget (smoke run, minutes)")
    parser.add_argument("--data-dir", default=None, help="folder holding the benchmark CSV files (default: ../shared/data etc.)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N] (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch CPU threads per process (0 = torch's default). On a busy machine 1 is much faster: "
                             "small ops with 2+ threads spin-wait for a descheduled thread")
    parser.add_argument("--jobs", type=int, default=1,
                        help="(dataset, horizon) cells run in this many worker processes (default: %(default)s)")
    # Options only the probabilistic suite reads (--samples, --methods, ...); its module is light to import.
    try:
        from forecasting.bench.forecast.probabilistic import add_suite_arguments
    except ModuleNotFoundError:  # pragma: no cover - suite not part of this build
        add_suite_arguments = None
    if add_suite_arguments is not None:
        add_suite_arguments(parser)


def horizons_for(dataset: str, requested: list[int] | None, quick: bool) -> list[int]:
    """Horizons of one dataset: ``requested`` if given, else the protocol's; ``quick`` keeps one."""
    if requested:
        return list(requested)[:1] if quick else list(requested)
    default = DEFAULT_HORIZONS.get(dataset, (96,))
    if quick:
        # 96 (ILI 24): the paper's main horizon; also the cheaper ETT preset (1 block, hidden 64).
        return [96 if 96 in default else default[0]]
    return list(default)


def normalise_datasets(names: list[str]) -> list[str]:
    """Split comma lists and map aliases to registry names where the registry knows them."""
    out: list[str] = []
    for name in (n for raw in names for n in _csv_list(raw)):
        try:
            from forecasting.data.registry import get_spec

            spec = get_spec(name)
            out.append(spec.name if spec else name)
        except ImportError:  # pragma: no cover - data layer always present in a full build
            out.append(name)
    return out


def run(args: argparse.Namespace) -> int:
    module_name = SUITES[args.suite]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            raise ForecastingError(
                f"the {args.suite!r} forecasting suite is not available in this build yet; "
                f"available: {', '.join(s for s, m in SUITES.items() if _importable(m))}"
            ) from exc
        raise
    args.datasets = normalise_datasets(args.datasets)
    return module.run(args)


def _importable(module_name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module_name) is not None
