"""Sharded batch prediction: ``n`` independent processes each forecast a share, one merge step.

Batch prediction draws batch ``b`` with seed ``batch_seed(seed, b)`` (:mod:`forecasting.forecaster.batch.predict`),
so a series' samples depend on which batch it is in. To make the merged output *equal* to a
single-process run, shards split the work by **batch**, not by series: shard ``i`` of ``n`` owns
batches ``b`` with ``b % n == i`` (round robin: shards stay balanced whatever the file/chunk
layout). Every shard still lists and validates all inputs (cheap) so batch numbering is the same
everywhere; it runs the model only for its own batches and tags each row with its batch index in
a ``_batch`` column. :func:`merge_shards` interleaves the shard files by that index (stable, so
row order within a batch is kept), drops the column and writes the result atomically: the rows,
their order and their values are those of the single-process run (CSV: byte for byte).

``select_shard(items, i, n)`` is the general-purpose split (contiguous, balanced blocks) for work
where per-item results do not depend on batching (e.g. fitting one model per item, or a
``torchrun``-launched loop over series with per-item seeds); :func:`shard_from_env` gives a
``torchrun`` worker its ``(rank, world_size)`` shard.
"""
from __future__ import annotations

import heapq
import logging
import os
from pathlib import Path
from typing import Iterator, Sequence, TypeVar

from forecasting.core.atomic import atomic_path
from forecasting.core.errors import ForecastingError
from forecasting.core.writable import ensure_writable

log = logging.getLogger(__name__)

T = TypeVar("T")
BATCH_COLUMN = "_batch"
Shard = tuple[int, int]


def parse_shard(spec: str | Sequence[int] | None) -> Shard | None:
    """``"i/n"`` (0-based ``i``) -> ``(i, n)``; ``None``/``"0/1"`` stay unsharded (``None``)."""
    if spec is None:
        return None
    if isinstance(spec, str):
        parts = spec.strip().split("/")
        try:
            i, n = (int(p) for p in parts) if len(parts) == 2 else (None, None)  # type: ignore[misc]
        except ValueError:
            i = n = None
    else:
        i, n = (int(spec[0]), int(spec[1])) if len(spec) == 2 else (None, None)
    if i is None or n is None or n < 1 or not 0 <= i < n:
        raise ForecastingError(f"--shard {spec!r} is not 'i/n' with 0 <= i < n (e.g. 0/4, 1/4, 2/4, 3/4)")
    return None if n == 1 else (i, n)


def shard_bounds(n_items: int, i: int, n: int) -> tuple[int, int]:
    """``[lo, hi)`` of block ``i`` of ``n`` nearly equal contiguous blocks of ``n_items``."""
    if n < 1 or not 0 <= i < n:
        raise ForecastingError(f"shard {i}/{n}: need 0 <= i < n")
    return (i * n_items) // n, ((i + 1) * n_items) // n


def select_shard(items: Sequence[T], i: int, n: int) -> list[T]:
    """Block ``i`` of ``n`` of ``items`` (order kept; sizes differ by at most one; blocks partition ``items``)."""
    lo, hi = shard_bounds(len(items), i, n)
    return list(items[lo:hi])


def owns_batch(batch_index: int, shard: Shard | None) -> bool:
    """Whether shard ``(i, n)`` forecasts batch ``batch_index`` (always True when unsharded)."""
    return shard is None or batch_index % shard[1] == shard[0]


def tag_batch(frame, batch_index: int, shard: Shard | None):
    """``frame`` (polars) with the ``_batch`` column the merge orders by; unchanged when unsharded."""
    if shard is None:
        return frame
    import polars as pl

    return frame.with_columns(pl.lit(int(batch_index), dtype=pl.Int64).alias(BATCH_COLUMN))


def shard_path(output: str | Path, i: int, n: int) -> Path:
    """``out.parquet`` -> ``out.shard-1-of-4.parquet`` (the file shard ``i`` writes)."""
    out = Path(output)
    return out.with_name(f"{out.stem}.shard-{i}-of-{n}{out.suffix}")


def shard_from_env() -> Shard | None:
    """``(RANK, WORLD_SIZE)`` when launched by torchrun with more than one process, else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return (int(os.environ.get("RANK", "0")), world) if world > 1 else None


def merge_shards(paths: Sequence[str | Path], out: str | Path) -> int:
    """Merge shard outputs (all ``.csv`` or all ``.parquet``) into ``out`` in single-process order.

    Returns:
        The number of data rows written.

    Raises:
        ForecastingError: a missing/unreadable shard, mixed formats, a shard without the
            ``_batch`` column (written without ``--shard``), batches present in two shards, or a
            gap in the batch sequence (a shard is missing).
    """
    files = [Path(p) for p in paths]
    if not files:
        raise ForecastingError("merge: no shard files given")
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        raise ForecastingError(f"merge: shard file(s) {missing} do not exist; run every shard first")
    suffixes = {p.suffix.lower() for p in files}
    target = Path(out)
    if len(suffixes) != 1 or target.suffix.lower() not in suffixes:
        raise ForecastingError(f"merge: shards and output must share one format (.csv or .parquet), got "
                               f"{sorted(suffixes)} -> {target.suffix}")
    ensure_writable(target, "merge output")  # before reading the shards: a directory or read-only folder fails now
    # A failed check (a missing shard) removes the temporary file: no half-merged output appears.
    with atomic_path(target) as tmp:
        if target.suffix.lower() == ".csv":
            rows, batches = _merge_csv(files, tmp)
        else:
            rows, batches = _merge_parquet(files, tmp)
        _check_batches(batches, files)
    log.info("merged %d shard(s) into %s (%d rows, %d batches)", len(files), target, rows, len(batches))
    return rows


def _check_batches(batches: list[int], files: list[Path]) -> None:
    seen = sorted(batches)
    dup = [b for a, b in zip(seen, seen[1:]) if a == b]
    if dup:
        raise ForecastingError(f"merge: batch {dup[0]} appears in two shards; merge the outputs of one run only")
    if seen and seen != list(range(seen[-1] + 1)):
        gap = next(i for i, b in enumerate(seen) if b != i)
        raise ForecastingError(f"merge: batch {gap} is in none of the {len(files)} shard files; a shard is missing or "
                               "incomplete (pass every shard-i-of-n file)")


def _csv_rows(path: Path, batches: list[int]) -> Iterator[tuple[int, int, str]]:
    """``(batch, line number, line without the tag)``; records the shard's distinct batches."""
    with open(path, encoding="utf-8", newline="") as fh:
        next(fh, None)
        for k, line in enumerate(fh):
            body, _, tag = line.rstrip("\r\n").rpartition(",")
            b = int(tag)
            if not batches or batches[-1] != b:
                batches.append(b)
            yield b, k, body + "\n"


def _merge_csv(files: list[Path], tmp: Path) -> tuple[int, list[int]]:
    header = None
    for p in files:
        with open(p, encoding="utf-8", newline="") as fh:
            h = fh.readline().rstrip("\r\n")
        if not h.endswith("," + BATCH_COLUMN):
            raise ForecastingError(f"merge: {p} has no {BATCH_COLUMN} column (last); it was not written with --shard")
        if header is not None and h != header:
            raise ForecastingError(f"merge: {p} has different columns than {files[0]}")
        header = h
    assert header is not None
    rows = 0
    per_file: list[list[int]] = [[] for _ in files]
    # Each shard is already in batch order: a k-way merge keeps memory flat. Ties cannot occur
    # across shards (a batch lives in one shard); (batch, line number) keeps in-batch order.
    streams = [_csv_rows(p, seen) for p, seen in zip(files, per_file)]
    with open(tmp, "w", encoding="utf-8", newline="") as out:
        out.write(header[: -len(BATCH_COLUMN) - 1] + "\n")
        for _, _, line in heapq.merge(*streams):
            out.write(line)
            rows += 1
    return rows, [b for seen in per_file for b in seen]


def _merge_parquet(files: list[Path], tmp: Path) -> tuple[int, list[int]]:
    import polars as pl

    frames = []
    for p in files:
        try:
            df = pl.read_parquet(p)
        except Exception as exc:  # noqa: BLE001 - truncated/foreign file
            raise ForecastingError(f"merge: cannot read {p} ({exc}); re-run that shard") from exc
        if BATCH_COLUMN not in df.columns:
            raise ForecastingError(f"merge: {p} has no {BATCH_COLUMN} column; it was not written with --shard")
        frames.append(df)
    batches = [b for df in frames for b in df.get_column(BATCH_COLUMN).unique(maintain_order=True).to_list()]
    merged = pl.concat(frames, how="vertical").sort(BATCH_COLUMN, maintain_order=True)
    merged.drop(BATCH_COLUMN).write_parquet(tmp)
    return merged.height, batches


__all__ = ["BATCH_COLUMN", "merge_shards", "owns_batch", "parse_shard", "select_shard", "shard_bounds", "shard_from_env",
           "shard_path", "tag_batch"]
