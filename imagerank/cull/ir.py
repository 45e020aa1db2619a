"""The cull's intermediate representation (IR): one record per file, one column per fact, a fixed schema.

Every pass of :func:`imagerank.cull.cull` (scan → preview → features → bursts → near-duplicate clusters →
best-of-burst → buckets → export) reads and fills columns of one table with the schema :data:`IR_SCHEMA`; the
library call returns it as a :class:`pandas.DataFrame` (:func:`empty_ir` / :func:`to_frame` give the pandas dtypes),
``manifest.jsonl`` writes it one record per line, and intents and rerankers built on the cull read it. Rows are
sorted by ``path``; a column that does not apply to a file is null (``<NA>`` / ``NaN`` / ``None``), never a
made-up value.

Columns (arrow type → pandas dtype: meaning):

File
    ``path`` (string → object str): the file's path relative to the input folder, ``/``-separated; the key.
    ``size`` (int64 → Int64): bytes, from ``stat`` at scan time. ``mtime_ns`` (int64 → Int64): modification time,
    nanoseconds since the epoch. ``ext`` (string → object): the lower-case suffix (``.nef``). ``kind`` (string →
    object): ``raw`` (a camera RAW suffix, :data:`RAW_EXTENSIONS`) or ``image``.
    ``status`` (string → object): how far the file got, one of :data:`STATUSES` (``ok``, ``metadata_only`` — no
    usable preview, metadata passes only —, ``corrupt``, ``empty``, ``unreadable``, ``missing``); the reason is in
    ``reasons``.

Capture time
    ``capture_time`` (timestamp[us] → datetime64[us]): the camera's wall-clock time, ``DateTimeOriginal`` +
    ``SubSecTimeOriginal``, else ``DateTimeDigitized`` / IFD0 ``DateTime``, else the file's mtime in UTC.
    ``capture_time_utc`` (timestamp[us, UTC] → datetime64[us, UTC]): the same in UTC, only when the offset is known
    (``OffsetTimeOriginal``, or the mtime). ``utc_offset_min`` (int32 → Int32): minutes east of UTC, when known.
    ``capture_time_source`` (string → object): ``DateTimeOriginal``, ``DateTimeDigitized``, ``DateTime`` or
    ``mtime``. ``subsec`` (bool → boolean): the time has sub-second digits.

Camera and exposure
    ``camera_make``, ``camera_model``, ``camera_serial`` (string → object): the body (``BodySerialNumber`` or a
    maker's serial tag when readable). ``body`` (string → object): ``make|model|serial`` — bursts are per body.
    ``lens_model`` (string → object). ``iso`` (int32 → Int32). ``exposure_time_s`` (float64 → Float64, seconds).
    ``f_number`` (float64 → Float64). ``focal_length_mm`` (float64 → Float64). ``exposure_compensation_ev``
    (float64 → Float64, EV, ``ExposureBiasValue``). ``exposure_mode`` (string → object): ``auto``, ``manual``,
    ``auto_bracket`` (EXIF ``ExposureMode``). ``sequence_kind`` (string → object): what EXIF says the frame
    belongs to, ``exposure_bracket``, ``focus_stack`` or ``panorama`` (frames of one sequence are never
    near-duplicates of each other), else null. ``sequence_info`` (string → object): the tags that said so
    (``ExposureMode=2``, ``BracketMode=AE``...).

Identity and preview
    ``digest`` (string → object): BLAKE2b-128 of the bytes, 32 hex digits (equal = exact duplicates).
    ``exact_duplicate_of`` (string → object): ``path`` of the first file (by path) with the same digest.
    ``preview_source`` (string → object): where the pixels came from, one of :data:`PREVIEW_SOURCES`
    (``decode``: the file itself; ``rawpy``: libraw's embedded thumbnail; ``exiftool``; ``jpeg_scan``: the largest
    valid embedded JPEG found by its SOI/EOI markers), null when none. ``width``, ``height`` (int32 → Int32):
    the preview's full size, pixels, upright.

Features (on the preview reduced to 512 px, :mod:`imagerank.features.quality` / :mod:`~imagerank.features.hashing`)
    ``laplacian_var``, ``noise_sigma``, ``clip_shadows``, ``clip_highlights``, ``luma_mean`` (float64 → Float64):
    as in the ``quality`` sidecar. ``dhash``, ``phash`` (int64 → Int64): signed int64 hashes. ``saliency``
    (float64 → Float64, 0–1): the saliency proxy (:func:`imagerank.cull.features.sharpest_region`).
    ``sharp_x``, ``sharp_y``, ``sharp_w``, ``sharp_h`` (float64 → Float64, 0–1 of width/height): the sharpest
    region, for a 100 % zoom. ``faces`` (int32 → Int32): faces found (null when the check is off).
    ``eyes_closed`` (bool → boolean): a face was found and no open eye in any face.

Passes
    ``burst_id`` (int64 → Int64): 0-based id of the burst (frames of one body whose capture-time gaps are at most
    ``burst_gap_s``), in capture order; null for files without a preview or time. ``burst_size`` (int32 → Int32).
    ``cluster_id`` (int64 → Int64): near-duplicate cluster (dHash within ``cull_dedupe_hamming`` bits, within
    bursts first, then across), numbered by its first member. ``cluster_size`` (int32 → Int32).
    ``is_pick`` (bool → boolean): the frame kept for its cluster (best-of-burst).
    ``score`` (float64 → Float64): the technical score, the sum of the parts; ``score_sharpness``,
    ``score_clip``, ``score_noise``, ``score_exposure``, ``score_unique``, ``score_saliency``, ``score_eyes``
    (float64 → Float64): each weighted part (penalties negative); weights in ``summary.json``.
    ``learned_score`` (float64 → Float64): a learned reranker's score when one ran, else null.
    ``decided_by`` (string → object): which part decided the pick: ``tech`` (the score) or ``learned``.
    ``bucket`` (string → object): ``best``, ``good``, ``maybe`` or ``trash`` (:data:`BUCKETS`); null when the
    file could not be read at all (``reasons`` says why).
    ``reasons`` (list<struct> → object, a list of dicts): every decision as a machine-readable record with the
    keys of :data:`REASON_FIELDS`: ``code`` (one of :data:`REASON_CODES`), ``stage`` (the pass), ``message``
    (a sentence), ``value`` and ``threshold`` (float or null), ``ref`` (a related ``path`` or null).

Export
    ``export_path`` (string → object): where the file was placed under the output folder (``best/a/b.nef``).
    ``export_method`` (string → object): how the exported file is there — ``hardlink``, ``symlink``, ``copy``,
    ``copy_fallback`` (a hard link across devices, copied instead) — the same whether this run or an earlier one
    placed it; ``failed`` when it could not be placed; null when not exported.
    ``xmp_path`` (string → object): the XMP sidecar written or merged, relative to the input folder.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd
import pyarrow as pa

__all__ = [
    "BUCKETS",
    "IR_COLUMNS",
    "IR_SCHEMA",
    "PREVIEW_SOURCES",
    "RAW_EXTENSIONS",
    "REASON_CODES",
    "REASON_FIELDS",
    "REASON_TYPE",
    "SEQUENCE_KINDS",
    "STATUSES",
    "empty_ir",
    "reason",
    "to_frame",
]

#: Camera RAW suffixes (lower case) whose pixels come from an embedded preview.
RAW_EXTENSIONS: frozenset[str] = frozenset({
    ".3fr", ".ari", ".arw", ".cr2", ".cr3", ".crw", ".dcr", ".dng", ".erf", ".fff", ".iiq", ".k25", ".kdc",
    ".mef", ".mos", ".mrw", ".nef", ".nrw", ".orf", ".pef", ".raf", ".raw", ".rw2", ".rwl", ".sr2", ".srf",
    ".srw", ".x3f",
})

#: The file statuses, in the order a file goes through them.
STATUSES: tuple[str, ...] = ("ok", "metadata_only", "corrupt", "empty", "unreadable", "missing")
#: The buckets, best first.
BUCKETS: tuple[str, ...] = ("best", "good", "maybe", "trash")
#: Where a preview's pixels came from.
PREVIEW_SOURCES: tuple[str, ...] = ("decode", "rawpy", "exiftool", "jpeg_scan")
#: What EXIF can say a frame belongs to (never near-duplicates of each other).
SEQUENCE_KINDS: tuple[str, ...] = ("exposure_bracket", "focus_stack", "panorama")

#: Reason code -> meaning. Every bucket decision and every status other than ``ok`` carries at least one.
REASON_CODES: dict[str, str] = {
    "missing": "the file disappeared between the scan and its read",
    "unreadable": "the file cannot be read (permission, I/O error)",
    "empty": "the file has zero bytes",
    "corrupt": "no decoder could read the file's pixels (truncated, damaged or not an image)",
    "no_preview": "a RAW file without a usable embedded preview: metadata only, the preview passes were skipped",
    "preview_fallback": "the preview came from a fallback (exiftool or the embedded-JPEG scan)",
    "exif_problem": "some EXIF fields could not be parsed (listed in the message); the others were kept",
    "time_from_mtime": "no EXIF capture time: the file's mtime was used",
    "exact_duplicate": "byte-identical to an earlier file (ref)",
    "blurry": "sharpness (Laplacian variance) under cull_min_sharpness",
    "clipped": "clipped fraction over cull_max_clip",
    "near_duplicate": "a near-duplicate (dHash distance, value) of the cluster's pick (ref), which scored higher",
    "sequence_member": "part of an exposure bracket, focus stack or panorama: kept out of duplicate clusters",
    "burst_pick": "the highest score of its near-duplicate cluster",
    "eyes_closed": "a face with no open eye",
    "top_score": "score in the top cull_best_fraction of the kept frames",
    "kept": "kept: not a duplicate, not trashed, below the best fraction",
    "unjudged": "no preview to judge: bucket maybe for a person to look at",
    "learned_pick": "a learned reranker changed the pick",
    "companion": "the RAW and the JPEG of one shot (same name, same folder): this file follows its companion (ref)",
    "copied_across_devices": "a hard link was impossible (another device or file system): the file was copied",
    "export_failed": "the file could not be placed under the output folder (the message says why)",
    "xmp_failed": "the XMP sidecar could not be written or merged (the message says why); nothing was replaced",
}

#: The keys of one reason record (the struct fields of the ``reasons`` column).
REASON_FIELDS: tuple[str, ...] = ("code", "stage", "message", "value", "threshold", "ref")
REASON_TYPE = pa.list_(pa.struct([
    pa.field("code", pa.string()),
    pa.field("stage", pa.string()),
    pa.field("message", pa.string()),
    pa.field("value", pa.float64()),
    pa.field("threshold", pa.float64()),
    pa.field("ref", pa.string()),
]))

_STR, _I64, _I32, _F64, _BOOL = pa.string(), pa.int64(), pa.int32(), pa.float64(), pa.bool_()
_TS, _TSU = pa.timestamp("us"), pa.timestamp("us", tz="UTC")

#: (column, arrow type), in table order; the module docstring gives each column's meaning.
IR_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("path", _STR), ("size", _I64), ("mtime_ns", _I64), ("ext", _STR), ("kind", _STR), ("status", _STR),
    ("capture_time", _TS), ("capture_time_utc", _TSU), ("utc_offset_min", _I32), ("capture_time_source", _STR),
    ("subsec", _BOOL),
    ("camera_make", _STR), ("camera_model", _STR), ("camera_serial", _STR), ("body", _STR), ("lens_model", _STR),
    ("iso", _I32), ("exposure_time_s", _F64), ("f_number", _F64), ("focal_length_mm", _F64),
    ("exposure_compensation_ev", _F64), ("exposure_mode", _STR), ("sequence_kind", _STR), ("sequence_info", _STR),
    ("digest", _STR), ("exact_duplicate_of", _STR), ("preview_source", _STR), ("width", _I32), ("height", _I32),
    ("laplacian_var", _F64), ("noise_sigma", _F64), ("clip_shadows", _F64), ("clip_highlights", _F64),
    ("luma_mean", _F64), ("dhash", _I64), ("phash", _I64), ("saliency", _F64),
    ("sharp_x", _F64), ("sharp_y", _F64), ("sharp_w", _F64), ("sharp_h", _F64), ("faces", _I32),
    ("eyes_closed", _BOOL),
    ("burst_id", _I64), ("burst_size", _I32), ("cluster_id", _I64), ("cluster_size", _I32), ("is_pick", _BOOL),
    ("score", _F64), ("score_sharpness", _F64), ("score_clip", _F64), ("score_noise", _F64),
    ("score_exposure", _F64), ("score_unique", _F64), ("score_saliency", _F64), ("score_eyes", _F64),
    ("learned_score", _F64), ("decided_by", _STR), ("bucket", _STR), ("reasons", REASON_TYPE),
    ("export_path", _STR), ("export_method", _STR), ("xmp_path", _STR),
)

#: The IR as an arrow schema (``pyarrow.Table.from_pandas(df, schema=IR_SCHEMA)`` round-trips a returned frame).
IR_SCHEMA = pa.schema([pa.field(n, t) for n, t in IR_COLUMNS], metadata={"imagerank.cull.ir": "1"})

_PANDAS: dict[pa.DataType, str] = {
    _I64: "Int64", _I32: "Int32", _F64: "Float64", _BOOL: "boolean", _TS: "datetime64[us]",
    _TSU: "datetime64[us, UTC]",
}


def _dtype(t: pa.DataType) -> str:
    return _PANDAS.get(t, "object")


def empty_ir() -> pd.DataFrame:
    """An IR table with no rows: every column of :data:`IR_COLUMNS` with its pandas dtype (see the module
    docstring: nullable ``Int64``/``Int32``/``Float64``/``boolean``, ``datetime64[us]`` (UTC-aware for
    ``capture_time_utc``), ``object`` for strings and the reasons lists)."""
    return pd.DataFrame({n: pd.Series([], dtype=_dtype(t)) for n, t in IR_COLUMNS})


def to_frame(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The IR table of ``records`` (dicts keyed by column names; a missing key is null), sorted by ``path``.

    Returns:
        DataFrame with exactly the columns of :data:`IR_COLUMNS`, in order, with the dtypes of :func:`empty_ir`,
        and a fresh ``RangeIndex``.

    Raises:
        InvalidArgumentError: a record has a key that is not an IR column, or no ``path``.
    """
    from ..errors import InvalidArgumentError

    rows = list(records)
    known = {n for n, _ in IR_COLUMNS}
    for r in rows:
        extra = set(r) - known
        if extra:
            raise InvalidArgumentError(f"IR record: expected IR columns, got unknown {sorted(extra)}")
        if not r.get("path"):
            raise InvalidArgumentError(f"IR record: expected a 'path', got {dict(r)!r}"[:300])
    rows.sort(key=lambda r: str(r["path"]))
    if not rows:
        return empty_ir()
    cols: dict[str, pd.Series] = {}
    for n, t in IR_COLUMNS:
        values = [r.get(n) for r in rows]
        dt = _dtype(t)
        if n == "reasons":
            values = [list(v) if v else [] for v in values]
        if dt.startswith("datetime64"):
            cols[n] = pd.Series(pd.to_datetime(values, utc=dt.endswith("UTC]"), format="ISO8601"), dtype=dt)
        else:
            cols[n] = pd.Series(values, dtype=dt)
    return pd.DataFrame(cols)


def reason(code: str, stage: str, message: str, *, value: float | None = None, threshold: float | None = None,
           ref: str | None = None) -> dict[str, Any]:
    """One reason record (the keys of :data:`REASON_FIELDS`).

    Args:
        code: one of :data:`REASON_CODES`. stage: the pass that decided (``scan``, ``preview``, ``bursts``,
            ``clusters``, ``select``, ``export``...). message: one sentence for people. value / threshold: the
            measured number and the setting it was compared with. ref: a related file's ``path``.

    Raises:
        InvalidArgumentError: ``code`` is not a known reason code.
    """
    if code not in REASON_CODES:
        from ..errors import InvalidArgumentError

        raise InvalidArgumentError(f"reason code: expected one of {sorted(REASON_CODES)}, got {code!r}")
    return {"code": code, "stage": stage, "message": message,
            "value": None if value is None else float(value),
            "threshold": None if threshold is None else float(threshold), "ref": ref}
