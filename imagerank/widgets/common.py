"""Helpers shared by the voting panels (compare now; triage and burst next): message argument parsing, the
zoomed original, the top of the leaderboard from a pool, the prior's confidence for a header."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import ratings as R
from ..errors import InvalidArgumentError

if TYPE_CHECKING:
    from ..pairing import Pool

__all__ = ["as_int", "prior_confidence", "top_by_ordinal", "zoom_jpeg"]


def as_int(value: Any, name: str) -> int:
    """``value`` (an int, float or numeric string from a browser message) as an int.

    Raises:
        InvalidArgumentError: anything else (a bool, None, a non-numeric string), naming ``name``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidArgumentError(f"{name}: expected an integer, got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise InvalidArgumentError(f"{name}: expected an integer, got {value!r}") from None


def prior_confidence(report: Any) -> float | None:
    """The learned prior's confidence (0..1, two decimals) for a header, None when no prior was fitted."""
    c = getattr(report, "confidence", None)
    return None if c is None else round(float(c), 2)


def top_by_ordinal(pool: Pool, m: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """The pool indices of the best ``m`` images in the leaderboard's order (ordinal ``mu - 3 sigma`` descending,
    then id ascending) and every image's ordinal; O(N) plus a sort of the ties at the cut.

    Returns:
        ``(idx (<= m,) int64 pool indices, best first; ordinal (N,) float64)``.
    """
    ordinal = R.ordinal(pool.mu, pool.sigma)
    n = len(pool)
    m = min(int(m), n)
    if m <= 0:
        return np.zeros(0, dtype=np.int64), ordinal
    cut = np.partition(ordinal, n - m)[n - m]  # everything tied with the m-th best competes
    idx = np.flatnonzero(ordinal >= cut)
    return idx[np.lexsort((pool.ids[idx], -ordinal[idx]))][:m], ordinal


def zoom_jpeg(path: str, width: int, height: int, max_pixels: int) -> tuple[bytes, tuple[int, int],
                                                                                  tuple[int, int]]:
    """The image at ``path`` upright (EXIF orientation applied), fit into ``width`` x ``height`` pixels, as JPEG
    (quality 90).

    Args:
        max_pixels: decompression-bomb limit in pixels (``Settings.max_image_pixels``); Pillow's own, lower limit
            does not apply (see :func:`imagerank.media.decode.decode_image`).

    Returns:
        ``(jpeg bytes, (shown width, shown height), (original width, original height))`` in pixels.

    Raises:
        OSError / ValueError / SyntaxError: unreadable or undecodable file. PIL.Image.DecompressionBombError: more
            than ``max_pixels`` pixels (the message names the limit).
    """
    from PIL import Image

    from ..media import decode_image

    rgb, w, h = decode_image(path, max(width, height), max_pixels)
    rgb.thumbnail((width, height), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=90)
    return buf.getvalue(), rgb.size, (w, h)
