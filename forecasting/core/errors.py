"""The one exception type for problems a user can cause and fix.

Internal bugs keep their ordinary exceptions and tracebacks; anything raised as
:class:`ForecastingError` is printed by the CLI as one line and exits with code 2.
"""
from __future__ import annotations


class ForecastingError(Exception):
    """A user-fixable problem: bad file, bad config, missing path, incompatible artifact.

    The message must say what is wrong *and* how to fix it, naming the file, column
    and row where that applies.
    """

    exit_code = 2
