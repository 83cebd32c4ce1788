"""Device resolution: ``auto`` means CUDA when available, else CPU."""
from __future__ import annotations

import torch

from forecasting.core.errors import ForecastingError


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """Turn ``auto``/``cpu``/``cuda``/``cuda:1`` into a ``torch.device``, with a clear error."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ForecastingError(f"unknown device {name!r}: use 'auto', 'cpu' or 'cuda[:N]'") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ForecastingError(f"device {name!r} requested but CUDA is not available; use device=auto or cpu")
    return device


def describe_device(device: torch.device) -> dict[str, object]:
    """Name and memory of a device, for logs, result files and the dashboard's device panel."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return {"device": "cuda", "name": props.name, "memory_gb": round(props.total_memory / 2**30, 1)}
    return {"device": "cpu", "name": "cpu", "threads": torch.get_num_threads()}
