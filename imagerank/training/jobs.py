"""Training off the kernel's main thread: a :class:`TrainingJob` with a loss history and a live loss curve.

``train_ranker(..., background=True)`` (and ``train_crop_proposer``) return a job at once; the panels stay live
while it trains. ``job.live_plot()`` is an ipywidgets box whose PNG loss curve (rendered with matplotlib's Agg
canvas, no pyplot, so safe off the main thread) refreshes at most once a second (and with at most ~10 % of the
time spent drawing); ``job.wait()`` returns the
trained model or raises the training error; ``job.cancel()`` asks Lightning to stop after the current batch.
"""

from __future__ import annotations

import io
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from lightning.pytorch.callbacks import Callback

__all__ = ["LossHistory", "TrainingJob", "loss_figure"]


class LossHistory(Callback):
    """Records the training loss every step and the validation loss every epoch; calls ``listener(row)``.

    ``rows``: list of dicts ``{"epoch", "step", "train_loss", "val_loss"}`` (one of the two losses None).
    """

    def __init__(self, listener: Callable[[dict[str, Any]], None] | None = None, stop: threading.Event | None = None):
        self.rows: list[dict[str, Any]] = []
        self.listener = listener
        self.stop = stop

    def _emit(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if self.listener is not None:
            self.listener(row)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None:
            self._emit({"epoch": int(trainer.current_epoch), "step": int(trainer.global_step),
                        "train_loss": float(loss.detach().cpu()), "val_loss": None})
        if self.stop is not None and self.stop.is_set():
            trainer.should_stop = True

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        v = trainer.callback_metrics.get("val/loss")
        if v is not None:
            self._emit({"epoch": int(trainer.current_epoch), "step": int(trainer.global_step), "train_loss": None,
                        "val_loss": float(v)})


def loss_figure(rows: list[dict[str, Any]], title: str = "loss") -> Any:
    """A matplotlib Figure (not registered with pyplot) of training loss per step and validation loss per epoch."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.0), dpi=90)
    ax = fig.add_subplot(1, 1, 1)
    tr = [(r["step"], r["train_loss"]) for r in rows if r.get("train_loss") is not None]
    if len(tr) > 400:  # plotting cost stays flat however long training runs
        tr = [*tr[::len(tr) // 400 + 1], tr[-1]]
    va = [(r["step"], r["val_loss"]) for r in rows if r.get("val_loss") is not None]
    if tr:
        xs, ys = zip(*tr)
        ax.plot(xs, ys, lw=0.8, alpha=0.5, label="train (per step)")
        k = max(1, len(ys) // 30)
        if k > 1 and len(ys) > k:
            import numpy as np

            sm = np.convolve(np.asarray(ys), np.ones(k) / k, mode="valid")
            ax.plot(xs[k - 1:], sm, lw=1.5, color="C0", label=f"train (mean of {k})")
    if va:
        xs, ys = zip(*va)
        ax.plot(xs, ys, "o-", color="C1", label="validation (per epoch)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    if tr or va:
        ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


class TrainingJob:
    """One training run, in the calling thread (:meth:`run_here`) or a background thread (:meth:`start`).

    Args:
        target: ``fn(callbacks) -> result``; it must pass ``callbacks`` to its Lightning Trainer.
        name: shown in the status line.
        on_progress: called (from the training thread) with each history row.

    Attributes:
        status: ``pending``, ``running``, ``done``, ``failed`` or ``cancelled``.
        result: the trained model once done. error: the exception when failed.
        history: :class:`LossHistory` (``history.rows``).
    """

    def __init__(self, target: Callable[[list[Any]], Any], *, name: str = "training",
                 on_progress: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.target = target
        self.name = name
        self.on_progress = on_progress
        self.status = "pending"
        self.result: Any = None
        self.error: BaseException | None = None
        self.traceback: str | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self.history = LossHistory(self._row, self._stop)
        self._thread: threading.Thread | None = None
        self._plot: Any = None
        self._last_draw = 0.0
        self._draw_cost = 0.0
        self.started_at: float | None = None
        self.finished_at: float | None = None

    # -------------------------------------------------------------- running
    def _row(self, row: dict[str, Any]) -> None:
        if self.on_progress is not None:
            try:
                self.on_progress(row)
            except Exception:  # a broken progress callback must not kill training
                pass
        self._refresh()

    def _run(self) -> None:
        self.status = "running"
        self.started_at = time.time()
        try:
            self.result = self.target([self.history])
            self.status = "cancelled" if self._stop.is_set() else "done"
        except BaseException as e:
            self.error = e
            self.traceback = traceback.format_exc()
            self.status = "failed"
        finally:
            self.finished_at = time.time()
            self._done.set()
            self._refresh(force=True)

    def start(self) -> TrainingJob:
        """Run in a daemon thread; returns self at once."""
        if self._thread is not None:
            raise RuntimeError("this training job was already started")
        self._thread = threading.Thread(target=self._run, name=f"imagerank {self.name}", daemon=True)
        self._thread.start()
        return self

    def run_here(self) -> Any:
        """Run in the calling thread and return the result (raising the training error)."""
        self._run()
        return self.wait()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until done; return the result.

        Raises:
            TimeoutError: not finished within ``timeout`` seconds.
            The training's own exception (NoVotesError ...) when it failed.
        """
        if not self._done.wait(timeout):
            raise TimeoutError(f"{self.name}: still {self.status} after {timeout} s")
        if self.error is not None:
            raise self.error
        return self.result

    def cancel(self) -> None:
        """Ask the trainer to stop after the current batch (the model trained so far is still returned)."""
        self._stop.set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    # -------------------------------------------------------------- display
    def status_line(self) -> str:
        rows = self.history.rows
        last_tr = next((r["train_loss"] for r in reversed(rows) if r.get("train_loss") is not None), None)
        last_va = next((r["val_loss"] for r in reversed(rows) if r.get("val_loss") is not None), None)
        epoch = rows[-1]["epoch"] if rows else 0
        t = (self.finished_at or time.time()) - self.started_at if self.started_at else 0.0
        parts = [f"{self.name}: {self.status}", f"epoch {epoch}", f"{t:.1f} s"]
        if last_tr is not None:
            parts.append(f"train loss {last_tr:.4f}")
        if last_va is not None:
            parts.append(f"val loss {last_va:.4f}")
        if self.error is not None:
            parts.append(f"error: {type(self.error).__name__}: {self.error}")
        return " · ".join(parts)

    def figure(self) -> Any:
        """The loss curve so far as a matplotlib Figure."""
        return loss_figure(self.history.rows, title=self.name)

    def live_plot(self) -> Any:
        """An ipywidgets VBox (status line + PNG loss curve) that updates while training runs."""
        import ipywidgets as w

        if self._plot is None:
            self._plot = w.VBox([w.HTML(), w.Image(format="png", layout=w.Layout(max_width="520px"))])
            self._refresh(force=True)
        return self._plot

    def _refresh(self, force: bool = False) -> None:
        if self._plot is None:
            return
        now = time.time()
        # redraw at most once a second, and never spend more than ~10 % of the time drawing
        if not force and now - self._last_draw < max(1.0, 10 * self._draw_cost):
            return
        import html

        try:
            self._plot.children[0].value = f"<code>{html.escape(self.status_line())}</code>"
            self._plot.children[1].value = _png(self.figure())
        except Exception:  # drawing must never break training
            pass
        self._last_draw = time.time()
        self._draw_cost = self._last_draw - now

    def _repr_html_(self) -> str:
        import html

        return f"<code>{html.escape(self.status_line())}</code>"

    def __repr__(self) -> str:
        return f"TrainingJob({self.status_line()})"
