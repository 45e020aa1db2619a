"""When to draw progress bars: the one rule every ``tqdm`` bar and Lightning progress bar follows.

A bar redraws itself in place on a terminal and in a notebook (tqdm's widget); written to a log file or a CI pipe
each redraw becomes a line of its own, thousands of them for one pass. So a bar is drawn only when it was asked
for *and* its stream is a terminal or the code runs in a Jupyter kernel.
"""

from __future__ import annotations

import sys
from typing import IO, Any

__all__ = ["progress_enabled"]


def _in_kernel() -> bool:
    """True inside a Jupyter (IPython) kernel, where ``tqdm.auto`` draws a widget (IPython is never imported)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
        return shell is not None and "IPKernelApp" in shell.config
    except Exception:  # an unusual IPython: no bar rather than a broken pass
        return False


def _is_tty(stream: IO[Any] | None) -> bool:
    try:
        return stream is not None and bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def progress_enabled(progress: bool = True, stream: IO[Any] | None = None) -> bool:
    """Whether to draw a progress bar: ``progress`` and (``stream`` is a terminal, or a Jupyter kernel runs).

    Args:
        progress: the caller's wish (``progress=False`` / ``--no-progress`` always wins).
        stream: where the bar is written; default ``sys.stderr`` (tqdm's stream). Lightning's bar writes to
            ``sys.stdout``: pass it.

    Returns:
        True when a bar would redraw in place; False when it would print a line per update (a log file, a CI
        pipe, ``2> file``).
    """
    if not progress:
        return False
    return _is_tty(sys.stderr if stream is None else stream) or _in_kernel()
