"""Data problems as values: collected by validation, raised one at a time by readers.

A :class:`Problem` knows *where* (file, item, column, row, file line) and *what to do*
(``hint``). ``forecasting data validate`` prints every problem; :func:`read_series`
raises the first as a :class:`~forecasting.core.errors.ForecastingError`, so both paths
produce the same one-line message.
"""
from __future__ import annotations

from dataclasses import dataclass

from forecasting.core.errors import ForecastingError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a data source.

    Attributes:
        file: the file (or dataset name) the problem is in.
        message: what is wrong, one line.
        hint: how to fix it, one line (may be empty).
        column: the column concerned, if any.
        row: 1-based data row (header excluded), if any.
        line: 1-based line of a CSV file (header = line 1), if any.
        item: the item id of a long-format panel, if any.
        kind: a short machine-readable tag (``duplicate_timestamp``, ``gap``, ...), used by tests.
    """

    file: str
    message: str
    hint: str = ""
    column: str | None = None
    row: int | None = None
    line: int | None = None
    item: str | None = None
    kind: str = "other"

    def location(self) -> str:
        parts = []
        if self.item is not None:
            parts.append(f"item {self.item!r}")
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        if self.row is not None:
            parts.append(f"row {self.row}" + (f" (line {self.line})" if self.line is not None else ""))
        elif self.line is not None:
            parts.append(f"line {self.line}")
        return ", ".join(parts)

    def __str__(self) -> str:
        where = self.location()
        text = f"{self.file}: " + (f"{where}: " if where else "") + self.message
        if self.hint:
            text += f"; {self.hint}"
        return " ".join(text.split("\n"))  # always one line


def raise_first(problems: list[Problem], source: str) -> None:
    """Raise the first problem as a :class:`ForecastingError`, mentioning how many more exist."""
    if not problems:
        return
    message = str(problems[0])
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more; `forecasting data validate {source}` lists them all)"
    raise ForecastingError(message)


def show_value(value: object, width: int = 40) -> str:
    """A cell value quoted for a message, shortened so a message stays one readable line."""
    text = repr(str(value))
    return text if len(text) <= width else text[: width - 4] + "...'"
