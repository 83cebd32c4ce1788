"""One self-describing artifact directory: safetensors + JSON, checksummed, written atomically.

Layout of ``<dir>/``::

    manifest.json          format name + version, package version, sha256 and size of every file
    metadata.json          everything that is not a tensor (config, scaler, columns, frequency,
                           training summary, skeletons of nested state dicts)
    config.yaml            the resolved config, for people (also recorded in metadata.json)
    <name>.safetensors     one file per tensor group (e.g. model weights, variational parameters)

Design choices:
* No pickle anywhere: tensors go through ``safetensors`` and everything else through JSON, so
  loading an artifact from an untrusted source cannot execute code.
* The checksums detect truncation and accidental edits (integrity, not authenticity: someone who
  rewrites the manifest as well is not detected — sign the directory if that matters).
* Writing goes to a temporary sibling directory that is renamed into place at the end, so an
  interrupted save never leaves a half-written artifact under the final name.
* ``format_version`` is checked: an artifact written by a newer, incompatible release is rejected
  with a message saying to upgrade.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from forecasting import __version__
from forecasting.core.atomic import staged_dir
from forecasting.core.errors import ForecastingError

logger = logging.getLogger(__name__)

FORMAT_NAME = "forecasting-artifact"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
METADATA = "metadata.json"


@dataclass
class Artifact:
    """A loaded artifact: ``metadata`` (plain JSON) and ``tensors[group][name]`` on the requested device."""

    path: Path
    kind: str
    metadata: dict[str, Any]
    tensors: dict[str, dict[str, torch.Tensor]]
    manifest: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# nested state dicts <-> (flat tensors, JSON skeleton)


def flatten_state(tree: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Split a nested state (dicts/lists/tensors/scalars) into flat tensors and a JSON skeleton.

    Tensors are replaced by ``{"__tensor__": key}`` in the skeleton, tuples by ``{"__tuple__": [...]}``
    and dicts with non-string keys by ``{"__dict__": [[key, value], ...]}``; :func:`unflatten_state`
    inverts it.
    """
    tensors: dict[str, torch.Tensor] = {}

    def walk(node: Any, key: str) -> Any:
        if isinstance(node, torch.Tensor):
            if key in tensors:  # e.g. keys 0 and "0" in one dict
                raise TypeError(f"two entries of the state map to the tensor name {key!r}")
            tensors[key] = node.detach().to("cpu").contiguous().clone()
            return {"__tensor__": key}
        if isinstance(node, dict):
            if all(isinstance(k, str) for k in node):
                return {k: walk(v, f"{key}.{k}" if key else k) for k, v in node.items()}
            # Non-string keys (an optimiser's state is keyed by parameter index): JSON objects would
            # turn them into strings, so the pairs are stored as a list to give back the same keys.
            for k in node:
                if not (k is None or isinstance(k, (str, int, float, bool))):
                    raise TypeError(f"state keys must be strings or numbers, got {k!r} at {key!r}")
            return {"__dict__": [[k, walk(v, f"{key}.{k}" if key else str(k))] for k, v in node.items()]}
        if isinstance(node, tuple):
            return {"__tuple__": [walk(v, f"{key}.{i}") for i, v in enumerate(node)]}
        if isinstance(node, list):
            return [walk(v, f"{key}.{i}") for i, v in enumerate(node)]
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if hasattr(node, "item") and getattr(node, "ndim", 1) == 0:  # numpy scalar
            return node.item()
        raise TypeError(f"cannot store {type(node).__name__} at {key!r} in an artifact (tensors and plain values only)")

    skeleton = walk(tree, prefix)
    return tensors, skeleton


def unflatten_state(skeleton: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten_state`."""
    if isinstance(skeleton, dict):
        if set(skeleton) == {"__tensor__"}:
            key = skeleton["__tensor__"]
            if key not in tensors:
                raise ForecastingError(f"artifact is inconsistent: tensor {key!r} is missing; re-save the model")
            return tensors[key]
        if set(skeleton) == {"__tuple__"}:
            return tuple(unflatten_state(v, tensors) for v in skeleton["__tuple__"])
        if set(skeleton) == {"__dict__"}:
            return {k: unflatten_state(v, tensors) for k, v in skeleton["__dict__"]}
        return {k: unflatten_state(v, tensors) for k, v in skeleton.items()}
    if isinstance(skeleton, list):
        return [unflatten_state(v, tensors) for v in skeleton]
    return skeleton


# ---------------------------------------------------------------------------------------------
# save / load


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_bytes(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def save_artifact(path: str | Path, kind: str, metadata: dict[str, Any], tensors: dict[str, dict[str, torch.Tensor]],
                  config: dict[str, Any] | None = None, replace_foreign: bool = False) -> Path:
    """Write an artifact directory atomically (temp sibling + rename) and return its path.

    Args:
        path: target directory; replaced if it already holds an artifact, refused if it holds
            anything else (so a typo cannot wipe a user's folder).
        kind: what the artifact holds (``"forecaster"``, ``"classifier"``), checked on load.
        metadata: JSON-serialisable metadata.
        tensors: tensor groups, each written to ``<group>.safetensors``.
        config: resolved config, also written as ``config.yaml`` for people.
        replace_foreign: replace ``path`` even though it holds no manifest — only for a directory
            the caller has recognised as its own (e.g. an artifact in an older, pre-manifest format).
    """
    from safetensors.torch import save_file

    path = Path(path)
    if (path.exists() and not (path / MANIFEST).is_file() and (not path.is_dir() or any(path.iterdir()))
            and not (replace_foreign and path.is_dir())):
        raise ForecastingError(f"{path} exists and is not a forecasting artifact; choose an empty or new directory")
    # Written under a temporary sibling and swapped in only when complete (Ctrl-C keeps the old one).
    with staged_dir(path, replace=True) as tmp:
        files: dict[str, dict[str, Any]] = {}
        for group, group_tensors in tensors.items():
            name = f"{group}.safetensors"
            clean = {k: v.detach().to("cpu").contiguous().clone() for k, v in group_tensors.items()}
            save_file(clean, str(tmp / name), metadata={"format": FORMAT_NAME, "group": group})
        body = json.dumps(metadata, indent=1, sort_keys=False, allow_nan=True).encode("utf-8")
        _write_bytes(tmp / METADATA, body)
        if config is not None:
            _write_bytes(tmp / "config.yaml", yaml.safe_dump(config, sort_keys=False).encode("utf-8"))
        for f in sorted(tmp.iterdir()):
            files[f.name] = {"sha256": _sha256(f), "bytes": f.stat().st_size}
        manifest = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "kind": kind,
            "package_version": __version__,
            "torch_version": torch.__version__.split("+")[0],
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "groups": sorted(tensors),
            "files": files,
        }
        _write_bytes(tmp / MANIFEST, json.dumps(manifest, indent=1).encode("utf-8"))
    logger.info("saved %s artifact to %s", kind, path)
    return path


def read_manifest(path: str | Path) -> dict[str, Any]:
    """Read and check ``manifest.json`` (format name and version) without loading tensors."""
    path = Path(path)
    if not path.is_dir():
        raise ForecastingError(f"artifact directory not found: {path}")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise ForecastingError(f"{path} is not a forecasting artifact (no {MANIFEST}); pass the directory written by save()")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ForecastingError(f"{mpath} is corrupt ({exc}); re-save the model") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise ForecastingError(f"{mpath} is not a {FORMAT_NAME} manifest; pass the directory written by save()")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise ForecastingError(f"{mpath} has no valid format_version; re-save the model")
    if version > FORMAT_VERSION:
        raise ForecastingError(
            f"{path} was written with artifact format {version} (package {manifest.get('package_version')}), "
            f"newer than this release supports ({FORMAT_VERSION}); upgrade the forecasting package"
        )
    return manifest


def load_artifact(path: str | Path, kind: str, device: str | torch.device = "cpu") -> Artifact:
    """Verify and load an artifact onto ``device`` (any device, whatever it was saved from).

    Raises:
        ForecastingError: missing/extra-truncated/tampered files (checksum or size mismatch), a
            newer format version, or an artifact of another kind.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    manifest = read_manifest(path)
    if manifest.get("kind") != kind:
        raise ForecastingError(f"{path} holds a {manifest.get('kind')!r} artifact, not a {kind!r} one")
    files = manifest.get("files")
    if not isinstance(files, dict) or METADATA not in files:
        raise ForecastingError(f"{path}/{MANIFEST} lists no files; re-save the model")
    for name, info in files.items():
        f = path / name
        if "/" in name or "\\" in name or name.startswith("."):
            raise ForecastingError(f"{path}/{MANIFEST} names an invalid file {name!r}; the artifact was tampered with")
        if not f.is_file():
            raise ForecastingError(f"artifact file {f} is missing; copy the whole directory or re-save the model")
        size = f.stat().st_size
        if size != info.get("bytes"):
            raise ForecastingError(f"artifact file {f} has {size} bytes, expected {info.get('bytes')} (truncated or modified); re-save the model")
        if _sha256(f) != info.get("sha256"):
            raise ForecastingError(f"artifact file {f} fails its checksum (modified or corrupt); re-save the model")
    try:
        metadata = json.loads((path / METADATA).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ForecastingError(f"{path}/{METADATA} is corrupt ({exc}); re-save the model") from exc
    dev = torch.device(device)
    tensors: dict[str, dict[str, torch.Tensor]] = {}
    for group in manifest.get("groups", []):
        name = f"{group}.safetensors"
        if name not in files:
            raise ForecastingError(f"{path}/{MANIFEST} lists group {group!r} without its file; re-save the model")
        try:
            # Load to CPU first: safetensors' device argument wants "cuda:0" style strings and the
            # tensors are small; moving afterwards maps any saved device onto the requested one.
            loaded = load_file(str(path / name), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise ForecastingError(f"{path / name} cannot be read ({exc}); re-save the model") from exc
        tensors[group] = {k: v.to(dev) for k, v in loaded.items()}
    return Artifact(path=path, kind=kind, metadata=metadata, tensors=tensors, manifest=manifest)
