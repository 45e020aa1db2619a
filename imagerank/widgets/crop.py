"""The crop editor: ``jupyter_bbox_widget.BBoxWidget`` with one box, aspect presets and keyboard operation.

The widget shows an editing preview of the image (up to ``preview_size`` = 1600 pixels on the longest side, decoded
once with :func:`imagerank.media.decode_image` under the catalog's ``max_image_pixels`` and cached beside the
thumbnails; the 512-pixel thumbnail when the file cannot be decoded); its boxes are in the preview's natural pixels.
The panel keeps exactly one box (a newly drawn one replaces the old once it has a size; a click without a drag
leaves the old one), snaps it to the chosen aspect preset, and stores it *normalised* (fractions of the upright
image, the same for the preview and the original) in the ``crops`` table with ``source="user"``;
:meth:`CropPanel.box_original` gives it in pixels of the original. The wrapped widget's own Submit / Skip buttons
and class list are hidden (the panel shows its own once), and the panel's initial aspect survives the widget's
first render (which would otherwise reset it to the first class, "free").

Keys (while the image has focus; these are BBoxWidget's own): ``W A S D`` move the box, ``Q``/``E`` narrower /
wider, ``F``/``R`` shorter / taller (hold Shift for 10 px steps), ``1``–``5`` aspect preset (free, 1:1, 4:5, 3:2,
16:9 — the widget's "classes"), ``Enter`` save and go to the next image, ``Space`` skip, ``Tab`` select the box,
``Delete`` remove it, ``Esc`` release focus. The aspect buttons and the Save / Skip buttons do the same by mouse.

Everything is callable without a browser (``set_box``, ``set_aspect``, ``save``, ``skip``), so tests drive it
headless.
"""

from __future__ import annotations

import functools
import io
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import CropError, InvalidArgumentError
from ..media.decode import decode_image, fingerprint, reduce_like_thumbnail
from ..media.thumbs import thumb_path
from ..training.data import add_crop, crop_of, validate_box

if TYPE_CHECKING:
    from ..collection import Collection

__all__ = ["ASPECTS", "CropPanel", "fit_aspect", "preview_bytes"]

#: Aspect presets: name -> width / height (None = free).
ASPECTS: dict[str, float | None] = {"free": None, "1:1": 1.0, "4:5": 4 / 5, "3:2": 3 / 2, "16:9": 16 / 9}

#: The DOM class of the panel's BBoxWidget; the CSS below hides its own buttons and class list under it.
BBOX_CLASS = "imagerank-crop-bbox"
_HIDE_CSS = (f".{BBOX_CLASS} .buttons, .{BBOX_CLASS} .classes {{ display: none !important; }}\n"
             f".{BBOX_CLASS} img {{ max-height: 75vh; }}\n")

# BBoxWidget sets its label to the first class when its view mounts (and sends that to the kernel), so a panel
# opened with aspect "4:5" came up as "free". The wrapper renders the widget, then puts back the label the kernel
# chose. The widget's module is imported from a blob URL, as anywidget imports ``_esm`` itself.
_ESM_WRAPPER = """\
const source = %s;
const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
let base;
try {
  base = (await import(url)).default;
} finally {
  URL.revokeObjectURL(url);
}
export default {
  async render(ctx) {
    const model = ctx.model;
    const wanted = model.get("label");
    const dispose = await base.render(ctx);
    if (wanted && model.get("label") !== wanted) {
      model.set("label", wanted);
      model.save_changes();
    }
    return dispose;
  },
};
"""


def wrapper_esm(base_source: str) -> str:
    """The ES module that renders the widget module ``base_source`` and then restores the label the kernel set."""
    return _ESM_WRAPPER % json.dumps(base_source)


@functools.cache
def _bbox_class() -> type:
    """``BBoxWidget`` with the label-keeping module and the CSS that hides its own controls (made on first use:
    ``jupyter_bbox_widget`` is in the ``[lab]`` extra)."""
    from jupyter_bbox_widget import BBoxWidget

    class CropBBoxWidget(BBoxWidget):
        _esm = wrapper_esm(BBoxWidget._esm)
        _css = BBoxWidget._css + _HIDE_CSS

    return CropBBoxWidget


def preview_bytes(col: Collection, image_id: int, size: int = 1600) -> tuple[bytes, bool] | None:
    """JPEG bytes of the editing preview of ``image_id``: upright, at most ``size`` pixels on the longest side.

    The preview is decoded from the original once (:func:`imagerank.media.decode_image` with the catalog's
    ``max_image_pixels``, reduced like a thumbnail) and cached as ``thumbs/<size>/..`` keyed by the file's
    fingerprint; a ``size`` not above the thumbnail size uses the thumbnail.

    Args:
        col: the collection. image_id: the image. size: longest side of the preview, pixels.

    Returns:
        ``(bytes, True)`` for the preview, ``(bytes, False)`` for the thumbnail when the original cannot be decoded
        (moved, unreadable, over the pixel limit), or None when neither exists.

    Raises:
        NotFoundError: unknown image.
    """
    row = col.image(image_id)
    if size > col.thumbs.size and row.get("filepath"):
        dest = thumb_path(col.catalog.thumbs_dir, int(image_id),
                          fingerprint(row.get("size") or 0, row.get("mtime_ns") or 0), int(size))
        try:
            return dest.read_bytes(), True
        except OSError:
            pass
        from PIL import Image

        try:
            im, _w, _h = decode_image(str(row["filepath"]), int(size), col.settings.max_image_pixels)
            buf = io.BytesIO()
            reduce_like_thumbnail(im, int(size)).save(buf, "JPEG", quality=90)
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
            pass  # the thumbnail (if any) stands in
        else:
            data = buf.getvalue()
            _write_quietly(dest, data)
            return data, True
    thumb = col.thumbnail_bytes(image_id)
    return None if thumb is None else (thumb, False)


def _write_quietly(dest: Path, data: bytes) -> None:
    """Cache ``data`` at ``dest`` (atomically); a full or read-only disk only costs the cache."""
    tmp = dest.with_name(dest.name + f".{os.getpid()}.tmp")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, dest)
    except OSError:
        tmp.unlink(missing_ok=True)


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
        preview_size: longest side of the editing preview, pixels (:func:`preview_bytes`); boxes are drawn in its
            pixels and stored normalised.

    Attributes:
        widget: the ipywidgets box to display (``display(panel)`` works too).
        bbox: the underlying ``BBoxWidget`` (its own buttons and class list hidden).
        size: the shown preview's ``(width, height)``, pixels.
        saved: list of ``(image_id, box, crop_id)`` saved so far.

    Raises:
        InvalidArgumentError: unknown aspect, no image ids, or a ``preview_size`` below 64.
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
        preview_size: int = 1600,
    ) -> None:
        import ipywidgets as w

        if aspect not in ASPECTS:
            raise InvalidArgumentError(f"aspect: expected one of {list(ASPECTS)}, got {aspect!r}")
        if int(preview_size) < 64:
            raise InvalidArgumentError(f"preview_size: expected at least 64 pixels, got {preview_size!r}")
        self.preview_size = int(preview_size)
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
        self.size: tuple[int, int] = (1, 1)  # preview (display) width, height in pixels
        self._syncing = False
        # hide_buttons stays False: it would also switch off the widget's Enter / Space keys; CSS hides them
        self.bbox = _bbox_class()(classes=list(ASPECTS), label=aspect, hide_buttons=False)
        self.bbox.add_class(BBOX_CLASS)
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
            NotFoundError: unknown image. CropError: neither a preview nor a thumbnail can be built.
        """
        from PIL import Image

        got = preview_bytes(self.col, image_id, self.preview_size)
        if got is None:
            raise CropError(f"image {image_id}: no preview or thumbnail (file missing or undecodable); cannot crop it")
        data = got[0]
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
        """The newest box with a size (a box being drawn, still 0 x 0, is skipped), in display pixels."""
        for b in reversed(self.bbox.bboxes or []):
            px = _positive(b)
            if px is not None:
                return px
        return None

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
        px = _positive(boxes[-1])  # one box: the newest replaces the others
        if px is None:
            # a box being drawn (the mouse is down: 0 x 0) or a click without a drag: leave the list alone, so the
            # drag goes on and the box on screen stays the one saved; the drag's end replaces the old box
            return
        try:
            self._set_px(fit_aspect(px, ASPECTS[self.aspect], *self.size))
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
        """Place the box: normalised fractions of the image (default) or ``units="display"`` preview pixels
        (:attr:`size`); snapped to the current aspect preset.

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


def _positive(b: dict[str, Any]) -> tuple[float, float, float, float] | None:
    """A widget box as ``(x, y, w, h)`` with positive width and height (a box drawn leftwards or upwards has
    negative ones), or None while it is smaller than a pixel."""
    x, y, w, h = float(b["x"]), float(b["y"]), float(b["width"]), float(b["height"])
    if w < 0:
        x, w = x + w, -w
    if h < 0:
        y, h = y + h, -h
    return None if w < 1 or h < 1 else (x, y, w, h)
