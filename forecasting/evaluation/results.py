"""Benchmark result files: ``<out>/<suite>.json`` + ``<out>/<suite>.md`` (docs/evaluation.md layout).

Rows are plain dicts, e.g. ``{"dataset": "ETTh2", "horizon": 48, "method": "koopa",
"metrics": {...}, "seconds": {...}, "peak_rss_mb": ...}``. A failed method is a row with
``"error": "..."`` — never silently absent.
"""
from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import os
import platform
import resource
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from forecasting.core.atomic import atomic_write_text, json_safe

log = logging.getLogger(__name__)


def host_info(device: str | torch.device = "cpu") -> dict[str, Any]:
    """Where the numbers came from: device, torch version, CPU count, threads."""
    info: dict[str, Any] = {
        "device": str(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
    }
    if str(device).startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux ru_maxrss is KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0




def reusable_rows(json_path: str | Path, settings: dict, key) -> dict:
    """Finished rows of an earlier result file written with the same ``settings`` (``--resume``).

    Returns ``{key(row): row}`` for rows without an error; an unreadable file or other settings give
    ``{}`` (with a warning for the latter), so a changed budget never mixes with old numbers.
    """
    path = Path(json_path)
    if not path.exists():
        return {}
    try:
        payload = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}
    if payload.get("settings") != json.loads(json.dumps(json_safe(settings))):
        log.warning("--resume: %s was run with other settings; starting afresh", path)
        return {}
    return {key(r): r for r in payload.get("rows", []) if not r.get("error")}


def write_results(out_dir: str | Path, suite: str, rows: Sequence[dict], *, device: str = "cpu",
                  command: str | None = None, markdown: str | None = None, extra: dict | None = None) -> tuple[Path, Path]:
    """Write the JSON and Markdown result files atomically; return their paths.

    Args:
        out_dir: output folder (created).
        suite: suite name, also the file stem.
        rows: result rows (see module docstring).
        device: device the numbers were measured on.
        command: the exact command line that produced the results (recorded in both files).
        markdown: the human-readable body; defaults to :func:`rows_to_markdown`.
        extra: additional top-level JSON fields (goals, notes).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "suite": suite,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": host_info(device),
        "command": command,
        "rows": list(rows),
        **(extra or {}),
    }
    json_path, md_path = out / f"{suite}.json", out / f"{suite}.md"
    atomic_write_text(json_path, json.dumps(json_safe(payload), indent=2))
    body = markdown if markdown is not None else rows_to_markdown(rows)
    header = f"# Benchmark: {suite}\n\nCreated {payload['created']} on {payload['host']['device']} (torch {payload['host']['torch']}, {payload['host']['cpu_count']} CPUs).\n"
    if command:
        header += f"\nCommand:\n\n```\n{command}\n```\n"
    atomic_write_text(md_path, header + "\n" + body + "\n")
    return json_path, md_path


def rows_to_markdown(rows: Iterable[dict], keys: Sequence[str] | None = None, metric_keys: Sequence[str] | None = None,
                     digits: int = 4) -> str:
    """A Markdown table: identifying keys, then metrics, then seconds; errors in their own column."""
    rows = list(rows)
    if not rows:
        return "_no rows_"
    id_keys = list(keys or [k for k in ("target", "dataset", "model", "horizon", "method") if any(k in r for r in rows)])
    mkeys = list(metric_keys or dict.fromkeys(k for r in rows for k in r.get("metrics", {})))
    skeys = list(dict.fromkeys(k for r in rows for k in r.get("seconds", {})))
    has_err = any(r.get("error") for r in rows)
    head = id_keys + mkeys + [f"{k} s" for k in skeys] + (["error"] if has_err else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r.get(k, "")) for k in id_keys]
        cells += [format_number(r.get("metrics", {}).get(k), digits) for k in mkeys]
        cells += [format_number(r.get("seconds", {}).get(k), 2) for k in skeys]
        if has_err:
            cells.append(str(r.get("error", "") or "").replace("|", "/")[:120])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "nan"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 10 ** -digits):
            return f"{value:.3g}"
        return f"{value:.{digits}f}"
    return str(value)
