"""The cull's passes over the IR records: exact duplicates → bursts → near-duplicate clusters → scores → picks →
buckets. Pure functions of the records and the settings (no I/O), so the same input gives the same output.

- Exact duplicates: equal BLAKE2b digests; the first by ``path`` stays, the others go to ``trash``.
- RAW+JPEG pairs (one shot saved twice: the same name but the suffix, in one folder): the image file leads, the
  RAW file follows it into its burst, cluster and bucket (``companion``), so the two are never culled as
  duplicates of each other.
- Bursts: per camera body (``body``; files without one share one "unknown body"), frames sorted by capture time
  (microseconds: sub-second aware) are split wherever the gap exceeds ``burst_gap_s``. Files whose time is their
  mtime are not grouped (a copy sets every mtime alike): each is a burst of one. Ids run in capture order.
- Clusters: frames whose dHashes differ by at most ``cull_dedupe_hamming`` bits are joined (union-find), first
  within each burst, then across bursts, where candidate pairs come from the pigeonhole principle on hash bands
  (two 64-bit hashes within k bits agree on at least one of k + 1 bands; Manku, Jain & Das Sarma 2007, "Detecting
  near-duplicates for web crawling"). A frame of an exposure bracket, focus stack or panorama (``sequence_kind``)
  joins no cluster.
- Score (explicit and boring; weights are :class:`~imagerank.config.CullSettings` fields, printed in summary.json):
  ``sharpness = w_sharpness * min(log10(1 + laplacian_var) / 3, 1.5)``, ``clip = -w_clip * (clip_shadows +
  clip_highlights)``, ``noise = -w_noise * min(noise_sigma / 20, 1)``, ``exposure = w_exposure * (1 - |luma_mean -
  128| / 128)``, ``unique = w_unique`` when alone in its cluster, ``saliency = w_saliency * saliency``, ``eyes =
  -w_eyes`` when the face check saw closed eyes; ``score`` is their sum.
- Picks: the highest score of each cluster (ties: earlier capture, then path); the others are ``trash``
  (``near_duplicate``).
- Buckets: a pick under ``cull_min_sharpness`` (``blurry``) or over ``cull_max_clip`` (``clipped``) → ``trash``;
  closed eyes → ``maybe``; a RAW file without a preview → ``maybe`` (``unjudged``); of the rest, the top
  ``cull_best_fraction`` by score (at least one) → ``best`` (``top_score``), the others → ``good`` (``kept``).
  Files that could not be read get no bucket; their status and reasons say why.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from ..config import CullSettings
from ..features.hashing import hamming
from .ir import reason

__all__ = ["assign_buckets", "find_bursts", "find_clusters", "follow_companions", "mark_companions",
           "mark_exact_duplicates", "run_passes", "score_parts", "weights_of"]

_UNKNOWN_BODY = "\x00unknown"


def weights_of(cfg: CullSettings) -> dict[str, float]:
    """The score weights of ``cfg`` by part name (``sharpness``, ``clip``, ``noise``, ``exposure``, ``unique``,
    ``saliency``, ``eyes``)."""
    return {"sharpness": cfg.cull_w_sharpness, "clip": cfg.cull_w_clip, "noise": cfg.cull_w_noise,
            "exposure": cfg.cull_w_exposure, "unique": cfg.cull_w_unique, "saliency": cfg.cull_w_saliency,
            "eyes": cfg.cull_w_eyes}


def _follows(r: dict[str, Any]) -> str | None:
    """The companion ``r`` follows (a RAW+JPEG pair), or None."""
    return next((x["ref"] for x in r.get("reasons") or [] if x["code"] == "companion"), None)


def mark_companions(recs: Sequence[dict[str, Any]]) -> None:
    """Pair the RAW and the JPEG (or other image) of one shot: the same name but the suffix, in the same folder.

    The image file leads (its pixels are the camera's own rendering) when it could be decoded, else the RAW file;
    the other gets a ``companion`` reason naming the leader, joins no burst or cluster on its own and takes the
    leader's burst, cluster, pick and bucket (:func:`follow_companions`)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in recs:
        if r.get("status") in ("ok", "metadata_only") and not r.get("exact_duplicate_of"):
            folder, _, name = r["path"].rpartition("/")
            groups[(folder, name.rsplit(".", 1)[0].lower())].append(r)
    for group in groups.values():
        raws = [r for r in group if r.get("kind") == "raw"]
        images = [r for r in group if r.get("kind") != "raw"]
        if len(raws) != 1 or not images:
            continue
        ok_images = sorted((r for r in images if r.get("status") == "ok"), key=lambda r: r["path"])
        leader = ok_images[0] if ok_images else raws[0] if raws[0].get("status") == "ok" else None
        if leader is None:
            continue
        for r in group:
            if r is not leader:
                r["reasons"].append(reason("companion", "pairs", f"one shot with {leader['path']}: follows it",
                                           ref=leader["path"]))


def follow_companions(recs: Sequence[dict[str, Any]]) -> None:
    """Give each companion its leader's burst, cluster, pick and bucket (see :func:`mark_companions`)."""
    by_path = {r["path"]: r for r in recs}
    for r in recs:
        lead = _follows(r)
        if lead is None:
            continue
        leader = by_path[lead]
        for k in ("burst_id", "burst_size", "cluster_id", "cluster_size", "is_pick", "bucket", "decided_by"):
            r[k] = leader.get(k)


def mark_exact_duplicates(recs: Sequence[dict[str, Any]]) -> None:
    """Set ``exact_duplicate_of`` (the first path with the same digest) on every later copy, bucket ``trash``."""
    first: dict[str, str] = {}
    for r in sorted(recs, key=lambda r: r["path"]):
        d = r.get("digest")
        if not d or r.get("status") not in ("ok", "metadata_only"):
            continue
        if d in first:
            r["exact_duplicate_of"] = first[d]
            r["bucket"] = "trash"
            r["reasons"].append(reason("exact_duplicate", "duplicates", f"byte-identical to {first[d]}",
                                       ref=first[d]))
        else:
            first[d] = r["path"]


def _time(r: dict[str, Any]) -> datetime:
    t = r["capture_time"]
    return t if isinstance(t, datetime) else datetime.fromisoformat(str(t))


def find_bursts(recs: Sequence[dict[str, Any]], gap_s: float) -> None:
    """Set ``burst_id`` and ``burst_size`` on the readable, non-duplicate records (see the module docstring)."""
    live = [r for r in recs if r.get("status") in ("ok", "metadata_only") and not r.get("exact_duplicate_of")
            and _follows(r) is None]
    by_body: dict[str, list[dict[str, Any]]] = defaultdict(list)
    groups: list[list[dict[str, Any]]] = []
    for r in live:
        if r.get("capture_time_source") == "mtime" or r.get("capture_time") is None:
            groups.append([r])
        else:
            by_body[r.get("body") or _UNKNOWN_BODY].append(r)
    for body in sorted(by_body):
        frames = sorted(by_body[body], key=lambda r: (_time(r), r["path"]))
        cur = [frames[0]]
        for prev, r in itertools.pairwise(frames):
            if (_time(r) - _time(prev)).total_seconds() > gap_s:
                groups.append(cur)
                cur = []
            cur.append(r)
        groups.append(cur)
    groups.sort(key=lambda g: (_time(g[0]) if g[0].get("capture_time") else datetime.max, g[0]["path"]))
    for i, g in enumerate(groups):
        for r in g:
            r["burst_id"], r["burst_size"] = i, len(g)


class _Union:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, i: int, j: int) -> None:
        a, b = self.find(i), self.find(j)
        if a != b:
            self.parent[max(a, b)] = min(a, b)


def _bands(k: int) -> list[tuple[int, int]]:
    """k + 1 disjoint bit ranges (shift, width) covering 64 bits."""
    n = min(k + 1, 64)
    edges = [round(i * 64 / n) for i in range(n + 1)]
    return [(edges[i], edges[i + 1] - edges[i]) for i in range(n)]


def find_clusters(recs: Sequence[dict[str, Any]], max_bits: int) -> None:
    """Set ``cluster_id`` and ``cluster_size`` on every record with a dHash that is not an exact duplicate
    (within bursts first, then across; see the module docstring). Sequence members stay alone."""
    live = sorted((r for r in recs if r.get("dhash") is not None and r.get("status") == "ok"
                   and not r.get("exact_duplicate_of") and _follows(r) is None), key=lambda r: r["path"])
    n = len(live)
    if n == 0:
        return
    h = np.array([int(r["dhash"]) for r in live], dtype=np.int64)
    joinable = np.array([not r.get("sequence_kind") for r in live])
    u = _Union(n)
    bursts: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(live):
        bursts[int(r.get("burst_id", -1) if r.get("burst_id") is not None else -1)].append(i)
    for idx in bursts.values():  # within bursts
        ids = np.array([i for i in idx if joinable[i]])
        if len(ids) < 2:
            continue
        d = hamming(h[ids][:, None], h[ids][None, :])
        for a, b in zip(*np.nonzero(np.triu(d <= max_bits, 1))):
            u.join(int(ids[a]), int(ids[b]))
    u64 = h.view(np.uint64)
    for shift, width in _bands(max_bits):  # across bursts: candidates share a band
        key = (u64 >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        order = np.argsort(key, kind="stable")
        ks = key[order]
        starts = np.flatnonzero(np.r_[True, ks[1:] != ks[:-1]])
        ends = np.r_[starts[1:], len(ks)]
        for s, e in zip(starts, ends):
            if e - s < 2:
                continue
            ids = np.array([i for i in order[s:e] if joinable[i]])
            if len(ids) < 2:
                continue
            d = hamming(h[ids][:, None], h[ids][None, :])
            for a, b in zip(*np.nonzero(np.triu(d <= max_bits, 1))):
                u.join(int(ids[a]), int(ids[b]))
    members: dict[int, list[int]] = defaultdict(list)
    for i in range(n):
        members[u.find(i)].append(i)
    for cid, root in enumerate(sorted(members, key=lambda k: live[members[k][0]]["path"])):
        for i in members[root]:
            live[i]["cluster_id"], live[i]["cluster_size"] = cid, len(members[root])
    for r in live:
        if r.get("sequence_kind"):
            r["reasons"].append(reason("sequence_member", "clusters",
                                       f"{r['sequence_kind'].replace('_', ' ')} ({r.get('sequence_info')}): "
                                       "never a near-duplicate of its sequence"))


def score_parts(r: dict[str, Any], w: dict[str, float]) -> dict[str, float]:
    """The weighted score parts of one record (see the module docstring); missing metrics count 0."""
    def g(k: str) -> float:
        v = r.get(k)
        return 0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    return {
        "score_sharpness": w["sharpness"] * min(math.log10(1.0 + max(g("laplacian_var"), 0.0)) / 3.0, 1.5),
        "score_clip": -w["clip"] * (g("clip_shadows") + g("clip_highlights")),
        "score_noise": -w["noise"] * min(g("noise_sigma") / 20.0, 1.0),
        "score_exposure": w["exposure"] * (1.0 - abs(g("luma_mean") - 128.0) / 128.0) if r.get("luma_mean")
        is not None else 0.0,
        "score_unique": w["unique"] * (1.0 if (r.get("cluster_size") or 1) == 1 else 0.0),
        "score_saliency": w["saliency"] * g("saliency"),
        "score_eyes": -w["eyes"] * (1.0 if r.get("eyes_closed") is True else 0.0),
    }


def assign_buckets(recs: Sequence[dict[str, Any]], cfg: CullSettings) -> None:
    """Scores, picks and buckets (see the module docstring); every bucketed record gets its reasons."""
    w = weights_of(cfg)
    scored = [r for r in recs if r.get("status") == "ok" and not r.get("exact_duplicate_of") and _follows(r) is None]
    for r in scored:
        parts = score_parts(r, w)
        r.update(parts)
        r["score"] = float(sum(parts.values()))
        r["decided_by"] = "tech"
    clusters: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in scored:
        clusters[int(r["cluster_id"])].append(r)
    kept: list[dict[str, Any]] = []
    for group in clusters.values():
        group.sort(key=lambda r: (-r["score"], _time(r) if r.get("capture_time") else datetime.max, r["path"]))
        pick = group[0]
        for r in group:
            r["is_pick"] = r is pick
        if len(group) > 1:
            pick["reasons"].append(reason("burst_pick", "select", f"highest score of {len(group)} near-duplicates",
                                          value=pick["score"]))
        for r in group[1:]:
            d = int(hamming(int(r["dhash"]), int(pick["dhash"])))
            r["bucket"] = "trash"
            r["reasons"].append(reason("near_duplicate", "select",
                                       f"dHash {d} bits from {pick['path']}, which scored higher "
                                       f"({pick['score']:.3f} > {r['score']:.3f})", value=d,
                                       threshold=cfg.cull_dedupe_hamming, ref=pick["path"]))
        lap = pick.get("laplacian_var")
        clip = (pick.get("clip_shadows") or 0.0) + (pick.get("clip_highlights") or 0.0)
        if cfg.cull_min_sharpness > 0 and lap is not None and lap < cfg.cull_min_sharpness:
            pick["bucket"] = "trash"
            pick["reasons"].append(reason("blurry", "select", "sharpness under cull_min_sharpness", value=lap,
                                          threshold=cfg.cull_min_sharpness))
        elif clip > cfg.cull_max_clip:
            pick["bucket"] = "trash"
            pick["reasons"].append(reason("clipped", "select", "clipped fraction over cull_max_clip", value=clip,
                                          threshold=cfg.cull_max_clip))
        elif pick.get("eyes_closed") is True:
            pick["bucket"] = "maybe"
            pick["reasons"].append(reason("eyes_closed", "select", "a face with no open eye"))
        else:
            kept.append(pick)
    for r in recs:
        if r.get("status") == "metadata_only" and not r.get("exact_duplicate_of") and _follows(r) is None:
            r["bucket"] = "maybe"
            r["reasons"].append(reason("unjudged", "select", "no preview to judge: left for a person to look at"))
    kept.sort(key=lambda r: (-r["score"], r["path"]))
    n_best = max(1, math.ceil(cfg.cull_best_fraction * len(kept))) if kept and cfg.cull_best_fraction > 0 else 0
    cutoff = kept[n_best - 1]["score"] if n_best else None
    for i, r in enumerate(kept):
        if i < n_best:
            r["bucket"] = "best"
            r["reasons"].append(reason("top_score", "select", f"score in the top {cfg.cull_best_fraction:g} of "
                                       f"{len(kept)} kept frames", value=r["score"], threshold=cutoff))
        else:
            r["bucket"] = "good"
            r["reasons"].append(reason("kept", "select", "kept, below the best fraction", value=r["score"],
                                       threshold=cutoff))


def run_passes(recs: Sequence[dict[str, Any]], cfg: CullSettings) -> None:
    """All passes in order, in place: exact duplicates, RAW+JPEG pairs, bursts, clusters, scores, picks, buckets."""
    mark_exact_duplicates(recs)
    mark_companions(recs)
    find_bursts(recs, cfg.burst_gap_s)
    find_clusters(recs, cfg.cull_dedupe_hamming)
    assign_buckets(recs, cfg)
    follow_companions(recs)
