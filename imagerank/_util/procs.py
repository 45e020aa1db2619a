"""A process pool with a progress bar, shared by the thumbnail pass, EXIF reads and other batch passes.

Two things a plain :class:`concurrent.futures.ProcessPoolExecutor` gets wrong for a library:

* Workers outlive a parent killed with ``kill -9`` (they wait on their task queue for good, and keep the
  forkserver's resource tracker alive). Here each worker watches its parent: on Linux the kernel sends it SIGKILL
  when the forkserver that forked it dies (``PR_SET_PDEATHSIG``; the forkserver itself exits when the main
  process dies), and on every platform a daemon thread ends the worker within about half a second once the main
  process is gone.
* The workers (``forkserver`` and ``spawn`` alike) re-import the main script. A script that calls imagerank at
  module level, outside ``if __name__ == "__main__":``, would run again in each worker (and break the pool with
  ``BrokenProcessPool``). :func:`imap_processes` sees that case before starting a pool (the call comes from the
  main script's module-level code, outside such a guard) and runs the items in this process instead, with a
  :class:`RuntimeWarning` saying what to add to use every core.
"""

from __future__ import annotations

import ast
import concurrent.futures as cf
import functools
import multiprocessing as mp
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from types import FrameType
from typing import Any

from ..errors import ImagerankError
from .progress import progress_enabled

__all__ = ["imap_processes", "main_guard_missing"]

_POLL_S = 0.5


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _watch(main_pid: int, ppid: int) -> None:  # pragma: no cover - runs in the worker processes
    while True:
        time.sleep(_POLL_S)
        if os.getppid() != ppid or not _alive(main_pid):
            os._exit(1)


def _worker_start(main_pid: int, initializer: Callable[[], None] | None) -> None:  # pragma: no cover - in workers
    """Pool initializer: die with the parent, then run the caller's initializer."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL), 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if not _alive(main_pid):  # the parent died while this worker was starting
        os._exit(1)
    threading.Thread(target=_watch, args=(main_pid, os.getppid()), daemon=True, name="imagerank-parent").start()
    if initializer is not None:
        initializer()


@functools.lru_cache(maxsize=8)
def _guard_lines(path: str) -> tuple[tuple[int, int], ...] | None:
    """Line ranges of the top-level ``if __name__ == "__main__":`` bodies of the script at ``path``; None when it
    cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    out = []
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Compare) and len(node.test.comparators) == 1:
            sides = [node.test.left, node.test.comparators[0]]
            names = {s.id for s in sides if isinstance(s, ast.Name)}
            consts = {s.value for s in sides if isinstance(s, ast.Constant)}
            if names == {"__name__"} and consts == {"__main__"}:
                out.append((node.lineno, node.end_lineno or node.lineno))
    return tuple(out)


def main_guard_missing() -> str | None:
    """The main script's path when the current call comes from its module-level code outside an
    ``if __name__ == "__main__":`` block (the pool's workers would run that code again); None otherwise (an
    interactive session, a notebook, ``python -c``, ``python -m pkg``, or a call from inside the guard or a
    function)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    spec = getattr(main, "__spec__", None)
    if main is None or not path or not str(path).endswith(".py"):
        return None
    if spec is not None and (spec.name == "__main__" or spec.name.endswith(".__main__")):
        return None  # `python -m pkg`: the workers do not import a package's __main__ again
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        if frame.f_globals is main.__dict__ and frame.f_code.co_name == "<module>":
            guards = _guard_lines(os.path.abspath(str(path)))
            if guards is None:
                return None
            line = frame.f_lineno
            return None if any(a <= line <= b for a, b in guards) else str(path)
        frame = frame.f_back
    return None


def imap_processes(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    *,
    workers: int | None = None,
    progress: bool = True,
    desc: str = "",
    inline_below: int = 24,
    chunksize: int | None = None,
    initializer: Callable[[], None] | None = None,
) -> Iterator[Any]:
    """``fn`` over ``items`` in order, in a process pool (``forkserver`` where available, else ``spawn``) with a
    ``tqdm.auto`` bar; inline in this process when there are fewer than ``inline_below`` items or ``workers <= 1``
    (a pool costs about 0.5 s to start). ``fn`` and the items must pickle. The pool is shut down however the
    iteration ends, and its workers end when this process dies (even by ``kill -9``). Default chunk size: about 8
    chunks per worker, 1..64 items each.

    Called from a script's module-level code without an ``if __name__ == "__main__":`` guard, it runs inline and
    warns (:class:`RuntimeWarning`): the workers would run that script again.

    Raises:
        ImagerankError: a worker process died (killed, out of memory); the message names the cause it can tell.
    """
    from tqdm.auto import tqdm

    bar = tqdm(total=len(items), desc=desc, unit="img", disable=not progress_enabled(progress) or not items,
               leave=False)
    try:
        inline = len(items) < inline_below or (workers is not None and workers <= 1)
        script = None if inline else main_guard_missing()
        if script is not None:
            warnings.warn(
                f"imagerank: {script} calls imagerank at module level without `if __name__ == \"__main__\":`; the "
                "process pool's workers would run the script again, so this pass runs in this process (one core). "
                "Put the script's code under `if __name__ == \"__main__\":` to use every core.",
                RuntimeWarning, stacklevel=2,
            )
            inline = True
        if inline:
            if initializer is not None:
                initializer()
            for item in items:
                yield fn(item)
                bar.update(1)
            return
        n = workers or os.cpu_count() or 1
        ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        chunk = chunksize or max(1, min(64, len(items) // (n * 8) or 1))
        done = 0
        with cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_worker_start,
                                    initargs=(os.getpid(), initializer)) as ex:
            try:
                for res in ex.map(fn, items, chunksize=chunk):
                    yield res
                    done += 1
                    bar.update(1)
            except BrokenProcessPool as e:
                raise ImagerankError(
                    f"{desc or 'a batch pass'}: a worker process ended abruptly after {done} of {len(items)} items "
                    f"(killed, out of memory, or a crash in a decoder: {e}); run it again, or with fewer workers"
                ) from e
    finally:
        bar.close()
