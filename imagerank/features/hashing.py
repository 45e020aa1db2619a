"""Perceptual hashes (imagehash pHash, dHash, wHash) as 64-bit integers, and an exact-duplicate file digest.

Integer convention (one for every hash column in the ``hashes`` sidecar): the 64 hash bits in imagehash's own
order (row-major over its 8x8 bit array, first bit most significant, as in ``str(imagehash.phash(im))``) read as
a **signed** two's-complement ``int64``. Signed because parquet, pandas, polars and duckdb all have a native
int64 while unsigned 64-bit columns are second-class in some of them. Hamming distances do not care about the
sign (XOR works on the bit pattern). The hashes are computed on the pass's grey feature image box-reduced to
about 128 px (see :func:`hash_image`). To get imagehash's hex string back use :func:`int_to_hex` (or
``format(v & (2**64 - 1), "016x")``), and ``imagehash.hex_to_hash(int_to_hex(v))`` gives the ``ImageHash``.

Sources: pHash = DCT of a 32x32 grey image, sign of the 8x8 low frequencies against their median (Zauner 2010,
"Implementation and benchmarking of perceptual image hash functions"); dHash = sign of horizontal gradients of a
9x8 grey image (Krawetz 2013, "Kind of like that"); wHash = Haar wavelet LL band against its median
(imagehash, after the Avito duplicate-ads Kaggle solution). wHash is computed at ``image_scale=64`` so its value
does not depend on the decoded image's size and tiny images (smaller than the hash) still hash.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from PIL import Image

from ..errors import InvalidArgumentError
from .spec import FeatureContext, FeatureSpec, keyed_schema

if TYPE_CHECKING:
    from ..media import DecodeJob

__all__ = [
    "DIGEST_BITS",
    "HASHES",
    "HASH_COLUMNS",
    "HASH_SOURCE",
    "WHASH_SCALE",
    "file_digest",
    "hamming",
    "hash_bits",
    "hash_image",
    "hashes_extractor",
    "int_to_hex",
    "to_int64",
]

HASH_COLUMNS: tuple[str, ...] = ("phash", "dhash", "whash")
WHASH_SCALE = 64
HASH_SOURCE = 128
DIGEST_BITS = 128
_CHUNK = 1 << 20


def to_int64(bits: np.ndarray) -> int:
    """The signed int64 of a hash's bit array (imagehash order, first bit most significant).

    Args:
        bits: (8, 8) or (64,) bool array (``ImageHash.hash``).

    Raises:
        InvalidArgumentError: not 64 bits (a ValueError).
    """
    flat = np.asarray(bits, dtype=bool).ravel()
    if flat.size != 64:
        raise InvalidArgumentError(f"bits: expected 64 hash bits, got {flat.size}")
    return int.from_bytes(np.packbits(flat).tobytes(), "big", signed=True)


def int_to_hex(value: int) -> str:
    """imagehash's 16-digit hex string of a stored (signed int64) hash."""
    return format(int(value) & 0xFFFFFFFFFFFFFFFF, "016x")


def hash_bits(values: Any) -> np.ndarray:
    """(N, 64) uint8 0/1 bits of stored int64 hashes (first bit = most significant), for maps and models."""
    u = np.asarray(values, dtype=np.int64).astype(">i8").view(np.uint8).reshape(-1, 8)
    return np.unpackbits(u, axis=1)


def hamming(a: Any, b: Any) -> np.ndarray:
    """Hamming distance in bits (0–64) between stored int64 hashes; broadcasts like numpy (uint8 result)."""
    x = np.bitwise_xor(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)).view(np.uint64)
    return popcount64(x)


def popcount64(x: np.ndarray) -> np.ndarray:
    """Set bits per element of a uint64 array (uint8); ``np.bitwise_count`` where numpy has it (>= 2.0)."""
    x = np.asarray(x, dtype=np.uint64)
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.uint8, copy=False)
    bytes_ = x[..., None].view(np.uint8)  # pragma: no cover - numpy < 2.0
    return _POP8[bytes_].sum(axis=-1, dtype=np.uint8)  # pragma: no cover


_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def hash_image(im: Image.Image, kinds: tuple[str, ...] = HASH_COLUMNS) -> dict[str, int]:
    """pHash, dHash and wHash of ``im`` (any mode, any size >= 1x1) as signed int64 (see the module docstring).

    The grey image is first box-reduced by an integer factor (``Image.reduce``) to about :data:`HASH_SOURCE`
    (128) pixels on the longest side when larger; imagehash's own resizes (32x32 for pHash, 9x8 for dHash,
    64x64 for wHash) then start from comparable detail. Cost ~0.8 ms for a 512-px image.

    Args:
        kinds: which of :data:`HASH_COLUMNS` to compute (the cull needs no wHash, the slowest of the three).

    Raises:
        InvalidArgumentError: an unknown kind.
    """
    import imagehash

    unknown = set(kinds) - set(HASH_COLUMNS)
    if unknown:
        raise InvalidArgumentError(f"kinds: expected some of {HASH_COLUMNS}, got {sorted(unknown)}")
    grey = im if im.mode == "L" else im.convert("L")
    k = max(grey.size) // HASH_SOURCE
    if k >= 2:  # box-reduce first: the hashes' own LANCZOS resizes then start from ~128 px (4x cheaper)
        grey = grey.reduce(k)
    out: dict[str, int] = {}
    if "phash" in kinds:
        out["phash"] = to_int64(imagehash.phash(grey).hash)
    if "dhash" in kinds:
        out["dhash"] = to_int64(imagehash.dhash(grey).hash)
    if "whash" in kinds:
        out["whash"] = to_int64(imagehash.whash(grey, image_scale=WHASH_SCALE).hash)
    return out


def file_digest(path: str) -> str:
    """BLAKE2b-128 of the file's bytes as 32 hex digits: equal digests = byte-identical files (exact duplicates).

    Raises:
        OSError: the file cannot be read.
    """
    h = hashlib.blake2b(digest_size=DIGEST_BITS // 8)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def hashes_extractor(rgb: Image.Image, job: DecodeJob) -> dict[str, Any]:
    """The ``hashes`` extractor of the single-decode pass: the three hashes of the feature-size image + digest."""
    out: dict[str, Any] = dict(hash_image(rgb))
    out["digest"] = file_digest(job.path)
    return out


def hashes_metadata(ctx: FeatureContext) -> dict[str, Any]:
    """The ``hashes`` part files' metadata: the integer convention, wHash scale, digest and imagehash version."""
    try:
        import imagehash

        version = imagehash.__version__
    except (ImportError, AttributeError):  # pragma: no cover
        version = "unknown"
    return {
        "hash_convention": "signed int64 of imagehash's 64 bits, first bit most significant (see hashing.py)",
        "whash_image_scale": WHASH_SCALE,
        "digest": "blake2b-128 of the file bytes, hex",
        "imagehash_version": version,
        "feature_size": ctx.feature_size,
    }


#: The ``hashes`` sidecar: phash, dhash, whash (signed int64, see the module docstring) and the file digest.
HASHES = FeatureSpec(
    name="hashes",
    extractor=hashes_extractor,
    schema=keyed_schema([*(pa.field(c, pa.int64()) for c in HASH_COLUMNS), pa.field("digest", pa.string())]),
    metadata=hashes_metadata,
    description="perceptual hashes (pHash, dHash, wHash as int64) and a BLAKE2b-128 file digest",
)
