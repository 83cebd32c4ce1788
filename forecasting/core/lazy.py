"""Packages whose public names load from their submodules on first use.

``import forecasting`` or ``import forecasting.data`` must stay cheap (no torch, polars or gluonts
until a name that needs them is used), while ``from forecasting import Forecaster`` still works.
Each such package states which submodule defines which name and takes its module-level
``__getattr__`` / ``__dir__`` / ``__all__`` from :func:`lazy_exports` (PEP 562).
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, Iterable, Mapping


def lazy_exports(package: str, sources: Mapping[str, Iterable[str]]
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]], list[str]]:
    """``(__getattr__, __dir__, __all__)`` for ``package``.

    Args:
        package: the package's dotted name (its ``__name__``).
        sources: submodule -> the public names it defines; a submodule is relative to ``package``
            unless it is a full ``forecasting.`` path.

    A name is imported from its submodule when first looked up and then set on the package, so
    later look-ups are plain attribute reads.
    """
    where = {name: module if module.startswith("forecasting.") else f"{package}.{module}"
             for module, names in sources.items() for name in names}
    names = sorted(where)

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return names

    return __getattr__, __dir__, names
