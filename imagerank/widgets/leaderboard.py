"""``LeaderboardView``: the ranked table (rank, thumbnail, file name, mu, sigma, score), sortable and paged, with
export controls. Built from standard ipywidgets; thumbnails travel as binary buffers (``ipywidgets.Image``).

The score is the one the collection ranks by (:func:`imagerank.collection.score_column`): OpenSkill's ordinal ``mu -
3 sigma``, or in the consistent-judge mode the EP posterior's ``mu - sigma`` (then the mu and sigma columns are the
posterior's too, headed "(EP)"). *Export above* compares its threshold with that same score.

Only the rows of the current page get thumbnails, so a 100,000-image catalog pages as fast as a small one.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING, Any

import ipywidgets as W

from ..collection import SCORES, score_column
from ..errors import ImagerankError, InvalidArgumentError
from ..export import EXPORT_MODES

if TYPE_CHECKING:
    import pandas as pd

    from ..collection import Collection

__all__ = ["COLUMNS", "EP_COLUMNS", "PRIOR_ONLY_TIP", "LeaderboardView"]

# column -> (header label, DataFrame column or None, default ascending?, CSS width). Columns other than the file
# name are at least as wide as their header with the sort arrow (max-content), so no header is cut.
COLUMNS: dict[str, tuple[str, str | None, bool, str]] = {
    "rank": ("Rank", "rank", True, "minmax(56px, max-content)"),
    "thumbnail": ("", None, True, "72px"),
    "filename": ("File", "filename", True, "minmax(160px, 1fr)"),
    "mu": ("μ", "mu", False, "minmax(64px, max-content)"),
    "sigma": ("σ", "sigma", True, "minmax(64px, max-content)"),
    "score": ("Score μ−3σ", "ordinal", False, "minmax(96px, max-content)"),
    "comparisons": ("Votes", "comparison_count", False, "minmax(64px, max-content)"),
}
#: Header buttons: the label's own width plus a little padding (ipywidgets' default padding cut "Rank ▲").
_HEADER_LAYOUT = {"width": "auto", "min_width": "max-content", "padding": "0px 4px"}
PAGE_SIZES = (10, 25, 50, 100)
#: In the consistent-judge mode (the board has a ``score`` column): column -> (header label, DataFrame column).
EP_COLUMNS: dict[str, tuple[str, str]] = {
    "mu": ("μ (EP)", "post_mu"),
    "sigma": ("σ (EP)", "post_sigma"),
    "score": ("Score μ−σ (EP)", "score"),
}
#: The tooltip of a row ranked by the learned prior alone (never voted on).
PRIOR_ONLY_TIP = ("ranked by the learned prior alone: never voted on, its score comes from the features; "
                  "tick 'voted only' to leave such images out")


class LeaderboardView(W.VBox):
    """The leaderboard of a collection as a paged table with thumbnails and export controls.

    Args:
        collection: the :class:`~imagerank.collection.Collection` to show.
        page_size: rows per page, one of 10, 25, 50, 100. Default 25.
        thumb_px: thumbnail width in the table, pixels. Default 64.
        include_inactive: also list missing, corrupt and rejected images (ranked after nothing: by ordinal).
        voted_only: start with *voted only* ticked: images never voted on (which a learned prior can rank high)
            are left out of the table and the exports.

    Rank is the leaderboard rank by the *score*: the ordinal ``mu - 3*sigma``, or in the consistent-judge mode the
    EP posterior's ``mu - sigma`` (:data:`EP_COLUMNS`); sorting by another column keeps each image's rank. The
    *score ≥* box of *Export above* is compared with the same score (its tooltip says which). Click a column
    header to sort by it (again to reverse). Call :meth:`refresh` (or press *Refresh*) after voting to re-read the
    catalog. Rows ranked by the learned prior alone (never voted on) show their score and votes in grey italics
    with a tooltip, and the page line counts them.

    Raises:
        InvalidArgumentError: ``page_size`` is not one of the offered sizes.
    """

    def __init__(
        self, collection: Collection, *, page_size: int = 25, thumb_px: int = 64, include_inactive: bool = False,
        voted_only: bool = False,
    ) -> None:
        if page_size not in PAGE_SIZES:
            raise InvalidArgumentError(f"page_size: expected one of {PAGE_SIZES}, got {page_size!r}")
        self.collection = collection
        self.thumb_px = int(thumb_px)
        self.include_inactive = bool(include_inactive)
        self.sort_column = "rank"
        self.ascending = True
        self.page = 0
        self._board: pd.DataFrame | None = None
        self._view: pd.DataFrame | None = None

        self._refresh_btn = W.Button(description="Refresh", icon="refresh", layout=W.Layout(width="96px"))
        self._filter = W.Text(placeholder="filter by file name", layout=W.Layout(width="220px"))
        self._voted_only = W.Checkbox(value=bool(voted_only), description="voted only", indent=False,
                                      layout=W.Layout(width="110px"))
        self._voted_only.observe(lambda _: self.refresh(), names="value")
        self._size = W.Dropdown(options=list(PAGE_SIZES), value=page_size, description="rows",
                                layout=W.Layout(width="130px"), style={"description_width": "36px"})
        self._prev = W.Button(description="◀", layout=W.Layout(width="40px"), tooltip="previous page")
        self._next = W.Button(description="▶", layout=W.Layout(width="40px"), tooltip="next page")
        self._page_label = W.HTML()
        self._refresh_btn.on_click(lambda _: self.refresh())
        self._prev.on_click(lambda _: self.goto(self.page - 1))
        self._next.on_click(lambda _: self.goto(self.page + 1))
        self._filter.observe(lambda _: self._apply(reset_page=True), names="value")
        self._size.observe(lambda _: self._rebuild_rows(), names="value")
        nav = W.HBox([self._refresh_btn, self._filter, self._voted_only, self._size, self._prev, self._page_label,
                      self._next],
                     layout=W.Layout(align_items="center", flex_flow="row wrap"))

        self._headers: dict[str, W.Button] = {}
        for key, (label, column, _, _) in COLUMNS.items():
            b = W.Button(description=label, layout=W.Layout(**_HEADER_LAYOUT), disabled=column is None)
            b.add_class("ir-lb-header")
            b.style.button_color = "transparent"
            b.style.font_weight = "bold"
            b.on_click(lambda _, k=key: self.sort(k))
            self._headers[key] = b
        self._grid = W.GridBox(layout=W.Layout(
            grid_template_columns=" ".join(c[3] for c in COLUMNS.values()), grid_gap="2px 8px",
            align_items="center"))
        self._rows: list[dict[str, W.Widget]] = []

        self._top_n = W.BoundedIntText(value=50, min=1, max=10_000_000, description="top N",
                                       layout=W.Layout(width="170px"), style={"description_width": "48px"})
        self._export_top_btn = W.Button(description="Export top N", icon="download")
        self._threshold = W.FloatText(value=0.0, description="score ≥", layout=W.Layout(width="170px"),
                                      style={"description_width": "56px"}, tooltip=_threshold_tip("ordinal"))
        self._export_above_btn = W.Button(description="Export above", icon="download")
        self._mode = W.Dropdown(options=list(EXPORT_MODES), value="copy", description="as",
                                layout=W.Layout(width="150px"), style={"description_width": "24px"})
        self._csv_btn = W.Button(description="Write CSV", icon="table")
        self._export_top_btn.on_click(lambda _: self.export_top())
        self._export_above_btn.on_click(lambda _: self.export_above())
        self._csv_btn.on_click(lambda _: self.write_csv())
        self.message = W.HTML()
        exports = W.HBox([self._top_n, self._export_top_btn, self._threshold, self._export_above_btn, self._mode,
                          self._csv_btn], layout=W.Layout(align_items="center", flex_flow="row wrap"))

        super().__init__([nav, self._grid, exports, self.message], layout=W.Layout(width="100%"))
        self._rebuild_rows(render=False)
        self.refresh()

    # ------------------------------------------------------------------ data
    def refresh(self) -> None:
        """Re-read the leaderboard from the catalog and redraw the current page."""
        self._board = self.collection.leaderboard(include_inactive=self.include_inactive,
                                                  min_comparisons=self.min_comparisons, prior_only=True)
        self._threshold.tooltip = _threshold_tip(self.score_column)
        self._apply()

    @property
    def score_column(self) -> str:
        """The board's column the score is read from: ``score`` in the consistent-judge mode, else ``ordinal``."""
        return "ordinal" if self._board is None else score_column(self._board)

    def _column(self, key: str) -> tuple[str, str | None]:
        """(header label, DataFrame column) of table column ``key`` in the board's mode."""
        if self.score_column == "score" and key in EP_COLUMNS:
            return EP_COLUMNS[key]
        return COLUMNS[key][0], COLUMNS[key][1]

    @property
    def min_comparisons(self) -> int:
        """1 while *voted only* is ticked (images never voted on are left out of the table and exports), else 0."""
        return 1 if self._voted_only.value else 0

    @property
    def total(self) -> int:
        """Rows after the file-name filter."""
        return 0 if self._view is None else len(self._view)

    @property
    def n_pages(self) -> int:
        return max(1, math.ceil(self.total / self._size.value))

    @property
    def rows(self) -> pd.DataFrame:
        """The rows of the current page (columns as :meth:`Collection.leaderboard`, and ``prior_only``: ranked by
        the learned prior alone, never voted on)."""
        assert self._view is not None
        start = self.page * self._size.value
        return self._view.iloc[start : start + self._size.value]

    def sort(self, column: str, ascending: bool | None = None) -> None:
        """Sort by ``column`` (a key of :data:`COLUMNS` other than ``thumbnail``); the same column again reverses.

        Raises:
            InvalidArgumentError: unknown or unsortable column.
        """
        if column not in COLUMNS or COLUMNS[column][1] is None:
            sortable = [k for k, v in COLUMNS.items() if v[1] is not None]
            raise InvalidArgumentError(f"column: expected one of {', '.join(sortable)}, got {column!r}")
        if ascending is None:
            ascending = not self.ascending if column == self.sort_column else COLUMNS[column][2]
        self.sort_column, self.ascending = column, bool(ascending)
        self._apply(reset_page=True)

    def goto(self, page: int) -> None:
        """Show page ``page`` (0-based; clipped to the valid range)."""
        self.page = min(max(0, int(page)), self.n_pages - 1)
        self._render()

    def _apply(self, reset_page: bool = False) -> None:
        assert self._board is not None
        df = self._board
        needle = self._filter.value.strip().lower()
        if needle:
            df = df[df["filename"].str.lower().str.contains(needle, regex=False)]
        column = self._column(self.sort_column)[1]
        if column is not None and column != "rank":
            df = df.sort_values([column, "rank"], ascending=[self.ascending, True], kind="stable")
        elif not self.ascending:
            df = df.iloc[::-1]
        self._view = df
        if reset_page:
            self.page = 0
        self.page = min(self.page, self.n_pages - 1)
        self._render()

    # ------------------------------------------------------------------ drawing
    def _rebuild_rows(self, render: bool = True) -> None:
        n = self._size.value
        self._rows = []
        for _ in range(n):
            self._rows.append({
                "rank": W.Label(),
                "thumbnail": W.Image(format="jpeg", layout=W.Layout(width=f"{self.thumb_px}px",
                                                                      height=f"{self.thumb_px}px",
                                                                      object_fit="contain")),
                "filename": W.Label(layout=W.Layout(overflow="hidden")),
                "mu": W.Label(),
                "sigma": W.Label(),
                "score": W.Label(),
                "comparisons": W.Label(),
            })
        if render:
            self.page = 0
            self._render()

    def _render(self) -> None:
        for key, b in self._headers.items():
            label = self._column(key)[0]
            if key == self.sort_column:
                label += " ▲" if self.ascending else " ▼"
            b.description = label
        rows = self.rows if self._view is not None else None
        children: list[W.Widget] = list(self._headers.values())
        if rows is not None:
            for widgets, (_, r) in zip(self._rows, rows.iterrows()):
                widgets["rank"].value = str(int(r["rank"]))
                data = self.collection.thumbnail_bytes(int(r["image_id"])) if r.get("status", "active") == "active" \
                    else None
                widgets["thumbnail"].value = data or b""
                widgets["filename"].value = str(r["filename"])
                widgets["filename"].tooltip = str(r["filepath"])
                for key in ("mu", "sigma", "score"):
                    widgets[key].value = f"{r[self._column(key)[1]]:.2f}"
                widgets["comparisons"].value = str(int(r["comparison_count"]))
                _mark_prior_only(widgets, bool(r.get("prior_only", False)))
                children.extend(widgets.values())
        self._grid.children = children
        first = self.page * self._size.value + 1 if self.total else 0
        last = min(self.total, (self.page + 1) * self._size.value)
        n_prior = int(rows["prior_only"].sum()) if rows is not None and "prior_only" in rows else 0
        self._page_label.value = (f"rows {first:,}–{last:,} of {self.total:,} · page {self.page + 1:,} of "
                                  f"{self.n_pages:,}" + (f' · <i title="{html.escape(PRIOR_ONLY_TIP)}">{n_prior} '
                                                         f'ranked by the prior alone (grey, italic)</i>'
                                                         if n_prior else ""))
        self._prev.disabled = self.page == 0
        self._next.disabled = self.page >= self.n_pages - 1

    # ------------------------------------------------------------------ exports
    def _say(self, text: str, ok: bool = True) -> str:
        colour = "var(--jp-success-color1, #2e7d32)" if ok else "var(--jp-error-color1, #d32f2f)"
        self.message.value = f'<span style="color:{colour}">{html.escape(text)}</span>'
        return text

    def export_top(self, n: int | None = None, mode: str | None = None) -> str:
        """Export the top ``n`` (default: the *top N* box) with ``mode``; returns the message shown."""
        try:
            report = self.collection.export_top(int(n or self._top_n.value), mode=mode or self._mode.value,
                                                min_comparisons=self.min_comparisons)
        except (ImagerankError, OSError, ValueError) as e:
            return self._say(f"export failed: {e}", ok=False)
        return self._say(_describe(report), ok=not report.failed)

    def export_above(self, threshold: float | None = None, mode: str | None = None) -> str:
        """Export every image whose leaderboard score (the *Score* column: ordinal ``mu - 3 sigma``, or the EP
        posterior's ``mu - sigma`` in the consistent-judge mode; :meth:`Collection.export_above`) is >=
        ``threshold`` (default: the *score ≥* box); returns the message shown."""
        t = float(self._threshold.value if threshold is None else threshold)
        try:
            report = self.collection.export_above(t, mode=mode or self._mode.value,
                                                  min_comparisons=self.min_comparisons)
        except (ImagerankError, OSError, ValueError) as e:
            return self._say(f"export failed: {e}", ok=False)
        return self._say(_describe(report), ok=not report.failed)

    def write_csv(self, path: Any = None) -> str:
        """Write the whole leaderboard as CSV (in ``exports/`` unless ``path``); returns the message shown."""
        try:
            out = self.collection.to_csv(path)
        except (ImagerankError, OSError, ValueError) as e:
            return self._say(f"CSV failed: {e}", ok=False)
        n = int(self.collection.stats()["images"])  # the rows to_csv wrote: every image
        return self._say(f"wrote {n:,} rows to {out}")


def _threshold_tip(column: str) -> str:
    """The *score ≥* box's tooltip: what the threshold is compared with."""
    return f"Export above exports every image whose leaderboard score ({SCORES[column]}) is at least this"


def _mark_prior_only(widgets: dict[str, W.Widget], prior_only: bool) -> None:
    """Grey italic score and votes, with a tooltip, for a row ranked by the learned prior alone; plain otherwise."""
    for key in ("score", "comparisons"):
        w = widgets[key]
        w.style.font_style = "italic" if prior_only else None
        w.style.text_color = "#757575" if prior_only else None
        w.tooltip = PRIOR_ONLY_TIP if prior_only else None


def _describe(report: Any) -> str:
    text = f"wrote {len(report.written)} file(s) to {report.out_dir} ({report.mode})"
    if report.missing:
        text += f"; {len(report.missing)} source(s) missing: {', '.join(report.missing[:3])}"
    if report.failed:
        text += f"; {len(report.failed)} failed: {report.failed[0][1]}"
    return text
