"""Torch and Lightning helpers shared by the embedding pass and the training recipes: one device picker, one way to
keep Lightning quiet, one way to pin the CPU thread count. Imports torch; import this module only where torch is
needed (``imagerank`` itself never does)."""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

import torch

__all__ = ["best_device", "cpu_threads", "quiet_lightning", "resolve_accelerator"]

#: Lightning's and open_clip's informational lines that say nothing a user can act on.
_CHATTER = (
    ".*does not have many workers.*",
    ".*predict_dataloader.*",
    ".*GPU available but not used.*",
    ".*num_nodes.*",
    ".*LeafSpec.*",
    ".*litlogger.*",
    ".*Total length of.*",
    ".*The number of training batches.*",
    ".*module\\(s\\) in eval mode.*",
)


def best_device() -> str:
    """The best device torch can use here: ``cuda``, then Apple ``mps``, then ``cpu``."""
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def resolve_accelerator(accelerator: str | None = "auto") -> str:
    """A Lightning ``accelerator`` / torch device name: ``auto`` (or None) -> :func:`best_device`; ``gpu`` ->
    ``cuda``; anything else as given (``cpu``, ``cuda``, ``mps``, ``cuda:1`` ...)."""
    if accelerator in ("auto", None, ""):
        return best_device()
    return "cuda" if accelerator == "gpu" else str(accelerator)


@contextlib.contextmanager
def quiet_lightning(level: int = logging.WARNING, *, root: bool = False) -> Iterator[None]:
    """Silence Lightning's informational chatter (GPU/TPU lines, tips, "few workers" hints) and, with ``root``,
    open_clip's "initialized randomly" lines (logged on the root logger); real warnings and errors still show.

    Args:
        level: the level the Lightning loggers are raised to while inside.
        root: also raise the root logger to ERROR (the embedding pass: open_clip logs there).
    """
    names = ["lightning.pytorch", "lightning.fabric", "lightning", "lightning_utilities"]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    root_logger = logging.getLogger()
    root_level = root_logger.level
    if root:
        root_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for msg in _CHATTER:
                warnings.filterwarnings("ignore", message=msg)
            yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)
        root_logger.setLevel(root_level)


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run with ``torch.set_num_threads(n)`` (process-wide), restoring the previous count after; None: unchanged.

    Small networks train fastest on one thread: their ops are too short to split, and on a busy machine a second
    intra-op thread waiting for a core slows every op down (measured: a 512-64-1 MLP epoch took 15x longer with
    2 threads than with 1 while another process used one of the two cores).
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        yield
    finally:
        torch.set_num_threads(before)
