"""The plan panel: type an intent, see the plan with counts per step and a sample of files, run it.

``Preview`` parses the intent (the workspace's parser: the offline rules, or the LLM when ``llm_url`` is set) and
shows the plan and what each step would do; nothing is written. ``Run`` runs exactly the plan shown (never a new
parse) and stores it with its results (:func:`imagerank.cull.intents.execute`). Each sample file's tooltip lists
its cull reasons (the same reason records as ``manifest.jsonl`` and ``imagerank explain``).

Headless use (tests, scripts): :meth:`PlanPanel.preview` and :meth:`PlanPanel.run`.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

from ..errors import ImagerankError

if TYPE_CHECKING:
    from ..collection import Collection
    from ..cull.intents import PlanPreview

__all__ = ["PlanPanel"]


class PlanPanel:
    """Intent → plan → preview → run, in one notebook cell.

    Args:
        col: the workspace. intent: text to start with. parser: ``auto``, ``rules`` or ``llm``.

    Attributes:
        widget: the ipywidgets box to display. shown: the last preview (None before one). done: the last run.
        status: one line saying what happened (errors included: a bad intent never raises out of a click).
    """

    def __init__(self, col: Collection, intent: str = "", *, parser: str = "auto") -> None:
        import ipywidgets as w

        self.col, self.parser = col, parser
        self.shown: PlanPreview | None = None
        self.done: PlanPreview | None = None
        self.text = w.Text(value=intent, placeholder="e.g. keepers, best of each burst, at most 50, copy to picks",
                           layout=w.Layout(width="100%"))
        self.preview_button = w.Button(description="Preview", button_style="info")
        self.run_button = w.Button(description="Run", button_style="warning", disabled=True)
        self.status = w.Label(value="type what you want, then Preview")
        self.view = w.HTML()
        self.preview_button.on_click(lambda _: self.preview())
        self.run_button.on_click(lambda _: self.run())
        self.text.observe(lambda _: self._stale(), names="value")
        self.widget = w.VBox([self.text, w.HBox([self.preview_button, self.run_button]), self.status, self.view])

    def _ipython_display_(self) -> None:  # pragma: no cover - notebook display
        from IPython.display import display

        display(self.widget)

    def _stale(self) -> None:
        self.shown = None
        self.run_button.disabled = True

    def preview(self, text: str | None = None) -> PlanPreview | None:
        """Parse and preview ``text`` (default: the text box). Returns the preview, or None (``status`` says
        why)."""
        from ..cull.intents import plan_intent

        if text is not None:
            self.text.value = text
        try:
            self.shown = plan_intent(self.col, self.text.value, parser=self.parser)  # type: ignore[arg-type]
        except ImagerankError as e:
            self._stale()
            self.status.value = f"not run: {e}"
            self.view.value = ""
            return None
        self.run_button.disabled = False
        self.status.value = f"{len(self.shown.selection)} files selected; Run to do it"
        self.view.value = self._html(self.shown)
        return self.shown

    def run(self) -> PlanPreview | None:
        """Run the plan last previewed (exactly it). Returns the result, or None when there is none to run or it
        failed (``status`` says why)."""
        from ..cull.intents import execute

        if self.shown is None:
            self.status.value = "nothing to run: Preview first"
            return None
        try:
            self.done = execute(self.shown.plan, self.col, parser=self.shown.parser)
        except ImagerankError as e:
            self.status.value = f"failed: {e}"
            return None
        self.status.value = f"ran as plan {self.done.plan_id}: {json.dumps(self.done.result, sort_keys=True)}"
        self.view.value = self._html(self.done)
        self._stale()
        return self.done

    @staticmethod
    def _html(p: PlanPreview) -> str:
        rows = "".join(f"<tr><td>{s.index + 1}</td><td>{html.escape(s.step)}</td><td>{s.before} → {s.after}</td>"
                       f"<td>{html.escape(s.would or '')}</td></tr>" for s in p.steps)
        reasons: dict[str, Any] = dict(zip(p.selection["relpath"], p.selection["reasons"]))
        tips = {f: "; ".join(f"{r['code']}: {r['message']}" for r in (reasons.get(f) or [])) for f in p.sample}
        items = "".join(f'<li title="{html.escape(tips[f])}">{html.escape(f)}</li>' for f in p.sample)
        return (f"<table><tr><th>#</th><th>step</th><th>files</th><th>action</th></tr>{rows}</table>"
                f"<div>{len(p.selection)} files, e.g.:</div><ul>{items}</ul>")
