"""Helpers shared by the run commands (train, predict, evaluate, backtest, demo).

* Run configs: a forecaster YAML (:class:`ForecasterConfig` sections) plus one optional
  top-level key ``dataset`` naming the data to train on (registry name or file path), so a
  config file alone says what to train on what.
* Run directories ``runs/<id>/``: built under a hidden temporary sibling and renamed into place
  when complete, so an interrupted or failed run never leaves a directory that looks finished.
* Model paths: ``--model`` takes a run directory (``runs/<id>``, holding ``model/``) or an
  artifact directory itself.
* Atomic file writes (temporary file in the same folder + ``os.replace``).
"""
from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import sys
import uuid
from pathlib import Path
from typing import Any, Sequence

from forecasting.core.atomic import atomic_write_text, json_safe, staged_dir  # noqa: F401  (staged_dir: re-exported for commands and app)
from forecasting.core.errors import ForecastingError

log = logging.getLogger(__name__)

RUN_META = "run.json"
MODEL_SUBDIR = "model"
DATASET_KEY = "dataset"


# ------------------------------------------------------------------------------------ configs
def load_run_config(path: str | Path | None, overrides: Sequence[str] = (), dataset: str | None = None):
    """YAML + ``--set`` overrides -> ``(ForecasterConfig, dataset or None, resolved dict)``.

    The top-level ``dataset`` key is taken out before the rest is validated as a
    :class:`~forecasting.forecaster.config.ForecasterConfig` (unknown keys -> error with a
    did-you-mean). ``dataset`` (e.g. ``--data``) wins over the file's value.
    """
    from forecasting.forecaster.config import read_forecaster_config

    return read_forecaster_config(path, overrides, dataset)


# ------------------------------------------------------------------------------------ models
def resolve_model_dir(path: str | Path) -> Path:
    """The artifact directory for ``--model``: a run directory's ``model/`` or the artifact itself."""
    p = Path(path)
    if not p.exists():
        raise ForecastingError(f"model not found: {p}; pass a run directory written by `forecasting train` (runs/<id>)")
    if (p / MODEL_SUBDIR / "manifest.json").is_file():
        return p / MODEL_SUBDIR
    if (p / "manifest.json").is_file():
        return p
    if p.is_dir() and (p / MODEL_SUBDIR).exists():
        raise ForecastingError(f"{p / MODEL_SUBDIR} is not a complete model artifact (no manifest.json); retrain with `forecasting train`")
    raise ForecastingError(f"{p} is not a run or model directory (no model/manifest.json); pass a directory written by `forecasting train`")


def load_forecaster(path: str | Path, device: str = "auto"):
    """Load the forecaster of a run or artifact directory."""
    from forecasting.forecaster.api import Forecaster

    return Forecaster.load(resolve_model_dir(path), device=device)


def read_run_meta(model_path: str | Path) -> dict[str, Any]:
    """``run.json`` of the run that ``--model`` points into (``{}`` when the path is a bare artifact)."""
    p = Path(model_path)
    for candidate in (p / RUN_META, p.parent / RUN_META):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                log.warning("%s is unreadable; ignoring it", candidate)
                return {}
    return {}


# ------------------------------------------------------------------------------------ run dirs
def new_run_id(stem: str) -> str:
    """``<stem>-YYYYmmdd-HHMMSS`` (UTC) plus a short suffix: sortable and collision-free."""
    clean = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem) or "run"
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{clean}-{stamp}-{uuid.uuid4().hex[:4]}"






def write_json(path: str | Path, obj: Any) -> Path:
    """Atomic JSON with NaN/inf written as ``null`` (strict JSON readers accept it)."""
    return atomic_write_text(path, json.dumps(json_safe(obj, stringify_unknown=True), indent=2) + "\n")




def command_line() -> str:
    """The command as typed (``forecasting ...``), for run records and result files."""
    import shlex

    return "forecasting " + " ".join(shlex.quote(a) for a in sys.argv[1:])


# ------------------------------------------------------------------------------------ arguments
def add_data_arguments(p: argparse.ArgumentParser, required: bool = False, help_text: str | None = None) -> None:
    """``--data`` plus the reading options shared with ``forecasting data``."""
    p.add_argument("--data", required=required, metavar="PATH_OR_NAME",
                   help=help_text or "a .csv/.parquet file or a registered dataset name (ETTh1, ETTh2, exchange_rate, "
                                     "national_illness, vic_elec)")
    p.add_argument("--data-dir", help="directory holding the benchmark files (else $FORECASTING_DATA, ../shared/data)")
    p.add_argument("--item", help="for a long-format file with several items, the item to use")


def load_frame(source: str, args: argparse.Namespace, missing: str | None = None):
    """One :class:`SeriesFrame` from a name or path (the data layer reports any problem)."""
    from forecasting.data import load_series

    kw = {"item": getattr(args, "item", None)}
    if missing and missing != "error":
        kw["missing"] = missing
    return load_series(source, data_dir=getattr(args, "data_dir", None), **kw)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def quantile_list(text: str) -> tuple[float, ...]:
    """argparse type: ``0.05,0.5,0.95`` -> sorted unique levels in (0, 1)."""
    try:
        levels = sorted({round(float(t), 6) for t in text.replace(" ", ",").split(",") if t})
    except ValueError:
        raise argparse.ArgumentTypeError(f"quantiles must be numbers like 0.05,0.5,0.95, got {text!r}") from None
    if not levels or any(not 0.0 < q < 1.0 for q in levels):
        raise argparse.ArgumentTypeError(f"quantiles must lie strictly between 0 and 1, got {text!r}")
    return tuple(levels)


