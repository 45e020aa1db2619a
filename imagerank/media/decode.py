"""Decoding one image file: once, upright, 8-bit RGB, at about the size needed, behind a decompression-bomb guard.

JPEGs are opened with ``Image.draft()`` so libjpeg decodes at 1/2, 1/4 or 1/8 scale straight to about the needed
size, EXIF orientation is applied with ``ImageOps.exif_transpose``, and odd modes (CMYK, 16-bit, palette + alpha,
LA/RGBA, animated) are normalised to 8-bit RGB (DESIGN §4).
"""

from __future__ import annotations

import math
import warnings

from PIL import Image, ImageFile, ImageOps

__all__ = ["decode_image", "fingerprint", "reduce_like_thumbnail", "to_rgb"]

# Truncated files must fail loudly (status corrupt), not decode half-grey.
ImageFile.LOAD_TRUNCATED_IMAGES = False


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

    Returns:
        (image, width, height): the reduced RGB image (longest side >= ``target`` where the original is that
        large) and the original's displayed width and height in pixels.

    Raises:
        OSError / ValueError / Image.DecompressionBombError / SyntaxError: the file is not a decodable image,
        is truncated, or has more than ``max_pixels`` pixels. Callers turn these into a ``corrupt`` status.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise Image.DecompressionBombError(
                    f"{w}x{h} = {w * h} pixels exceeds the limit of {max_pixels} (decompression-bomb guard)"
                )
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
