"""The ``crops`` table: boxes drawn by users, proposed by models, imported from crop logs.

A crop is a normalised box ``x, y, w, h`` in [0, 1] of the upright image (after EXIF orientation): top-left corner,
width and height as fractions of the image's width and height. ``source`` says who made it (``user``, ``model``,
or what an import named), ``accepted`` whether a user made or approved it (NULL: not reviewed; user crops count as
accepted unless marked 0), ``model`` and ``confidence`` name the proposer of a model crop. Rows are never updated:
a new crop of an image supersedes the old one (the latest by id wins).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import CropError, NotFoundError
from .db import Database

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Box", "CropTable", "validate_box"]

#: A normalised box: ``(x, y, w, h)`` floats, fractions of the upright image's width / height.
Box = tuple[float, float, float, float]

_COLUMNS = "c.id AS crop_id, c.image_id, c.x, c.y, c.w, c.h, c.aspect, c.source, c.model, c.confidence, " \
           "c.accepted, c.created_at"


def validate_box(x: float, y: float, w: float, h: float, *, tolerance: float = 1e-6) -> Box:
    """Check a normalised box and return it clipped to [0, 1] (only within ``tolerance``).

    Args:
        x, y: top-left corner; w, h: width and height; all fractions of the image side (floats or numbers
            convertible with ``float``).
        tolerance: how far (in fractions) a box may overshoot the image and still be clipped instead of refused.

    Returns:
        ``(x, y, w, h)`` floats with ``0 <= x``, ``0 <= y``, ``x + w <= 1``, ``y + h <= 1`` and ``w, h > 0``.

    Raises:
        CropError: a value is not a finite number, the box has zero (or negative) width or height, or it reaches
            outside the image by more than ``tolerance``.
    """
    vals = (x, y, w, h)
    try:
        fx, fy, fw, fh = (float(v) for v in vals)
    except (TypeError, ValueError) as e:
        raise CropError(f"box: expected four numbers x, y, w, h, got {vals!r}") from e
    if not all(math.isfinite(v) for v in (fx, fy, fw, fh)):
        raise CropError(f"box: expected finite numbers, got {vals!r}")
    if fw <= 0 or fh <= 0:
        raise CropError(f"box: zero area (w={fw:g}, h={fh:g}); a crop needs a positive width and height")
    if fx < -tolerance or fy < -tolerance or fx + fw > 1 + tolerance or fy + fh > 1 + tolerance:
        raise CropError(
            f"box: (x={fx:g}, y={fy:g}, w={fw:g}, h={fh:g}) reaches outside the image; normalised boxes need "
            "0 <= x, 0 <= y, x + w <= 1, y + h <= 1"
        )
    fx, fy = max(fx, 0.0), max(fy, 0.0)
    fw, fh = min(fw, 1.0 - fx), min(fh, 1.0 - fy)
    if fw <= 0 or fh <= 0:
        raise CropError(f"box: zero area after clipping to the image, got {vals!r}")
    return fx, fy, fw, fh


class CropTable:
    """The ``crops`` table of one catalog.

    Args:
        db: the catalog connection.
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(
        self,
        image_id: int,
        box: Sequence[float],
        *,
        source: str = "user",
        aspect: str | None = None,
        model: str | None = None,
        confidence: float | None = None,
        accepted: bool | None = True,
    ) -> int:
        """Store a crop of ``image_id`` and return its ``crops.id``.

        Args:
            image_id: the image (``images.id``).
            box: normalised ``(x, y, w, h)``, checked and clipped by :func:`validate_box`.
            source: ``user``, ``model``, or what an import names.
            aspect: the aspect preset used (``free``, ``1:1``, ``4:5`` ...), informational.
            model: the proposer's name, for model crops; confidence: its expected IoU in [0, 1].
            accepted: True for crops a user made or approved, False for rejected ones, None for unreviewed.

        Raises:
            CropError: ``box`` is not four numbers, or is not a valid box (see :func:`validate_box`).
            NotFoundError: no such image.
        """
        if len(box) != 4:
            raise CropError(f"box: expected (x, y, w, h), got {tuple(box)!r}")
        x, y, w, h = validate_box(*box)
        with self.db.atomic() as conn:
            if conn.execute("SELECT 1 FROM images WHERE id=?", (int(image_id),)).fetchone() is None:
                raise NotFoundError(f"image {image_id} does not exist")
            cur = conn.execute(
                "INSERT INTO crops (image_id, x, y, w, h, aspect, source, model, confidence, accepted) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)",
                (int(image_id), x, y, w, h, aspect, source, model, confidence,
                 None if accepted is None else int(accepted)),
            )
        return int(cur.lastrowid or 0)

    def latest(self, image_id: int) -> Box | None:
        """The latest crop of ``image_id`` that is not rejected (``accepted`` NULL or 1), or None.

        Returns:
            normalised ``(x, y, w, h)`` floats, or None when the image has no such crop (or does not exist).
        """
        rows = self.db.query(
            "SELECT x, y, w, h FROM crops WHERE image_id=? AND COALESCE(accepted, 1)=1 ORDER BY id DESC LIMIT 1",
            (int(image_id),),
        )
        if not rows:
            return None
        x, y, w, h = (float(v) for v in rows[0])
        return x, y, w, h

    def crops_df(self, *, trainable: bool = False, include_model: bool = True, latest: bool = False
                 ) -> pd.DataFrame:
        """Crops as a DataFrame, ordered by id.

        Args:
            trainable: only crops to learn from, of active images: user crops not rejected and (with
                ``include_model``) model or imported crops a user accepted. False: every crop.
            latest: keep only the latest (highest id) of those crops per image.

        Returns:
            One row per crop: crop_id, image_id (int64), x, y, w, h (normalised float64), aspect, source, model
            (str or None), confidence (float, NaN when none), accepted (1, 0 or None), created_at (ISO text, UTC).
        """
        sql = f"SELECT {_COLUMNS} FROM crops c"
        if trainable:
            where = "(c.source = 'user' AND COALESCE(c.accepted, 1) = 1)"
            if include_model:
                where += " OR (c.source != 'user' AND c.accepted = 1)"
            sql += f" JOIN images i ON i.id = c.image_id WHERE i.status = 'active' AND ({where})"
        df = self.db.read_frame(sql + " ORDER BY c.id")
        if latest:
            df = df.drop_duplicates("image_id", keep="last").reset_index(drop=True)
        return df

    def count(self) -> int:
        """How many crops are stored (any source, accepted or not)."""
        return int(self.db.query("SELECT COUNT(*) FROM crops")[0][0])
