"""The compare panel's top-k stability figure is computed on a background worker, never inside a vote's handler:
the vote is answered while the figure is still being made, the figure reaches the header afterwards (from the
kernel's own thread when a kernel runs), the newest request wins, and closing the panel stops the worker."""

from __future__ import annotations

import logging
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

import imagerank.widgets.compare_stability as compare_module
from imagerank.widgets import ComparePanel
from imagerank.widgets.background import LatestJob, kernel_call_soon


def vote(panel: ComparePanel, outcome: str = "left") -> None:
    p = panel.pairs[0]
    panel.handle_message({"type": "vote", "pid": p["pid"], "left": p["left"]["id"], "right": p["right"]["id"],
                          "outcome": outcome, "ms": 700.0})
    assert panel.status.get("level") != "error", panel.status


class GatedStability:
    """Stands in for ``topk_stability``: records the thread of each call and blocks until the gate opens."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, value: float = 0.625) -> None:
        self.gate = threading.Event()
        self.threads: list[threading.Thread] = []
        self.started = threading.Event()
        self.value = value
        monkeypatch.setattr(compare_module, "topk_stability", self)

    def __call__(self, mu: Any, sigma: Any, k: int, **kwargs: Any) -> float:
        self.threads.append(threading.current_thread())
        self.started.set()
        assert self.gate.wait(20), "the gate was never opened"
        return self.value


def test_a_vote_is_answered_while_the_stability_figure_is_still_being_made(make_collection, monkeypatch):
    gated = GatedStability(monkeypatch)
    col = make_collection(12)
    t0 = time.perf_counter()
    panel = ComparePanel(col, strategy="spec", queue_depth=3, refresh_every=1)
    try:
        assert gated.started.wait(10)  # the worker runs the figure the panel asked for at start
        panel.handle_message({"type": "ready"})
        for _ in range(3):  # refresh_every=1: each vote asks for a new figure
            vote(panel)
        took = time.perf_counter() - t0
        assert took < 10, f"the panel and three votes took {took:.1f} s: something waited for the figure"
        assert panel.votes == 3
        assert panel.header["votes"] == 3
        assert panel.header["stability"] is None  # not made yet: the header says nothing rather than wait
        assert all(t is not threading.main_thread() for t in gated.threads)
        gated.gate.set()
        assert panel.wait_stability(10)
        assert panel.header["stability"] == 0.625
        # the first request ran; of the three asked while it ran only the newest did (the latest wins)
        assert len(gated.threads) == 2
        assert all(t.name == "imagerank-stability" for t in gated.threads)
    finally:
        gated.gate.set()
        panel.close()


def test_the_figure_reaches_the_header_from_the_kernels_loop_without_another_vote(make_collection, monkeypatch):
    gated = GatedStability(monkeypatch, value=0.375)
    col = make_collection(12)
    scheduled: list[Any] = []  # stands in for the kernel's IO loop: callbacks run later on this (the kernel's) thread
    monkeypatch.setattr(compare_module, "kernel_call_soon", lambda: scheduled.append)
    panel = ComparePanel(col, strategy="spec", queue_depth=3, refresh_every=2)
    header_threads: list[threading.Thread] = []
    panel.observe(lambda _change: header_threads.append(threading.current_thread()), names="header")
    try:
        assert panel.header["stability"] is None
        gated.gate.set()
        assert panel._stability_jobs.wait(10)
        assert len(scheduled) == 1, "the worker handed its figure to the kernel's loop"
        assert header_threads == []  # nothing synced from the worker's thread
        assert panel.header["stability"] is None
        scheduled.pop()()  # the loop runs it, between messages
        assert panel.header["stability"] == 0.375
        assert header_threads == [threading.main_thread()]
        gated.value = 0.5
        vote(panel)
        vote(panel)  # the second vote asks for a new figure and returns
        assert panel._stability_jobs.wait(10)
        assert panel.header["stability"] == 0.375  # not shown before the loop runs the callback
        assert len(scheduled) == 1
        scheduled.pop()()
        assert panel.header["stability"] == 0.5  # shown with no further vote
        assert all(t is threading.main_thread() for t in header_threads)
        panel.close()
        gated.value = 0.875
        panel._stability_done(99, 0.875)  # a figure that lands after close is not synced
        for callback in scheduled:
            callback()
        assert panel.header["stability"] == 0.5
    finally:
        gated.gate.set()
        panel.close()


def test_undo_keeps_the_figure_and_asks_for_none(make_collection, monkeypatch):
    gated = GatedStability(monkeypatch, value=0.25)
    gated.gate.set()
    col = make_collection(12)
    panel = ComparePanel(col, strategy="spec", queue_depth=3, refresh_every=5)
    try:
        assert panel.wait_stability(10)
        runs = panel._stability_jobs.runs
        vote(panel)
        panel.handle_message({"type": "undo"})
        assert panel.wait_stability(10)
        assert panel._stability_jobs.runs == runs  # undo refreshes the totals, not the figure
        assert panel.header["stability"] == 0.25
    finally:
        panel.close()


def test_close_stops_the_worker_and_drops_a_figure_in_flight(make_collection, monkeypatch):
    gated = GatedStability(monkeypatch, value=0.75)
    col = make_collection(12)
    panel = ComparePanel(col, strategy="spec", queue_depth=3)
    assert gated.started.wait(10)
    jobs = panel._stability_jobs
    assert jobs.alive
    t0 = time.perf_counter()
    panel.close()
    assert time.perf_counter() - t0 < 5  # close does not wait for the figure
    gated.gate.set()
    assert jobs.join(10)
    assert not jobs.alive
    assert panel._stability is None  # the figure finished after close was not taken
    assert jobs.ask(lambda: 1.0) == 0  # nothing runs after close


def test_latest_job_runs_the_newest_request_and_survives_a_failing_one(caplog):
    got: list[tuple[int, Any]] = []
    jobs: LatestJob[Any] = LatestJob(lambda seq, r: got.append((seq, r)), name="test-latest")
    gate, started = threading.Event(), threading.Event()
    jobs.ask(lambda: started.set() or (gate.wait(10) and "first"))
    assert started.wait(10)
    for i in range(2, 6):
        jobs.ask(lambda i=i: i)
    assert not jobs.idle
    gate.set()
    assert jobs.wait(10)
    assert got == [(1, "first"), (5, 5)]

    def boom() -> int:
        raise RuntimeError("bad figure")

    with caplog.at_level(logging.ERROR):
        jobs.ask(boom)
        assert jobs.wait(10)
    assert "background job failed" in caplog.text
    jobs.ask(lambda: "after")
    assert jobs.wait(10)
    assert got[-1] == (7, "after")
    with jobs.paused():  # no job starts while a message is handled
        jobs.ask(lambda: "paused")
        assert not jobs.wait(0.3)
    assert jobs.wait(10)
    assert got[-1] == (8, "paused")
    jobs.stop()
    assert jobs.join(10)


def test_kernel_call_soon_is_the_kernels_loop_or_none(monkeypatch):
    assert kernel_call_soon() is None  # pytest is no kernel
    kernelbase = pytest.importorskip("ipykernel.kernelbase")
    calls: list[Any] = []
    loop = SimpleNamespace(add_callback=calls.append)
    monkeypatch.setattr(kernelbase.Kernel, "initialized", classmethod(lambda cls: True))
    monkeypatch.setattr(kernelbase.Kernel, "instance", classmethod(lambda cls: SimpleNamespace(io_loop=loop)))
    call = kernel_call_soon()
    assert call is not None
    call(print)
    assert calls == [print]
