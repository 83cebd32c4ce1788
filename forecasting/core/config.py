"""Configs as data: YAML -> frozen dataclasses, unknown keys rejected, dotted overrides.

One place turns plain dictionaries into (nested) frozen dataclasses so that every
config in the project gets the same behaviour:

* unknown keys are an error with a "did you mean" suggestion,
* values are checked against the field's annotated type (int/float/str/bool/tuple/Enum),
* ``--set a.b=3`` overrides are parsed as YAML scalars and applied before validation; where the
  key's type is a string the text is taken as typed (``--set data.time_format=%d/%m/%Y %H:%M``),
* a dataclass may rename a key and keep the old name working: ``config_aliases = {"old": "new"}``.
"""
from __future__ import annotations

import dataclasses
import difflib
import enum
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from forecasting.core.atomic import atomic_write_text
from forecasting.core.errors import ForecastingError

T = TypeVar("T")


def _suggest(key: str, choices: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


_NULL_TEXT = ("null", "Null", "NULL", "~")


@dataclasses.dataclass(frozen=True)
class OverrideText:
    """One ``--set`` value as typed, resolved only when the key's type is known.

    YAML is the right reading for numbers, lists and booleans, but not for free text: a strftime
    format such as ``%d/%m/%Y %H:%M`` is not valid YAML at all (a leading ``%`` starts a YAML
    directive), ``12:30`` is the integer 750 in YAML 1.1 and ``|`` an empty block. So where the
    key's type is ``str`` the text is taken verbatim (a quoted value and ``null`` still mean what
    YAML says); everywhere else the YAML value is used, and invalid YAML is an error there.
    """

    text: str
    value: Any = None
    error: str | None = None

    def resolve(self, annotation: Any, where: str) -> Any:
        text = self.text.strip()
        quoted = text[:1] in ("'", '"') and self.error is None
        if _accepts_str(annotation) and not quoted and text not in _NULL_TEXT:
            return text
        if self.error is not None:
            raise ForecastingError(f"override {where}={self.text}: value is not valid YAML ({self.error}); "
                                   "quote it, e.g. --set 'key=\"text\"'")
        return self.value


def _accepts_str(annotation: Any) -> bool:
    """``str`` or an optional/union that includes ``str`` (not Literal/Enum: those name their choices)."""
    if annotation is str:
        return True
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return str in typing.get_args(annotation)
    return False


def _plain(value: Any, where: str) -> Any:
    """Unwrap override values nested in a free-form value (``Any``/``dict`` fields) by their YAML reading."""
    if isinstance(value, OverrideText):
        return value.resolve(Any, where)
    if isinstance(value, dict):
        return {k: _plain(v, f"{where}.{k}") for k, v in value.items()}
    return value


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check/convert one value against a field annotation; dataclasses recurse."""
    if isinstance(value, OverrideText):
        value = value.resolve(annotation, where)
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return _plain(value, where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(annotation)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ForecastingError as exc:
                errors.append(str(exc))
        if not errors:
            raise ForecastingError(f"{where}: invalid value {value!r}")
        # every alternative's reason, e.g. "x: expected true/false, got 'yes'; or 'yes' is not one of ['auto']"
        prefix = f"{where}: "
        rest = [e[len(prefix):] if e.startswith(prefix) else e for e in errors[1:]]
        raise ForecastingError("; or ".join([errors[0], *rest]))
    if origin is typing.Literal:
        allowed = typing.get_args(annotation)
        if value not in allowed:
            raise ForecastingError(f"{where}: {value!r} is not one of {list(allowed)}{_suggest(str(value), map(str, allowed))}")
        return value
    if origin in (tuple, list):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            value = [value]
        args = typing.get_args(annotation)
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ForecastingError(f"{where}: expected a mapping, got {value!r}")
        return dict(_plain(value, where))
    if dataclasses.is_dataclass(annotation):
        if isinstance(value, annotation):
            return value
        if not isinstance(value, dict):
            raise ForecastingError(f"{where}: expected a mapping of {annotation.__name__} fields, got {value!r}")
        return from_dict(annotation, value, where)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        try:
            return annotation(value)
        except ValueError:
            allowed = [m.value for m in annotation]
            raise ForecastingError(
                f"{where}: {value!r} is not one of {allowed}{_suggest(str(value), map(str, allowed))}"
            ) from None
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ForecastingError(f"{where}: expected true/false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ForecastingError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ForecastingError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ForecastingError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys are an error naming the closest field."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    prefix = f"{where}." if where else ""
    for old, new in getattr(cls, "config_aliases", {}).items():
        if old in data:
            if new in data:
                raise ForecastingError(f"config keys {prefix}{old} and {prefix}{new} are the same setting; give only {prefix}{new}")
            data[new] = data.pop(old)
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        raise ForecastingError(
            f"unknown config key {prefix}{key!r}{_suggest_key(key, fields, hints, prefix)}; valid keys here: {sorted(fields)}"
        )
    kwargs = {}
    for name, value in data.items():
        path = f"{where}.{name}" if where else name
        kwargs[name] = _coerce(value, hints[name], path)
    try:
        obj = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ForecastingError(f"{where or cls.__name__}: {exc}") from exc
    return obj


def _suggest_key(key: str, fields: dict[str, Any], hints: dict[str, Any], prefix: str) -> str:
    """Did-you-mean for an unknown key: a section one level down that has exactly this key (``missing`` ->
    ``data.missing``: a top-level spelling of a section's key is the likely slip), else the closest key here."""
    for name in fields:
        section = hints.get(name)
        if dataclasses.is_dataclass(section):
            inner = {f.name for f in dataclasses.fields(section) if f.init} | set(getattr(section, "config_aliases", {}))
            if key in inner:
                return f" (did you mean {prefix + name + '.' + key!r}?)"
    return _suggest(key, fields)


def to_dict(obj: Any) -> Any:
    """Dataclass (nested) -> plain YAML-safe dict; Enums become their values, tuples lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def parse_overrides(items: typing.Sequence[str]) -> list[tuple[list[str], Any]]:
    """``["a.b=3", "c=[1,2]"]`` -> ``[(["a","b"], OverrideText("3", 3)), (["c"], [1, 2])]``.

    Lists and mappings are parsed as YAML; a scalar (or text that is not valid YAML) stays an
    :class:`OverrideText`, resolved by :func:`from_dict` against the key's type.
    """
    out = []
    for item in items:
        if "=" not in item:
            raise ForecastingError(f"override {item!r} must look like key.subkey=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        if not key:
            raise ForecastingError(f"override {item!r} has an empty key")
        value: Any
        try:
            parsed = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as exc:
            value = OverrideText(raw, error=" ".join(str(exc).split("\n")[0].split()))
        else:
            value = parsed if isinstance(parsed, (list, dict)) else OverrideText(raw, parsed)
        out.append((key.split("."), value))
    return out


def apply_overrides(data: dict[str, Any], items: typing.Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with dotted overrides applied (unknown keys caught later by from_dict)."""
    import copy

    data = copy.deepcopy(data)
    for path, value in parse_overrides(items):
        node = data
        for part in path[:-1]:
            child = node.get(part)
            if isinstance(child, OverrideText) and child.value is None and child.error is None:
                child = None  # `--set data=null` then `--set data.x=1`: as with a YAML null
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise ForecastingError(f"override {'.'.join(path)}: {part!r} is not a section")
            node = child
        node[path[-1]] = value
    return data


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping with a clear error for a missing file or bad syntax."""
    path = Path(path)
    if path.is_dir():
        raise ForecastingError(f"{path} is a directory, not a config file; pass a .yaml file")
    if not path.is_file():
        raise ForecastingError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ForecastingError(f"{path}: not a text file (byte {exc.start} is not UTF-8); pass a YAML config") from exc
    except yaml.YAMLError as exc:
        raise ForecastingError(f"{path}: invalid YAML{_yaml_where(exc)}; fix the syntax (a config is YAML "
                               "sections of key: value lines, see configs/)") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ForecastingError(f"{path}: the top level must be a mapping of config sections")
    return data


def _yaml_where(exc: yaml.YAMLError) -> str:
    """`` at line L, column C: <problem>`` from a PyYAML error (its ``str`` spans several lines with a caret)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{where}: {' '.join(str(problem).split())}"


def load_config(cls: type[T], path: str | Path | None = None, overrides: typing.Sequence[str] = ()) -> T:
    """YAML file (optional) + dotted overrides -> validated frozen dataclass ``cls``."""
    data = read_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides)
    return from_dict(cls, data)


def write_yaml(data: Any, path: str | Path) -> None:
    """Write a resolved config atomically (temp file + rename)."""
    atomic_write_text(path, yaml.safe_dump(to_dict(data), sort_keys=False))
