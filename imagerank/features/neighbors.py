"""Near-duplicates, exact duplicates, nearest neighbours and a 2-D map, from the persisted sidecars.

Everything here reads what the feature pass wrote (``hashes`` and ``embeddings/...`` sidecars); nothing is
re-encoded. Only images with status ``active`` whose sidecar rows are current are considered.

Near-duplicate groups are the connected components (single linkage; union-find via
``scipy.sparse.csgraph.connected_components``) of the graph whose edges join two images

- by pHash: Hamming distance <= ``Settings.phash_threshold`` bits (0–64, default 8). Exhaustive, blocked
  XOR + popcount in numpy: O(N²/2) pair tests at ~0.3–0.5 G pairs/s on one core, memory O(block·N) (100k images:
  5·10⁹ tests, 10–20 s; 10k images: well under a second). Exact, unlike a BK-tree in Python (which visits a
  large share of the tree at radius 8 and is slower) or multi-index hashing (whose buckets overflow on the
  clustered hashes of real collections).
- by embedding: cosine similarity >= ``Settings.cosine_threshold`` (default 0.95) on L2-normalised vectors:
  blocked matrix products, O(N²·D/2) flops (100k x 512-D: ~2.6·10¹² flops, about a minute on 2 cores).

Single linkage chains: A~B and B~C put A and C in one group even if they differ more; groups are sorted by
size (largest first), ids ascending within a group.

The 2-D map is PCA (Pearson 1901, :func:`imagerank._util.pca.pca`) of the centred feature matrix: embeddings when
there are any, else the 192 bits of the three hashes. UMAP would show clusters more crisply but costs a
numba/pynndescent dependency and is not deterministic across machines; PCA is enough to see the main axes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .._util.pca import pca
from ..catalog import Catalog, CatalogLike, as_catalog
from ..errors import FeatureError, NotFoundError
from .hashing import HASH_COLUMNS, hash_bits, popcount64
from .sidecar import Sidecar, list_sidecars, normalise_name, read_current

if TYPE_CHECKING:
    import pandas as pd


__all__ = [
    "connected_groups",
    "cosine_pairs",
    "embedding_matrix",
    "embedding_sets",
    "exact_duplicate_groups",
    "feature_map",
    "hamming_pairs",
    "near_duplicate_groups",
    "pca_2d",
    "similar_images",
]


# ---------------------------------------------------------------------------------------------- pairs
def hamming_pairs(hashes: Any, threshold: int, *, block: int = 2048) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs i < j with Hamming distance <= ``threshold`` bits.

    Args:
        hashes: (N,) int64 (or uint64) 64-bit hashes.
        threshold: maximum distance in bits, 0–64.
        block: rows per block (memory ~ 9 bytes x block x N).

    Returns:
        (i, j, distance): (P,) int64, int64, uint8 arrays.

    Cost: O(N²/2) XOR + popcount (see the module docstring).
    """
    h = np.ascontiguousarray(np.asarray(hashes, dtype=np.int64).view(np.uint64))
    return _blocked_pairs(
        len(h), block, lambda s, e: popcount64(h[s:e, None] ^ h[None, s:]), lambda d: d <= threshold, np.uint8
    )


def cosine_pairs(X: np.ndarray, threshold: float, *, block: int = 1024) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs i < j of rows of L2-normalised ``X`` (N, D) with cosine similarity >= ``threshold``.

    Returns:
        (i, j, similarity): (P,) int64, int64, float32. Cost: O(N²·D/2) flops, memory O(block·N).
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    return _blocked_pairs(len(X), block, lambda s, e: X[s:e] @ X[s:].T, lambda v: v >= threshold, np.float32)


def _blocked_pairs(
    n: int,
    block: int,
    score: Callable[[int, int], np.ndarray],
    close: Callable[[np.ndarray], np.ndarray],
    dtype: type[np.generic],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs i < j whose ``score`` passes ``close``, computed ``block`` rows at a time.

    ``score(s, e)`` returns the (e - s, n - s) block of scores of rows s..e-1 against rows s..n-1 (column c is
    row s + c). Returns (i, j, value) as (P,) int64, int64, ``dtype``. Memory O(block·N).
    """
    ii, jj, vv = [], [], []
    for s in range(0, n, block):
        v = score(s, min(n, s + block))
        r, c = np.nonzero(close(v))
        keep = c > r  # upper triangle: j > i (the block's own lower triangle and diagonal are repeats)
        r, c = r[keep], c[keep]
        ii.append(r + s)
        jj.append(c + s)
        vv.append(v[r, c])
    if not ii:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, dtype)
    return np.concatenate(ii).astype(np.int64), np.concatenate(jj).astype(np.int64), np.concatenate(vv).astype(dtype)


def connected_groups(n: int, i: np.ndarray, j: np.ndarray) -> list[np.ndarray]:
    """Connected components with more than one member of the graph on ``n`` nodes with edges (i, j).

    Returns:
        Node-index arrays (ascending), largest group first (ties by smallest member).
    """
    if n == 0 or len(i) == 0:
        return []
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    g = coo_matrix((np.ones(len(i), dtype=np.int8), (i, j)), shape=(n, n))
    _, labels = connected_components(g, directed=False)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    cuts = np.flatnonzero(np.diff(sorted_labels)) + 1
    groups = [np.sort(g_) for g_ in np.split(order, cuts) if len(g_) > 1]
    groups.sort(key=lambda g_: (-len(g_), int(g_[0])))
    return groups


# ---------------------------------------------------------------------------------------------- readers
def embedding_sets(col: CatalogLike) -> dict[str, dict[str, Any]]:
    """Embedding sidecars of ``col``: ``"<model>__<tag>"`` -> their metadata (model, pretrained, dim ...)."""
    cat = as_catalog(col)
    out = {}
    for name in list_sidecars(cat.sidecars_dir):
        if name.startswith("embeddings/"):
            out[name.split("/", 1)[1]] = Sidecar(cat.sidecars_dir, name).metadata()
    return out


def _embedding_name(cat: Catalog, name: str | None) -> str:
    sets = embedding_sets(cat)
    if name is None:
        if not sets:
            raise FeatureError(
                "no embeddings computed yet; run Collection.compute_features(embeddings='MODEL:PRETRAINED') "
                "or `imagerank features WORKSPACE --embeddings MODEL:PRETRAINED`"
            )
        # the newest set
        return "embeddings/" + max(sets, key=lambda k: str(sets[k].get("written_at", "")))
    full = normalise_name(name if name.startswith("embeddings") else f"embeddings/{name}")
    if full.split("/", 1)[1] not in sets:
        raise FeatureError(f"no embedding sidecar {full!r}; computed: {', '.join(sorted(sets)) or 'none'}")
    return full


def embedding_matrix(col: CatalogLike, name: str | None = None, *, active_only: bool = False) -> tuple[np.ndarray,
                                                                                                      np.ndarray]:
    """The current vectors of embedding sidecar ``name`` (default: the newest set).

    Returns:
        (image_ids (N,) int64 ascending, X (N, D) float32, L2-normalised).

    Raises:
        FeatureError: no such embedding sidecar (the message lists those computed).
    """
    cat = as_catalog(col)
    full = _embedding_name(cat, name)
    t = read_current(cat, full, ["embedding"])
    ids = t.column("image_id").to_numpy().astype(np.int64)
    if t.num_rows == 0:
        dim = int(Sidecar(cat.sidecars_dir, full).metadata().get("dim", 0))
        return ids, np.zeros((0, dim), np.float32)
    emb = t.column("embedding").combine_chunks()
    dim = emb.type.list_size
    X = emb.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, dim)
    if active_only:
        keep = np.isin(ids, cat.images.active_ids())
        ids, X = ids[keep], X[keep]
    return ids, X


def _hashes(cat: Catalog) -> pd.DataFrame:
    df = read_current(cat, "hashes").to_pandas()
    return df[df["image_id"].isin(cat.images.active_ids())].reset_index(drop=True)


# ---------------------------------------------------------------------------------------------- groups
def near_duplicate_groups(
    col: CatalogLike,
    method: str = "phash",
    *,
    threshold: float | None = None,
    embeddings: str | None = None,
) -> list[list[int]]:
    """Groups of near-duplicate active images (lists of image ids, largest group first).

    Args:
        method: ``"phash"`` (Hamming distance of pHash <= threshold bits, default ``Settings.phash_threshold``),
            ``"dhash"`` / ``"whash"`` likewise, or ``"embedding"`` (cosine >= threshold, default
            ``Settings.cosine_threshold``, on the ``embeddings`` sidecar, default the newest).

    Raises:
        FeatureError: the needed sidecar has not been computed; unknown method.
    """
    cat = as_catalog(col)
    if method in HASH_COLUMNS:
        df = _hashes(cat)
        if df.empty and not Sidecar(cat.sidecars_dir, "hashes").parts():
            raise FeatureError("no hashes computed yet; run Collection.compute_features(hashes=True)")
        t = int(cat.settings.phash_threshold if threshold is None else threshold)
        i, j, _ = hamming_pairs(df[method].to_numpy(np.int64), t)
        ids = df["image_id"].to_numpy(np.int64)
    elif method == "embedding":
        ids, X = embedding_matrix(cat, embeddings, active_only=True)
        t_cos = float(cat.settings.cosine_threshold if threshold is None else threshold)
        i, j, _ = cosine_pairs(X, t_cos)
    else:
        raise FeatureError(f"near_duplicates: method: expected phash, dhash, whash or embedding, got {method!r}")
    return [ids[g].tolist() for g in connected_groups(len(ids), i, j)]


def exact_duplicate_groups(col: CatalogLike) -> list[list[int]]:
    """Groups of active images whose files are byte-identical (equal BLAKE2b digests), largest first.

    Raises:
        FeatureError: hashes have not been computed.
    """
    cat = as_catalog(col)
    df = _hashes(cat)
    if df.empty and not Sidecar(cat.sidecars_dir, "hashes").parts():
        raise FeatureError("no hashes computed yet; run Collection.compute_features(hashes=True)")
    groups = [sorted(int(v) for v in g["image_id"]) for _, g in df.groupby("digest") if len(g) > 1]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups


def similar_images(col: CatalogLike, image_id: int, k: int = 10, *, embeddings: str | None = None) -> pd.DataFrame:
    """The ``k`` active images most similar to ``image_id`` by embedding (cosine, highest first).

    Returns:
        DataFrame ``image_id`` (int64), ``similarity`` (float32, -1..1), ``filepath``; the query itself is left
        out.

    Raises:
        NotFoundError: ``image_id`` has no current embedding. FeatureError: no embeddings computed.
    """
    cat = as_catalog(col)
    import pandas as pd

    ids, X = embedding_matrix(cat, embeddings, active_only=False)
    pos = np.flatnonzero(ids == int(image_id))
    if len(pos) == 0:
        raise NotFoundError(f"image {image_id} has no current embedding; run compute_features(embeddings=...)")
    q = X[pos[0]]
    active = np.isin(ids, cat.images.active_ids())
    active[pos[0]] = False
    cand = np.flatnonzero(active)
    sims = (X @ q)[cand]  # one product over all rows, no copy of X[cand]
    k = max(0, min(int(k), len(cand)))
    best = np.argsort(-sims, kind="stable")[:k]
    top_ids = ids[cand[best]].astype(np.int64)
    paths = {int(r[0]): r[1] for r in cat.db.query(
        f"SELECT id, filepath FROM images WHERE id IN ({','.join('?' * len(top_ids))})", top_ids.tolist())}
    return pd.DataFrame({
        "image_id": top_ids,
        "similarity": sims[best].astype(np.float32),
        "filepath": [paths.get(int(i)) for i in top_ids],
    })


# ---------------------------------------------------------------------------------------------- map
def pca_2d(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project rows of ``X`` (N, D) on their first two principal components (:func:`imagerank._util.pca.pca`).

    Returns:
        ((N, 2) float32 coordinates, (2,) explained-variance ratios). Sign convention: each component's
        largest-magnitude loading is positive (deterministic output). Fewer than 2 rows or columns give zeros.
    """
    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    if n < 2 or X.ndim != 2 or X.shape[1] == 0:
        return np.zeros((n, 2), np.float32), np.zeros(2)
    Y, ratio = pca(X, 2)
    if Y.shape[1] < 2:
        Y = np.concatenate([Y, np.zeros((n, 2 - Y.shape[1]))], axis=1)
    return Y.astype(np.float32), np.pad(ratio, (0, 2 - len(ratio)))


def feature_map(col: CatalogLike, method: str = "pca", *, source: str = "auto") -> pd.DataFrame:
    """A 2-D map of the active images for plots.

    Args:
        method: ``"pca"`` (the only one; see the module docstring on UMAP).
        source: ``"auto"`` (the newest embeddings, else hashes), ``"hashes"`` (192 hash bits as ±1), or an
            embedding set name ``"<model>__<pretrained>"``.

    Returns:
        DataFrame ``image_id``, ``x``, ``y`` (float32); ``df.attrs`` holds ``source``, ``method`` and
        ``explained_variance_ratio``.

    Raises:
        FeatureError: nothing to map (no hashes or embeddings computed), unknown method.
    """
    cat = as_catalog(col)
    import pandas as pd

    if method != "pca":
        raise FeatureError(f"feature_map: method: expected 'pca', got {method!r}")
    if source == "auto":
        source = "embeddings" if embedding_sets(cat) else "hashes"
    if source == "hashes":
        df = _hashes(cat)
        if df.empty:
            raise FeatureError("feature_map: no hashes computed yet; run Collection.compute_features(hashes=True)")
        ids = df["image_id"].to_numpy(np.int64)
        X = np.concatenate([hash_bits(df[c].to_numpy(np.int64)) for c in HASH_COLUMNS], axis=1).astype(np.float32)
        X = X * 2.0 - 1.0
        label = "hashes"
    else:
        ids, X = embedding_matrix(cat, None if source == "embeddings" else source, active_only=True)
        label = _embedding_name(cat, None if source == "embeddings" else source)
    Y, ratio = pca_2d(X)
    out = pd.DataFrame({"image_id": ids, "x": Y[:, 0], "y": Y[:, 1]})
    out.attrs.update(source=label, method=method, explained_variance_ratio=[float(r) for r in ratio])
    return out
