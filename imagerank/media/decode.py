"""Decoding one image file: once, upright, 8-bit RGB, at about the size needed, behind a decompression-bomb guard.

JPEGs are opened with ``Image.draft()`` so libjpeg decodes at 1/2, 1/4 or 1/8 scale straight to about the needed
size, EXIF orientation is applied with ``ImageOps.exif_transpose``, and odd modes (CMYK, 16-bit, palette + alpha,
LA/RGBA, animated) are normalised to 8-bit RGB (DESIGN §4).

The pixel limit is ours (``Settings.max_image_pixels``, checked on the header's width x height before any pixel is
decoded), not Pillow's: Pillow's own guard (``Image.MAX_IMAGE_PIXELS``, 89,478,485 pixels; an error above twice
that) would refuse ordinary 100-megapixel photos below the configured limit, so it is lifted while imagerank opens
an image (:func:`pillow_limit_lifted`) and :func:`check_pixels` applies the configured one.
"""

from __future__ import annotations

import contextlib
import math
import threading
import warnings
from collections.abc import Iterator

from PIL import Image, ImageFile, ImageOps

__all__ = ["check_pixels", "decode_image", "fingerprint", "pillow_limit_lifted", "reduce_like_thumbnail", "to_rgb"]

# Truncated files must fail loudly (status corrupt), not decode half-grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False


_lift_lock = threading.Lock()
_lift_users = 0
_lift_saved: int | None = None


@contextlib.contextmanager
def pillow_limit_lifted() -> Iterator[None]:
    """Within the block Pillow's own decompression-bomb guard (``Image.MAX_IMAGE_PIXELS``) is off, so that the
    caller can apply the configured limit (:func:`check_pixels`) instead of Pillow's lower one.

    ``Image.MAX_IMAGE_PIXELS`` is process-wide: the blocks of all threads share one lift, counted under a lock, and
    the value found on entry of the first is restored when the last one leaves (decode-pass workers are processes,
    each with its own). Code outside imagerank that opens images in another thread meanwhile runs without Pillow's
    guard for that time.
    """
    global _lift_users, _lift_saved
    with _lift_lock:
        if _lift_users == 0:
            _lift_saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _lift_users += 1
    try:
        yield
    finally:
        with _lift_lock:
            _lift_users -= 1
            if _lift_users == 0:
                Image.MAX_IMAGE_PIXELS = _lift_saved


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    """Refuse an image of ``width`` x ``height`` pixels when it has more than ``max_pixels`` pixels.

    Raises:
        PIL.Image.DecompressionBombError: over the limit; the message names both counts and the setting
            (``max_image_pixels``), and becomes the ``corrupt`` status's reason.
    """
    if int(width) * int(height) > int(max_pixels):
        raise Image.DecompressionBombError(
            f"{width}x{height} = {int(width) * int(height)} pixels exceeds the limit of {int(max_pixels)} "
            f"(max_image_pixels; decompression-bomb guard)"
        )


def fingerprint(size: int, mtime_ns: int) -> str:
    """The file fingerprint used to key thumbnails and sidecar rows: ``"<size>-<mtime_ns>"``."""
    return f"{int(size)}-{int(mtime_ns)}"


def to_rgb(im: Image.Image) -> Image.Image:
    """8-bit RGB from any mode Pillow decodes: 16-bit scaled (not clipped), alpha composited on mid-grey."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        hi = im.getextrema()[1] if im.mode == "I" else 65535
        scale = 255.0 / max(float(hi or 1), 255.0)  # type: ignore[arg-type]
        im = im.point(lambda v: v * scale).convert("L") if im.mode == "I" else im.convert("I").point(
            lambda v: v * scale
        ).convert("L")
    elif im.mode == "F":
        im = im.convert("L")
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (128, 128, 128, 255))
        im = Image.alpha_composite(bg, rgba)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return im


def reduce_like_thumbnail(im: Image.Image, size: int) -> Image.Image:
    """Reduce ``im`` in place to fit ``size`` x ``size`` pixels exactly as cached thumbnails are made (Pillow's
    ``thumbnail``, bilinear, ``reducing_gap=2``); returns it. Features computed from a thumbnail and from a fresh
    decode agree only while both go through this."""
    im.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return im


def decode_image(path: str, target: int, max_pixels: int = 178_956_970) -> tuple[Image.Image, int, int]:
    """Decode ``path`` once, at roughly ``target`` pixels on the longest side, upright and 8-bit RGB.

    Args:
        path: the image file.
        target: the wanted longest side, pixels (JPEGs decode at the smallest 1/2, 1/4, 1/8 scale reaching it).
        max_pixels: the decompression-bomb limit (``Settings.max_image_pixels``): a file whose header declares
            more pixels is refused before any pixel is decoded; Pillow's own, lower limit does not apply.

    Returns:
        (image, width, height): the reduced RGB image (longest side >= ``target`` where the original is that
        large) and the original's displayed width and height in pixels.

    Raises:
        OSError / ValueError / Image.DecompressionBombError / SyntaxError: the file is not a decodable image,
        is truncated, or has more than ``max_pixels`` pixels. Callers turn these into a ``corrupt`` status.
    """
    with pillow_limit_lifted(), warnings.catch_warnings():
        # Pillow's notes on a malformed EXIF block ("Corrupt EXIF data" ...) are listed by the EXIF reader in
        # ``exif_errors``; here, where only the orientation is read, they would be noise on stderr
        warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
        with Image.open(path) as im:
            w, h = im.size
            check_pixels(w, h, max_pixels)
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)
            orientation = im.getexif().get(0x0112, 1) if hasattr(im, "getexif") else 1
            if im.format == "JPEG":  # libjpeg scales by 1/2, 1/4, 1/8 while decoding: longest side >= target
                k = target / max(w, h)
                im.draft("RGB", (max(1, math.ceil(w * k)), max(1, math.ceil(h * k))))
            im.load()
            out = ImageOps.exif_transpose(im)
            if out is None:  # pragma: no cover - exif_transpose returns a copy unless in_place
                out = im.copy()
    if orientation in (5, 6, 7, 8):
        w, h = h, w
    if out.width * out.height == 0:
        raise ValueError("image has zero width or height")
    return to_rgb(out), int(w), int(h)
