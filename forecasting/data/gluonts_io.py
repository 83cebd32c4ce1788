"""Bridges to gluonts: SeriesFrame <-> ListDataset/PandasDataset, FileDataset, the repository.

gluonts stores a series as ``{"start": pd.Period, "target": array, "item_id": ...}`` with an
implicit regular index. Going to gluonts keeps either one multivariate entry per frame
(``target [C, T]``) or, by default, one univariate entry per channel (item id = channel
name, or ``<item>/<channel>``), which is what most gluonts estimators expect.

Coming back, a Period becomes its start time — except anchored weeks (``W-TUE``), whose
period *ends* on the anchor day, so the anchor day is the timestamp (as in the ILI file).

``repository_dataset`` never reaches the network unless asked: it looks in the local cache
first and fails fast with a clear message when the dataset is absent.
"""
from __future__ import annotations

import logging
import os
import shutil
import socket
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from forecasting.data.checks import MissingPolicy, RawSeries, Where, check_series
from forecasting.data.problems import raise_first
from forecasting.data.series import SeriesFrame
from forecasting.core.errors import ForecastingError

log = logging.getLogger(__name__)


def _channel_ids(frame: SeriesFrame) -> list[str]:
    if frame.item_id is None:
        return list(frame.columns)
    if frame.columns == ("target",):
        return [str(frame.item_id)]
    return [f"{frame.item_id}/{c}" for c in frame.columns]


def to_long(frames: SeriesFrame | Iterable[SeriesFrame]) -> pd.DataFrame:
    """Melt frames into the long layout ``item_id, timestamp, target`` (one item per channel)."""
    frames = [frames] if isinstance(frames, SeriesFrame) else list(frames)
    parts = []
    for frame in frames:
        for j, item in enumerate(_channel_ids(frame)):
            parts.append(pd.DataFrame({"item_id": item, "timestamp": frame.timestamps, "target": frame.values[:, j]}))
    return pd.concat(parts, ignore_index=True)


def combine_items(frames: Iterable[SeriesFrame], name: str | None = None) -> SeriesFrame:
    """Join univariate frames on the same time index into one wide frame (columns = item ids).

    Raises:
        ForecastingError: frames differ in timestamps or frequency (then they are not one table).
    """
    frames = list(frames)
    if not frames:
        raise ForecastingError("no series to combine")
    first = frames[0]
    columns, blocks = [], []
    for frame in frames:
        if not np.array_equal(frame.timestamps, first.timestamps) or frame.freq != first.freq:
            raise ForecastingError(
                f"cannot combine item {frame.item_id!r} with {first.item_id!r}: different timestamps or frequency; "
                "keep them as separate series"
            )
        ids = _channel_ids(frame)
        columns += ids
        blocks.append(frame.values)
    return SeriesFrame(name or first.name, first.timestamps, np.concatenate(blocks, axis=1), tuple(columns),
                       first.freq, None, dict(first.meta))


# Timestamp aliases of period starts -> the Period alias gluonts stores (Period has no "MS").
_PERIOD_ALIAS = {"MS": "M", "QS": "Q", "QS-JAN": "Q", "YS": "Y", "YS-JAN": "Y", "AS": "Y"}


def _period_freq(freq: str) -> str:
    return _PERIOD_ALIAS.get(freq, freq)


def _start_period(frame: SeriesFrame) -> pd.Period:
    if not frame.freq:
        raise ForecastingError(f"{frame.name}: gluonts needs a frequency; pass freq")
    first = pd.Timestamp(frame.timestamps[0])
    start = pd.Period(first, freq=_period_freq(frame.freq))
    if _period_timestamps(start, 1)[0] != first.to_datetime64():
        # A Period cannot hold 10:01 at hourly frequency; converting would shift every timestamp.
        raise ForecastingError(
            f"{frame.name}: first timestamp {first} is not aligned to freq {frame.freq!r}, which gluonts "
            "periods cannot represent; shift the timestamps onto the grid (e.g. floor them) first"
        )
    return start


def to_gluonts(frames: SeriesFrame | Iterable[SeriesFrame], kind: str = "list", multivariate: bool = False):
    """Convert frames to a gluonts dataset.

    Args:
        frames: one frame or several (all with the same ``freq``).
        kind: ``list`` (``ListDataset``) or ``pandas`` (``PandasDataset``).
        multivariate: one entry per frame with ``target [C, T]`` instead of one per channel.
    """
    frames = [frames] if isinstance(frames, SeriesFrame) else list(frames)
    if not frames:
        raise ForecastingError("no series to convert")
    freqs = {f.freq for f in frames}
    if len(freqs) != 1:
        raise ForecastingError(f"all series must share one frequency for gluonts, got {sorted(map(str, freqs))}")
    freq = _period_freq(freqs.pop())
    if kind == "list":
        from gluonts.dataset.common import ListDataset

        entries = []
        for frame in frames:
            start = _start_period(frame)
            if multivariate:
                entries.append({"start": start, "target": frame.values.T.astype(np.float32),
                                "item_id": str(frame.item_id or frame.name)})
            else:
                for j, item in enumerate(_channel_ids(frame)):
                    entries.append({"start": start, "target": frame.values[:, j].astype(np.float32), "item_id": item})
        return ListDataset(entries, freq=freq, one_dim_target=not multivariate)
    if kind == "pandas":
        from gluonts.dataset.pandas import PandasDataset

        tables: dict[str, pd.DataFrame] = {}
        for frame in frames:
            index = pd.PeriodIndex(pd.DatetimeIndex(frame.timestamps), freq=freq)
            if multivariate:
                tables[str(frame.item_id or frame.name)] = pd.DataFrame(frame.values, index=index, columns=list(frame.columns))
            else:
                for j, item in enumerate(_channel_ids(frame)):
                    tables[item] = pd.DataFrame({"target": frame.values[:, j]}, index=index)
        target = list(frames[0].columns) if multivariate else "target"
        return PandasDataset(tables, target=target, freq=freq)
    raise ForecastingError(f"unknown gluonts dataset kind {kind!r}; use 'list' or 'pandas'")


def _period_timestamps(start: pd.Period, length: int) -> np.ndarray:
    periods = pd.period_range(start, periods=length, freq=start.freq)
    if start.freqstr.startswith("W-"):
        stamps = periods.end_time.normalize()
    else:
        stamps = periods.start_time
    return stamps.values.astype("datetime64[ns]")


def from_gluonts(dataset: Iterable[dict], name: str = "gluonts", columns: list[str] | None = None,
                 missing: MissingPolicy = "error") -> list[SeriesFrame]:
    """Convert gluonts entries (any gluonts ``Dataset``) to frames, one per entry.

    Univariate entries get the column ``target``; multivariate ones ``columns`` (default
    ``"0".."C-1"``). NaN targets follow ``missing`` like file data.
    """
    frames, problems = [], []
    where = Where(name, has_lines=False)
    for i, entry in enumerate(dataset):
        start = entry["start"]
        if not isinstance(start, pd.Period):
            raise ForecastingError(f"{name}: entry {i} has no Period start; build the dataset with a freq")
        target = np.asarray(entry["target"], dtype=np.float64)
        values = target[:, None] if target.ndim == 1 else target.T
        cols = ("target",) if target.ndim == 1 else tuple(columns or [str(c) for c in range(values.shape[1])])
        item = str(entry.get("item_id", i))
        raw = RawSeries(_period_timestamps(start, len(values)), values, np.arange(len(values)), cols, item)
        frame, found = check_series(raw, where, name, _freq_alias(start), missing)
        problems += found
        if frame is not None:
            frames.append(frame)
    raise_first(problems, name)
    return frames


def _freq_alias(start: pd.Period) -> str:
    # Period spells month/quarter/year as M/Q/Y; as timestamps those are period *starts*.
    alias = start.freqstr
    return {"M": "MS", "Q-DEC": "QS", "Y-DEC": "YS", "A-DEC": "YS"}.get(alias, alias)


def read_file_dataset(path: str | Path, freq: str, missing: MissingPolicy = "error",
                      columns: list[str] | None = None, multivariate: bool | None = None) -> list[SeriesFrame]:
    """Read a gluonts ``FileDataset`` (JSON lines, ``.json.gz``, arrow or parquet; file or folder).

    Args:
        path: a file or a folder of such files.
        freq: the pandas frequency alias of the entries' ``start``.
        missing: policy for NaN targets.
        columns: channel names of multivariate targets.
        multivariate: whether targets are ``[C, T]``; ``None`` tries univariate first.
    """
    from gluonts.dataset.common import FileDataset
    from gluonts.exceptions import GluonTSDataError

    path = Path(path)
    if not path.exists():
        raise ForecastingError(f"{path}: not found; point at a gluonts .jsonl/.json.gz/.arrow/.parquet file or folder")
    try:
        if multivariate is None:
            try:
                entries = list(FileDataset(path, freq=_period_freq(freq), one_dim_target=True))
            except GluonTSDataError:  # 2-d targets: read again as multivariate
                entries = list(FileDataset(path, freq=_period_freq(freq), one_dim_target=False))
        else:
            entries = list(FileDataset(path, freq=_period_freq(freq), one_dim_target=not multivariate))
        return from_gluonts(entries, name=path.name, columns=columns, missing=missing)
    except ForecastingError:
        raise
    except Exception as exc:  # noqa: BLE001 - gluonts/arrow raise many types for a bad file
        raise ForecastingError(f"{path}: cannot read as a gluonts dataset: {' '.join(str(exc).split())[:200]}") from exc


def default_gluonts_dir() -> Path:
    """gluonts' own cache folder (``$GLUONTS_DATASETS`` or ``~/.gluonts/datasets``)."""
    env = os.environ.get("GLUONTS_DATASETS")
    return Path(env) if env else Path.home() / ".gluonts" / "datasets"


def repository_dataset(name: str, path: str | Path | None = None, *, allow_download: bool = False,
                       timeout: float = 10.0):
    """``gluonts.dataset.repository.get_dataset`` from a local cache, never hanging offline.

    Args:
        name: a gluonts repository name (``m4_hourly``, ``electricity``, ...).
        path: the cache folder (default :func:`default_gluonts_dir`).
        allow_download: let gluonts fetch/build a dataset missing from the cache.
        timeout: socket timeout (s) while gluonts downloads, so a dead network fails fast.

    Returns:
        gluonts ``TrainDatasets`` (``.train``, ``.test``, ``.metadata``).

    Raises:
        ForecastingError: unknown name, not cached (without ``allow_download``), or the download failed.
    """
    from gluonts.dataset.repository.datasets import dataset_recipes, get_dataset

    if name not in dataset_recipes:
        import difflib

        close = difflib.get_close_matches(name, list(dataset_recipes), n=1)
        raise ForecastingError(f"unknown gluonts dataset {name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    root = Path(path).expanduser() if path else default_gluonts_dir()
    cached = (root / name / "metadata.json").is_file()
    if not cached and not allow_download:
        raise ForecastingError(
            f"gluonts dataset {name!r} is not in the local cache {root}; copy a materialised copy to "
            f"{root / name} or allow the download (allow_download=True, needs network)"
        )
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        return get_dataset(name, path=root)
    except Exception as exc:  # noqa: BLE001 - urllib, gluonts and pandas errors alike
        if not cached:
            shutil.rmtree(root / name, ignore_errors=True)  # else the next call would treat a partial dir as cached
        raise ForecastingError(f"cannot get gluonts dataset {name!r} into {root}: {' '.join(str(exc).split())[:200]}; "
                               "check the network or copy a materialised copy into the cache") from exc
    finally:
        socket.setdefaulttimeout(previous)
