"""AI-assisted review: model suggestions (a winner among a pair or set, a crop) and the user's decisions on them.

Every suggestion shown is a row in ``suggestions`` (kind ``winner`` or ``crop``, the model's name, a JSON payload,
its confidence); :func:`decide` records the user's ``approve`` / ``edit`` / ``reject`` on it with the decided
payload and time. Approved and edited winners become matches (``source="suggestion"``: the chosen image rank 0,
the others tied at rank 1, screen positions as shown); approved crops become ``crops`` rows (``source="model"``,
accepted), edited ones ``source="user"`` crops (the user drew them). Rejected suggestions change nothing else, but
stay in the log as negative feedback.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..catalog import Catalog, CatalogLike, as_catalog, validate_box
from ..catalog.suggestions import DECISIONS
from ..errors import InvalidArgumentError
from ..pairing import next_pairs
from .data import add_crop

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DECISIONS", "Suggestion", "decide", "suggest_crops", "suggest_winners", "suggestions_df"]


@dataclass
class Suggestion:
    """One item to review.

    Attributes:
        image_ids: the images shown, in screen order (one image for a crop-only suggestion).
        winner: the suggested best image id (None for crop-only items).
        confidence: P(winner is the best of ``image_ids``) under the ranker (pairs: sigmoid of the score gap; sets:
            the Plackett-Luce first-choice probability, softmax of the scores).
        winner_id: ``suggestions.id`` of the winner suggestion (None when there is none).
        crop_image: the image the crop is for; crop: normalised (x, y, w, h); crop_confidence: expected IoU;
            crop_id: ``suggestions.id`` of the crop suggestion; crop_model: the proposer's name.
        decision: filled by :func:`decide`.
    """

    image_ids: list[int]
    winner: int | None = None
    confidence: float | None = None
    winner_id: int | None = None
    crop_image: int | None = None
    crop: tuple[float, float, float, float] | None = None
    crop_confidence: float | None = None
    crop_id: int | None = None
    crop_model: str | None = None
    decision: str | None = None
    result: dict[str, Any] = field(default_factory=dict)


def _attach_crops(cat: Catalog, items: list[Suggestion], proposer: Any, model_name: str) -> None:
    targets = [s.crop_image for s in items if s.crop_image is not None]
    if not targets:
        return
    df = proposer.propose_images(cat, targets).set_index("image_id")
    for s in items:
        if s.crop_image is None or s.crop_image not in df.index:
            continue
        r = df.loc[s.crop_image]
        s.crop = (float(r["x"]), float(r["y"]), float(r["w"]), float(r["h"]))
        s.crop_confidence = float(r["confidence"])
        s.crop_model = model_name
        s.crop_id = cat.suggestions.add("crop", model_name, {"image_id": s.crop_image, "box": list(s.crop)},
                                        s.crop_confidence)


def suggest_winners(
    col: CatalogLike,
    ranker: Any,
    n: int = 10,
    *,
    groups: Sequence[Sequence[int]] | None = None,
    proposer: Any = None,
    strategy: str | None = None,
) -> list[Suggestion]:
    """Suggest the better image of ``n`` pairs (or of the given ``groups``) and log each suggestion.

    Args:
        ranker: a :class:`~imagerank.training.ranker.Ranker`.
        groups: image ids to judge (pairs or sets); default ``col.next_pairs(n)`` (``random`` when the session's
            strategy is not available).
        proposer: a :class:`~imagerank.training.crops.CropModel`; its crop of each suggested winner is suggested
            too.

    Returns:
        The suggestions (rows written to ``suggestions``); groups with an image lacking features are left out.
    """
    cat = as_catalog(col)
    from ..errors import StrategyNotFoundError

    if groups is None:
        try:
            groups = next_pairs(col, n, strategy=strategy)
        except StrategyNotFoundError:
            groups = next_pairs(col, n, strategy="random")
    lists: list[list[int]] = [list(map(int, g)) for g in groups]
    flat = np.unique(np.concatenate([np.asarray(g, np.int64) for g in lists])) if lists else np.zeros(0, np.int64)
    scores = ranker.score_images(cat, flat) if len(flat) else None
    model_name = ranker.name or "ranker"
    items = []
    for g in lists:
        if scores is None or len(g) < 2 or any(i not in scores.index for i in g):
            continue
        s = scores.reindex(g).to_numpy(np.float64)
        p = np.exp(s - s.max())
        p /= p.sum()
        k = int(np.argmax(s))
        sug = Suggestion(g, g[k], float(p[k]), crop_image=g[k] if proposer is not None else None)
        sug.winner_id = cat.suggestions.add("winner", model_name, {"image_ids": g, "winner": g[k],
                                                                   "scores": [float(v) for v in s]}, sug.confidence)
        items.append(sug)
    if proposer is not None:
        _attach_crops(cat, items, proposer, proposer.name or "crops")
    return items


def suggest_crops(col: CatalogLike, proposer: Any, ids: Sequence[int]) -> list[Suggestion]:
    """Suggest a crop for each image in ``ids`` (crop-only review items); logs each suggestion."""
    cat = as_catalog(col)
    items = [Suggestion([int(i)], crop_image=int(i)) for i in ids]
    _attach_crops(cat, items, proposer, proposer.name or "crops")
    return [s for s in items if s.crop is not None]


def decide(
    col: CatalogLike,
    item: Suggestion,
    decision: str,
    *,
    winner: int | None = None,
    box: Sequence[float] | None = None,
    aspect: str | None = None,
) -> Suggestion:
    """Record the user's decision on a suggestion.

    Args:
        decision: ``approve`` (take it as suggested), ``edit`` (with a different ``winner`` and/or ``box``,
            normalised x, y, w, h) or ``reject``.

    Returns:
        The item with ``decision`` and ``result`` (``match_id`` and / or ``crop_id`` created) filled in.

    Raises:
        InvalidArgumentError: unknown decision, an edited winner not among the images, or the item already decided.
        NotFoundError: the item's suggestion rows do not exist.
        CropError: an edited box outside the image or of zero area.
    """
    cat = as_catalog(col)
    if decision not in DECISIONS:
        raise InvalidArgumentError(f"decision: expected approve, edit or reject, got {decision!r}")
    if item.decision is not None:
        raise InvalidArgumentError(f"this suggestion was already decided ({item.decision})")
    for sid in (item.winner_id, item.crop_id):
        before = None if sid is None else cat.suggestions.decision_of(sid)
        if before is not None:
            raise InvalidArgumentError(f"suggestion {sid} was already decided ({before})")
    chosen = item.winner if winner is None else int(winner)
    if chosen is not None and chosen not in item.image_ids:
        raise InvalidArgumentError(f"winner: {chosen} is not among the images shown {item.image_ids}")
    crop_box = item.crop if box is None else validate_box(*box)
    match_id = crop_row = None
    if decision != "reject":
        if item.winner is not None and chosen is not None:
            ranks = [0 if i == chosen else 1 for i in item.image_ids]
            m = cat.votes.record(item.image_ids, ranks, positions=list(range(len(item.image_ids))),
                                 kind="win" if len(item.image_ids) == 2 else "ranking", source="suggestion")
            match_id = m.id
        if crop_box is not None and item.crop_image is not None:
            edited = decision == "edit" and box is not None
            crop_row = add_crop(cat, item.crop_image, crop_box, source="user" if edited else "model",
                                model=None if edited else item.crop_model, aspect=aspect,
                                confidence=None if edited else item.crop_confidence, accepted=True)
    with cat.db.atomic():  # both rows decided together
        if item.winner_id is not None:
            cat.suggestions.decide(item.winner_id, decision, match_id=match_id,
                                   decided_payload={"winner": chosen} if decision == "edit" else None)
        if item.crop_id is not None:
            edited_box = {"box": list(crop_box)} if decision == "edit" and crop_box is not None else None
            cat.suggestions.decide(item.crop_id, decision, crop_id=crop_row, decided_payload=edited_box)
    item.decision = decision
    item.result = {"match_id": match_id, "crop_id": crop_row, "winner": chosen, "box": crop_box}
    return item


def suggestions_df(col: CatalogLike) -> pd.DataFrame:
    """The suggestions log as a DataFrame, one row per suggestion ordered by id, payloads as JSON text (columns:
    :meth:`imagerank.catalog.SuggestionTable.suggestions_df`)."""
    return as_catalog(col).suggestions.suggestions_df()

