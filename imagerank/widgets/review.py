"""AI-assisted review: the model's suggested winner (with its confidence) and suggested crop, one item at a time.

Each item is a :class:`~imagerank.training.suggest.Suggestion`: a pair or a set of images with the suggested
winner outlined and labelled with its probability, and the suggested crop drawn on its image. Keys (hover the
panel; ipyevents): ``A`` approve, ``E`` edit (opens the crop editor on the winner's image; click another image to
make it the winner; ``Enter`` in the editor saves the edit), ``X`` reject, ``Esc`` leave the editor. Every decision
goes to the ``suggestions`` log; approved and edited winners become matches (``source="suggestion"``) and crops
(see :func:`imagerank.training.suggest.decide`).

Headless use (tests, scripts): :meth:`ReviewPanel.approve`, :meth:`ReviewPanel.edit`, :meth:`ReviewPanel.reject`,
:meth:`ReviewPanel.handle_key`, :meth:`ReviewPanel.click`.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import InvalidArgumentError
from ..training.suggest import Suggestion, decide, suggest_crops, suggest_winners

if TYPE_CHECKING:
    from ..collection import Collection
    from .crop import CropPanel

__all__ = ["ReviewPanel", "draw_suggestion"]

_WIN = (46, 160, 67)
_CROP = (255, 200, 0)


def draw_suggestion(data: bytes, *, crop: Sequence[float] | None = None, winner: bool = False) -> bytes:
    """JPEG bytes of a thumbnail with the normalised ``crop`` drawn (yellow, outside dimmed) and a green frame when
    it is the suggested ``winner``."""
    from PIL import Image, ImageDraw

    with Image.open(io.BytesIO(data)) as im:
        img = im.convert("RGB")
    W, H = img.size
    if crop is not None:
        x, y, w, h = crop
        box = (round(x * W), round(y * H), round((x + w) * W) - 1, round((y + h) * H) - 1)
        dim = Image.new("RGB", img.size, (0, 0, 0))
        mask = Image.new("L", img.size, 110)
        ImageDraw.Draw(mask).rectangle(box, fill=0)
        img = Image.composite(dim, img, mask)
        d = ImageDraw.Draw(img)
        lw = max(2, W // 150)
        d.rectangle(box, outline=_CROP, width=lw)
    if winner:
        ImageDraw.Draw(img).rectangle((0, 0, W - 1, H - 1), outline=_WIN, width=max(4, W // 60))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=88)
    return buf.getvalue()


class ReviewPanel:
    """Review model suggestions with A / E / X.

    Args:
        col: the collection.
        items: suggestions to review; by default made here: ``n`` winner suggestions from ``ranker`` (with crops
            from ``proposer`` when given), or crop suggestions for ``ids`` from ``proposer`` alone.
        ranker, proposer: a Ranker and / or a CropModel.
        n: how many winner suggestions to make.
        ids: images to suggest crops for (crop-only review).

    Attributes:
        widget: the ipywidgets box to display (``display(panel)`` works too).
        items, position, decisions: the queue, the index shown, and the decided items.

    Raises:
        InvalidArgumentError: neither items nor a model to make them.
    """

    def __init__(
        self,
        col: Collection,
        items: Sequence[Suggestion] | None = None,
        *,
        ranker: Any = None,
        proposer: Any = None,
        n: int = 10,
        ids: Sequence[int] | None = None,
    ) -> None:
        import ipywidgets as w

        self.col = col
        if items is None:
            if ranker is not None:
                items = suggest_winners(col, ranker, n, proposer=proposer)
            elif proposer is not None:
                if ids is None:
                    ids = [int(i) for i in col.pool().ids[:n]]
                items = suggest_crops(col, proposer, ids)
            else:
                raise InvalidArgumentError(
                    "ReviewPanel: pass items, or a ranker and / or a proposer to make suggestions")
        self.items: list[Suggestion] = list(items)
        self.position = 0
        self.decisions: list[Suggestion] = []
        self.editing = False
        self.edit_winner: int | None = None
        self.editor: CropPanel | None = None
        self.header = w.HTML()
        self.cards = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self.editor_box = w.VBox()
        self.status = w.HTML()
        buttons = []
        for label, key, style in (("Approve (A)", "a", "success"), ("Edit (E)", "e", "info"),
                                  ("Reject (X)", "x", "danger")):
            b = w.Button(description=label, button_style=style)
            b.on_click(lambda _b, k=key: self.handle_key(k))
            buttons.append(b)
        self.widget = w.VBox([self.header, self.cards, w.HBox(buttons), self.editor_box, self.status],
                             layout=w.Layout(border="1px solid #ddd", padding="6px"))
        self._events: list[Any] = []  # the panel's keydown listener
        self._card_events: list[Any] = []  # click listeners of the cards shown now (closed with them)
        try:
            from ipyevents import Event

            ev = Event(source=self.widget, watched_events=["keydown"], prevent_default_action=True)
            ev.on_dom_event(self._on_dom_event)
            self._events.append(ev)
        except ImportError:  # pragma: no cover - ipyevents is a dependency; buttons still work without it
            pass
        self._render()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # ------------------------------------------------------------------ state
    @property
    def current(self) -> Suggestion | None:
        """The item shown, or None when all are decided."""
        return self.items[self.position] if self.position < len(self.items) else None

    def _clear_cards(self) -> None:
        """Close the cards shown and their click listeners (a render builds new ones; closed widgets free their
        comms in the kernel and the browser)."""
        old = self.cards.children
        self.cards.children = ()
        for ev in self._card_events:
            ev.close()
        self._card_events = []
        for card in old:
            for widget in (*card.children, card):
                for part in (getattr(widget, "layout", None), getattr(widget, "style", None), widget):
                    if part is not None:
                        part.close()

    def _render(self) -> None:
        import ipywidgets as w

        self._clear_cards()
        item = self.current
        if item is None:
            counts = {d: sum(1 for s in self.decisions if s.decision == d) for d in ("approve", "edit", "reject")}
            self.header.value = (f"<b>review done</b>: {counts['approve']} approved, {counts['edit']} edited, "
                                 f"{counts['reject']} rejected of {len(self.items)}")
            self.editor_box.children = ()
            return
        names = self.col.images.names(item.image_ids)

        def name(i: int) -> str:
            return html.escape(names.get(int(i), f"image {i}"))

        head = f"<b>suggestion {self.position + 1} of {len(self.items)}</b>"
        if item.winner is not None and item.confidence is not None:
            head += f" · suggested winner: {name(item.winner)} ({item.confidence:.0%} sure)"
        if item.crop is not None and item.crop_confidence is not None:
            head += f" · suggested crop (expected IoU {item.crop_confidence:.2f})"
        mode = "editing: click an image to make it the winner, adjust the crop, Enter saves" if self.editing else (
            "A approve · E edit · X reject")
        self.header.value = f"{head}<br><small>{mode}</small>"
        winner = self.edit_winner if self.editing and self.edit_winner is not None else item.winner
        cards = []
        for i in item.image_ids:
            data = self.col.thumbnail_bytes(i)
            crop = item.crop if i == item.crop_image else None
            label = w.HTML()
            if data is None:
                img = w.HTML(f"<i>{name(i)}: no thumbnail</i>")
            else:
                img = w.Image(value=draw_suggestion(data, crop=crop, winner=i == winner), format="jpeg",
                              layout=w.Layout(max_width="340px", max_height="340px"))
                try:
                    from ipyevents import Event

                    ev = Event(source=img, watched_events=["click"])
                    ev.on_dom_event(lambda e, image_id=i: self.click(image_id))
                    self._card_events.append(ev)
                except ImportError:  # pragma: no cover
                    pass
            tag = "<b style='color:#2ca043'>suggested winner</b>" if i == winner else ""
            label.value = f"<span title='image id {i}'>{name(i)}</span> {tag}"
            cards.append(w.VBox([img, label], layout=w.Layout(margin="0 8px 0 0")))
        self.cards.children = tuple(cards)

    # ------------------------------------------------------------------ decisions
    def _decide(self, decision: str, **kw: Any) -> Suggestion:
        item = self.current
        if item is None:
            raise InvalidArgumentError("nothing left to review")
        decide(self.col, item, decision, **kw)
        self.decisions.append(item)
        self.position += 1
        self.editing = False
        self.edit_winner = None
        self.editor = None
        self.editor_box.children = ()
        r = item.result
        parts = [{"approve": "approved", "reject": "rejected", "edit": "edited"}.get(decision, decision)]
        if r.get("match_id"):
            parts.append(f"match {r['match_id']} recorded")
        if r.get("crop_id"):
            parts.append(f"crop {r['crop_id']} stored")
        self.status.value = " · ".join(parts)
        self._render()
        return item

    def approve(self) -> Suggestion:
        """Accept the suggested winner and crop as they are."""
        return self._decide("approve")

    def reject(self) -> Suggestion:
        """Reject the suggestion (logged; no match, no crop)."""
        return self._decide("reject")

    def edit(self, *, winner: int | None = None, box: Sequence[float] | None = None) -> Suggestion:
        """Accept with changes: another ``winner`` and / or a ``box`` (normalised x, y, w, h)."""
        return self._decide("edit", winner=winner, box=box)

    def begin_edit(self) -> CropPanel | None:
        """Enter edit mode: open the crop editor on the crop's image (when there is a crop). Returns the editor."""
        from .crop import CropPanel

        item = self.current
        if item is None:
            return None
        self.editing = True
        self.edit_winner = item.winner
        self.editor = None
        if item.crop_image is not None:
            self.editor = CropPanel(self.col, [item.crop_image], box=item.crop, store=False,
                                    on_save=self._editor_saved)
            self.editor_box.children = (self.editor.widget,)
        self._render()
        return self.editor

    def _editor_saved(self, image_id: int, box: tuple[float, float, float, float], crop_id: int | None) -> None:
        self.finish_edit(box=box)

    def finish_edit(self, box: Sequence[float] | None = None) -> Suggestion:
        """Leave edit mode, recording an ``edit`` with the chosen winner and the editor's (or the given) box."""
        if box is None and self.editor is not None:
            box = self.editor.box()
        return self.edit(winner=self.edit_winner, box=box)

    def click(self, image_id: int) -> None:
        """A click on an image: while editing, it becomes the winner."""
        item = self.current
        if self.editing and item is not None and item.winner is not None and image_id in item.image_ids:
            self.edit_winner = int(image_id)
            self._render()

    def handle_key(self, key: str) -> Suggestion | CropPanel | None:
        """Handle a key: ``a`` approve, ``e`` edit (a second ``e`` or Enter saves it), ``x`` reject, ``Escape``
        cancel editing. Returns what the key did (the decided item or the editor)."""
        k = key.lower()
        if self.current is None:
            return None
        if k == "escape" and self.editing:
            self.editing = False
            self.editor = None
            self.editor_box.children = ()
            self._render()
            return None
        if k == "a" and not self.editing:
            return self.approve()
        if k == "x":
            return self.reject()
        if k == "e":
            return self.finish_edit() if self.editing else self.begin_edit()
        if k == "enter" and self.editing:
            return self.finish_edit()
        return None

    def _on_dom_event(self, event: dict[str, Any]) -> None:
        if event.get("type") == "keydown" and not (event.get("ctrlKey") or event.get("metaKey")
                                                   or event.get("altKey")):
            try:
                self.handle_key(str(event.get("key", "")))
            except Exception as e:  # a bad edit (e.g. a crop outside the image) is shown, not raised into the kernel
                self.status.value = f"<span style='color:#b00'>{type(e).__name__}: {e}</span>"
