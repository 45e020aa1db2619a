"""A process pool with a progress bar, shared by the thumbnail pass, EXIF reads and other batch passes."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

__all__ = ["imap_processes"]


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
    iteration ends. Default chunk size: about 8 chunks per worker, 1..64 items each."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(items), desc=desc, unit="img", disable=not progress or not items, leave=False)
    try:
        if len(items) < inline_below or (workers is not None and workers <= 1):
            if initializer is not None:
                initializer()
            for item in items:
                yield fn(item)
                bar.update(1)
            return
        n = workers or os.cpu_count() or 1
        ctx = mp.get_context("forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn")
        chunk = chunksize or max(1, min(64, len(items) // (n * 8) or 1))
        with cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=initializer) as ex:
            for res in ex.map(fn, items, chunksize=chunk):
                yield res
                bar.update(1)
    finally:
        bar.close()
