"""The package's one progress-bar factory: a tqdm bar on a terminal, silence in a log.

tqdm redraws its bar in place with carriage returns. Written to a file or a pipe
(``make demo > log 2>&1``, CI, a batch scheduler) every redraw becomes one more ``\\r`` frame in
the log — thousands for a single training run. :func:`progress` therefore draws only where the
bar can be redrawn: on a terminal, or in a Jupyter kernel (where ``tqdm.auto`` draws a widget, not
text). Elsewhere it returns a *disabled* bar with the same methods, so callers never branch; what a
log needs is said by the loop's per-epoch log lines and the commands' own stage messages.

Every progress bar of the package is made here (a test keeps it so).
"""
from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import IO, Any


def interactive(stream: IO[str] | None = None) -> bool:
    """Whether a progress bar on ``stream`` (default: ``sys.stderr``) is seen live rather than logged."""
    stream = sys.stderr if stream is None else stream
    try:
        if stream.isatty():
            return True
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
    return _jupyter_widgets()


def _jupyter_widgets() -> bool:
    """True in a Jupyter kernel with ipywidgets: exactly when ``tqdm.auto`` picks its widget bar."""
    if "ipykernel" not in sys.modules:  # cheap exit: outside a kernel, do not import IPython machinery
        return False
    from tqdm.autonotebook import tqdm as auto_tqdm
    from tqdm.std import tqdm as std_tqdm

    return auto_tqdm is not std_tqdm


def progress(iterable: Iterable[Any] | None = None, *, total: int | None = None, desc: str | None = None,
             unit: str = "it", leave: bool = False, enabled: bool = True, stream: IO[str] | None = None,
             **kwargs: Any) -> Any:
    """A tqdm progress bar, shown only when ``enabled`` and ``stream`` is interactive (see module doc).

    Args:
        iterable: wrap this iterable (as ``tqdm(iterable)``); or leave it out and call ``update``.
        total: number of steps (inferred from ``len(iterable)`` when possible).
        desc: label in front of the bar.
        unit: what a step is (``"window"``, ``"series"``, ...).
        leave: keep the finished bar on screen.
        enabled: the caller's switch (e.g. ``--quiet`` turns it off).
        stream: where the bar goes (default ``sys.stderr``).
        **kwargs: further tqdm options (``mininterval``, ``position``, ...).

    Returns:
        A ``tqdm`` object; disabled (no output, near-zero cost) when not shown. Use it as an
        iterator, or call ``update``/``set_postfix``/``close``, or use it as a context manager.
    """
    from tqdm.auto import tqdm  # lazy: most imports of the package never draw a bar

    show = enabled and interactive(stream)
    if stream is not None:
        kwargs["file"] = stream
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, disable=not show, dynamic_ncols=True, **kwargs)
