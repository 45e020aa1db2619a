"""The compare panel's top-k stability figure, made on a background worker and shown from the kernel's thread.

``_refresh`` (every ``refresh_every`` judgements, a rescan, the panel's start) copies the inputs and hands the
figure to a :class:`~imagerank.widgets.background.LatestJob` (one in flight, the newest request wins); the worker's
result is taken at the next publish, or sooner: the kernel's IO loop syncs the header between two messages (see
:meth:`StabilityMixin._stability_done` for why never from the worker's thread). Undo refreshes only the totals
(``_refresh(stability=False)``): the figure shown stays. :meth:`StabilityMixin.wait_stability` waits for the
figure asked for last (tests, scripts).

:class:`StabilityMixin` is one of the bases of :class:`~imagerank.widgets.compare.ComparePanel`; its methods are
typed against :class:`_Panel`, the part of the panel they use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..pairing import Pool
from ..ratings.posterior import posterior_stability
from ..ratings.stability import topk_stability, widening_noise
from .background import LatestJob, kernel_call_soon

if TYPE_CHECKING:
    from ..collection import Collection

__all__ = ["StabilityMixin"]


class _Panel(Protocol):
    """What the stability plumbing uses of the compare panel."""

    collection: Collection
    header: dict[str, Any]
    stability_samples: int
    _k: int
    _rng: np.random.Generator
    _closed: bool
    _stability: float | None
    _stability_rng: np.random.Generator
    _stability_jobs: LatestJob[float | None]
    _stability_lock: threading.Lock
    _stability_made: tuple[int, float | None] | None
    _stability_seq: int
    _call_soon: Callable[[Callable[[], None]], None] | None

    def _header(self) -> dict[str, Any]: ...
    def _show_header(self) -> None: ...
    def _take_stability(self) -> bool: ...
    def _stability_done(self, seq: int, value: float | None) -> None: ...


class StabilityMixin:
    """The stability figure of the compare panel's header, off the kernel's message path."""

    _closed: bool
    _stability: float | None
    _stability_rng: np.random.Generator
    _stability_jobs: LatestJob[float | None]
    _stability_lock: threading.Lock
    _stability_made: tuple[int, float | None] | None
    _stability_seq: int
    _call_soon: Callable[[Callable[[], None]], None] | None

    def _init_stability(self: _Panel) -> None:
        """The figure's state; called by ``__init__`` before the first ``_refresh``."""
        self._stability = None  # the figure shown (None: not computed yet, or < 2 images)
        self._stability_rng = self._rng.spawn(1)[0]  # the worker's own generator (Generators are not thread-safe)
        self._stability_jobs = LatestJob(self._stability_done, name="imagerank-stability")
        self._stability_lock = threading.Lock()
        self._stability_made = None  # the worker's newest figure, not taken yet
        self._stability_seq = 0  # the request whose figure is shown
        self._call_soon = kernel_call_soon()  # the kernel's IO loop (None: no kernel, nothing is displayed)
        self._closed = False

    def _stop_stability(self) -> None:
        """At close: nothing is synced any more and the worker ends after a figure in flight (which is dropped)."""
        self._closed = True
        if getattr(self, "_stability_jobs", None) is not None:  # absent when __init__ refused its arguments
            self._stability_jobs.stop()

    def _on_prior_refit(self: _Panel) -> None:
        """On the refit's thread: show the new prior line from the kernel's thread (see :meth:`_stability_done`)."""
        if self._call_soon is not None:
            self._call_soon(self._show_header)
        else:  # no kernel: nothing syncs, and scripts read the header as the refit leaves it
            self.header = self._header()

    def _show_header(self: _Panel) -> None:
        """On the kernel's thread, between messages: sync a fresh header (the stability the worker made, the prior)."""
        if not self._closed:
            self._take_stability()
            self.header = self._header()

    def wait_stability(self: _Panel, timeout: float = 30.0) -> bool:
        """Wait until the background worker has computed the stability figure asked for last, then show it in the
        header; True when it has (False after ``timeout`` seconds). For tests and scripts: the panel never waits."""
        done = self._stability_jobs.wait(timeout)
        if self._take_stability():
            self.header = self._header()
        return done

    def _ask_stability(self: _Panel, pool: Pool, post: tuple[np.ndarray, np.ndarray, np.ndarray, Any] | None) -> None:
        """Hand the stability figure of ``pool`` (or of the posterior ``post``) to the background worker: the inputs
        are copied here (the pool's arrays change with each vote), the Monte-Carlo samples (0.2–1 s at 100,000
        images) are drawn there, and a request not started yet is replaced by this one."""
        n, k, rng = len(pool), self._k, self._stability_rng
        job: Callable[[], float | None]
        if n < 2:
            job = _no_figure  # through the worker, so a figure still in flight cannot overwrite it
        elif post is not None:
            samples = max(32, min(self.stability_samples, 4_000_000 // n))
            mu, sigma, ratio = post[1].copy(), post[2].copy(), post[3].ratio
            job = partial(posterior_stability, mu, sigma, k, samples=samples, rng=rng, ratio=ratio)
        else:
            samples = max(32, min(self.stability_samples, 4_000_000 // n))
            noise = widening_noise(self.collection.prior.peek()[1])  # the judge sets it while a prior is on
            job = partial(topk_stability, pool.mu.copy(), pool.sigma.copy(), k, samples=samples, rng=rng,
                          judge_noise=noise)
        self._stability_jobs.ask(job)

    def _stability_done(self: _Panel, seq: int, value: float | None) -> None:
        """On the worker's thread: keep the figure and have the kernel's thread show it.

        ipywidgets and traitlets are not thread-safe: a trait set here could land inside the kernel thread's
        ``hold_sync`` (a publish) or ``hold_trait_notifications`` (a browser update being applied) and be merged,
        sent or rolled back with it. So the header is synced from the kernel's own IO loop (``add_callback`` is safe
        from any thread), between two messages; with no kernel the next message or :meth:`wait_stability` takes it.
        """
        with self._stability_lock:
            if self._stability_made is None or seq > self._stability_made[0]:
                self._stability_made = (seq, value)
        if self._call_soon is not None:
            self._call_soon(self._show_header)

    def _take_stability(self: _Panel) -> bool:
        """On the panel's thread: adopt the worker's newest figure; True when the figure shown changed."""
        with self._stability_lock:
            made, self._stability_made = self._stability_made, None
        if made is None or made[0] <= self._stability_seq:
            return False
        self._stability_seq = made[0]
        changed = made[1] != self._stability
        self._stability = made[1]
        return changed


def _no_figure() -> float | None:
    """The stability of a pool of fewer than two images: none."""
    return None
