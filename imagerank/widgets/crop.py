"""The crop editor: ``jupyter_bbox_widget.BBoxWidget`` with one box, aspect presets and keyboard operation.

The widget shows the image's cached thumbnail; its boxes are in the thumbnail's natural pixels. The panel keeps
exactly one box (drawing a new one replaces the old), snaps it to the chosen aspect preset, and stores it
*normalised* (fractions of the upright image, the same for the thumbnail and the original) in the ``crops`` table
with ``source="user"``; :meth:`CropPanel.box_original` gives it in pixels of the original.

Keys (while the image has focus; these are BBoxWidget's own): ``W A S D`` move the box, ``Q``/``E`` narrower /
wider, ``F``/``R`` shorter / taller (hold Shift for 10 px steps), ``1``–``5`` aspect preset (free, 1:1, 4:5, 3:2,
16:9 — the widget's "classes"), ``Enter`` save and go to the next image, ``Space`` skip, ``Tab`` select the box,
``Delete`` remove it, ``Esc`` release focus. The aspect buttons and the Save / Skip buttons do the same by mouse.

Everything is callable without a browser (``set_box``, ``set_aspect``, ``save``, ``skip``), so tests drive it
headless.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import CropError, InvalidArgumentError
from ..training.data import add_crop, crop_of, validate_box

if TYPE_CHECKING:
    from ..collection import Collection

__all__ = ["ASPECTS", "CropPanel", "fit_aspect"]

#: Aspect presets: name -> width / height (None = free).
ASPECTS: dict[str, float | None] = {"free": None, "1:1": 1.0, "4:5": 4 / 5, "3:2": 3 / 2, "16:9": 16 / 9}


def fit_aspect(box: Sequence[float], ratio: float | None, width: float, height: float) -> tuple[float, float,
                                                                                                   float, float]:
    """Snap a box to an aspect ratio, keeping its centre and area, then shrink / shift it to fit the image.

    Args:
        box: ``(x, y, w, h)`` in pixels (any consistent unit) of an image ``width`` x ``height``.
        ratio: target width / height; None returns the box clipped to the image.

    Returns:
        ``(x, y, w, h)`` with ``w / h == ratio`` (to rounding) and inside ``[0, width] x [0, height]``.

    Raises:
        CropError: zero-area box or image.
    """
    x, y, w, h = (float(v) for v in box)
    if w <= 0 or h <= 0 or width <= 0 or height <= 0:
        raise CropError(f"box: zero area ({w:g} x {h:g}) or empty image ({width:g} x {height:g})")
    if ratio is None:
        x0, y0 = max(0.0, x), max(0.0, y)
        x1, y1 = min(width, x + w), min(height, y + h)
        if x1 <= x0 or y1 <= y0:
            raise CropError(f"box ({x:g}, {y:g}, {w:g}, {h:g}) lies outside the {width:g} x {height:g} image")
        return x0, y0, x1 - x0, y1 - y0
    cx, cy = x + w / 2, y + h / 2
    area = w * h
    nw, nh = (area * ratio) ** 0.5, (area / ratio) ** 0.5
    shrink = min(1.0, width / nw, height / nh)
    nw, nh = nw * shrink, nh * shrink
    nx = min(max(cx - nw / 2, 0.0), width - nw)
    ny = min(max(cy - nh / 2, 0.0), height - nh)
    return nx, ny, nw, nh


class CropPanel:
    """Draw, adjust and save one crop per image.

    Args:
        col: the collection.
        image_ids: one image id or a sequence to walk through (Enter / Save stores and moves on).
        aspect: initial preset (a key of :data:`ASPECTS`).
        box: initial normalised ``(x, y, w, h)`` for the first image (default: its latest accepted crop, if any).
        on_save: called with ``(image_id, box_normalised, crop_id)`` after each save.
        store: write saved crops to the ``crops`` table (False: only call ``on_save``, e.g. inside a review).

    Attributes:
        widget: the ipywidgets box to display (``display(panel)`` works too).
        bbox: the underlying ``BBoxWidget``.
        saved: list of ``(image_id, box, crop_id)`` saved so far.

    Raises:
        InvalidArgumentError: unknown aspect, or no image ids.
    """

    def __init__(
        self,
        col: Collection,
        image_ids: int | Sequence[int],
        *,
        aspect: str = "free",
        box: Sequence[float] | None = None,
        on_save: Callable[[int, tuple[float, float, float, float], int | None], None] | None = None,
        store: bool = True,
    ) -> None:
        import ipywidgets as w
        from jupyter_bbox_widget import BBoxWidget

        if aspect not in ASPECTS:
            raise InvalidArgumentError(f"aspect: expected one of {list(ASPECTS)}, got {aspect!r}")
        self.col = col
        self.ids = [int(image_ids)] if isinstance(image_ids, int) else [int(i) for i in image_ids]
        if not self.ids:
            raise InvalidArgumentError("image_ids: expected at least one image id")
        self.on_save = on_save
        self.store = store
        self.saved: list[tuple[int, tuple[float, float, float, float], int | None]] = []
        self.position = 0
        self.done = False  # True once the last image was saved or skipped
        self.aspect = aspect
        self.size: tuple[int, int] = (1, 1)  # thumbnail (display) width, height in pixels
        self._syncing = False
        self.bbox = BBoxWidget(classes=list(ASPECTS), label=aspect, hide_buttons=False)
        self.bbox.on_submit(self.save)
        self.bbox.on_skip(self.skip)
        self.bbox.observe(self._on_bboxes, names=["bboxes"])
        self.bbox.observe(self._on_label, names=["label"])
        self.aspect_buttons = w.ToggleButtons(options=list(ASPECTS), value=aspect, description="aspect",
                                              style={"button_width": "56px"})
        self.aspect_buttons.observe(lambda ch: self.set_aspect(ch["new"]), names="value")
        self.title = w.HTML()
        self.status = w.HTML()
        save_b = w.Button(description="Save (Enter)", button_style="success")
        skip_b = w.Button(description="Skip (Space)")
        save_b.on_click(lambda _b: self.save())
        skip_b.on_click(lambda _b: self.skip())
        help_ = w.HTML("<small>keys on the image: W A S D move · Q/E width · F/R height (Shift ×10) · 1–5 aspect · "
                       "Enter save · Space skip · Esc release focus</small>")
        self.widget = w.VBox([self.title, self.aspect_buttons, self.bbox, w.HBox([save_b, skip_b]), help_,
                              self.status])
        self.show(self.ids[0], box=box)

    # ------------------------------------------------------------------ display
    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    @property
    def image_id(self) -> int:
        return self.ids[self.position]

    def show(self, image_id: int, *, box: Sequence[float] | None = None) -> None:
        """Show ``image_id`` with ``box`` (normalised) or its latest accepted crop, or no box.

        Raises:
            NotFoundError: unknown image. CropError: its thumbnail cannot be built.
        """
        from PIL import Image

        data = self.col.thumbnail_bytes(image_id)
        if data is None:
            raise CropError(f"image {image_id}: no thumbnail (file missing or undecodable); cannot crop it")
        with Image.open(io.BytesIO(data)) as im:
            self.size = im.size
        if image_id in self.ids:
            self.position = self.ids.index(image_id)
        self.done = False
        self._syncing = True
        try:
            self.bbox.bboxes = []
            self.bbox.image_bytes = data
        finally:
            self._syncing = False
        initial = box if box is not None else crop_of(self.col, image_id)
        if initial is not None:
            self.set_box(*initial)
        img = self.col.image(image_id)
        self.title.value = (f"<b>{img['filename']}</b> · {img.get('width') or '?'}×{img.get('height') or '?'} px · "
                            f"image {self.position + 1} of {len(self.ids)}")
        self.status.value = ""

    # ------------------------------------------------------------------ box
    def _current_px(self) -> tuple[float, float, float, float] | None:
        if not self.bbox.bboxes:
            return None
        b = self.bbox.bboxes[-1]
        return float(b["x"]), float(b["y"]), float(b["width"]), float(b["height"])

    def _set_px(self, box: tuple[float, float, float, float]) -> None:
        x, y, w, h = box
        self._syncing = True
        try:
            self.bbox.bboxes = [{"x": round(x, 2), "y": round(y, 2), "width": round(w, 2), "height": round(h, 2),
                                 "label": self.aspect}]
        finally:
            self._syncing = False

    def _on_bboxes(self, change: dict[str, Any]) -> None:
        if self._syncing:
            return
        boxes = change["new"] or []
        if not boxes:
            return
        b = boxes[-1]  # one box: the newest replaces the others
        x, y, w, h = float(b["x"]), float(b["y"]), float(b["width"]), float(b["height"])
        if w < 0:
            x, w = x + w, -w
        if h < 0:
            y, h = y + h, -h
        if w < 1 or h < 1:  # still being drawn (a click with no drag): keep only it
            if len(boxes) > 1:
                self._syncing = True
                try:
                    self.bbox.bboxes = [b]
                finally:
                    self._syncing = False
            return
        try:
            self._set_px(fit_aspect((x, y, w, h), ASPECTS[self.aspect], *self.size))
        except CropError as e:
            self.status.value = f"<span style='color:#b00'>{e}</span>"

    def _on_label(self, change: dict[str, Any]) -> None:
        if change["new"] in ASPECTS and change["new"] != self.aspect:
            self.set_aspect(change["new"])

    def set_aspect(self, name: str) -> None:
        """Switch the aspect preset and snap the current box to it.

        Raises:
            InvalidArgumentError: unknown preset.
        """
        if name not in ASPECTS:
            raise InvalidArgumentError(f"aspect: expected one of {list(ASPECTS)}, got {name!r}")
        self.aspect = name
        if self.aspect_buttons.value != name:
            self.aspect_buttons.value = name
        if self.bbox.label != name:
            self.bbox.label = name
        cur = self._current_px()
        if cur is not None and cur[2] > 0 and cur[3] > 0:
            self._set_px(fit_aspect(cur, ASPECTS[name], *self.size))

    def set_box(self, x: float, y: float, w: float, h: float, *, units: str = "normalised") -> None:
        """Place the box: normalised fractions of the image (default) or ``units="display"`` thumbnail pixels;
        snapped to the current aspect preset.

        Raises:
            CropError: zero area or outside the image.
        """
        W, H = self.size
        if units == "normalised":
            x, y, w, h = validate_box(x, y, w, h)
            px = (x * W, y * H, w * W, h * H)
        elif units == "display":
            px = (float(x), float(y), float(w), float(h))
        else:
            raise InvalidArgumentError(f"units: expected 'normalised' or 'display', got {units!r}")
        self._set_px(fit_aspect(px, ASPECTS[self.aspect], W, H))

    def box(self) -> tuple[float, float, float, float] | None:
        """The box as normalised ``(x, y, w, h)`` (fractions of the upright image), or None when none is drawn."""
        cur = self._current_px()
        if cur is None or cur[2] <= 0 or cur[3] <= 0:
            return None
        W, H = self.size
        x, y, w, h = cur
        x0, y0 = max(0.0, x / W), max(0.0, y / H)
        return x0, y0, min(w / W, 1.0 - x0), min(h / H, 1.0 - y0)

    def box_original(self) -> tuple[int, int, int, int] | None:
        """The box in pixels of the original image (``x, y, w, h``, rounded), or None."""
        b = self.box()
        img = self.col.image(self.image_id)
        if b is None or not img.get("width") or not img.get("height"):
            return None
        W, H = img["width"], img["height"]
        return round(b[0] * W), round(b[1] * H), round(b[2] * W), round(b[3] * H)

    # ------------------------------------------------------------------ actions
    def save(self) -> int | None:
        """Store the box of the current image (``crops``, source user) and move to the next image.

        Returns:
            The new ``crops.id`` (None with ``store=False``).

        Raises:
            CropError: no box drawn, or a bad box (also shown in the status line).
        """
        b = self.box()
        try:
            if b is None:
                raise CropError("draw a box first (drag on the image)")
            b = validate_box(*b)
            crop_id = add_crop(self.col, self.image_id, b, source="user", aspect=self.aspect) if self.store else None
        except CropError as e:
            self.status.value = f"<span style='color:#b00'>{e}</span>"
            raise
        self.saved.append((self.image_id, b, crop_id))
        if self.on_save is not None:
            self.on_save(self.image_id, b, crop_id)
        self._advance(f"saved crop of image {self.image_id}")
        return crop_id

    def skip(self) -> None:
        """Leave the current image without a crop and move on."""
        self._advance(f"skipped image {self.image_id}")

    def _advance(self, msg: str) -> None:
        if self.position + 1 < len(self.ids):
            self.show(self.ids[self.position + 1])
            self.status.value = msg
        else:
            self.done = True
            self._syncing = True
            try:
                self.bbox.bboxes = []
            finally:
                self._syncing = False
            self.status.value = f"{msg} · done: {len(self.saved)} crops saved"
