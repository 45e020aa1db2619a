"""Importing the logs users already have: selection logs (which of N candidates was chosen) and crop logs.

Both read a CSV with a header row (UTF-8, comma-separated; a UTF-8 BOM is fine) and import row by row: a bad row
(missing file, malformed values, a chosen file not among the candidates, a box outside the image ...) is reported
in the :class:`ImportReport` with its line number and reason, recorded in the ``failures`` table, and the rest is
imported (a field over the CSV size limit, a ``decision_ms`` that is not a finite number >= 0 or a voter name over
200 characters rejects its row only). Only an unreadable file or missing required columns raise
:class:`ImportLogError`.

Imports are resumable and idempotent per row: each imported row is recorded (table ``import_rows``) in the
transaction that stores its match or crop, keyed by the row as resolved (its images, choice or box, voter, time)
and its occurrence in the file. Running an import again, after an interruption or on a log that has grown, imports
only the rows not imported yet and counts the others as ``already``. A selection log whose every row was imported
by a finished import is refused as imported before; ``force=True`` imports every row again as new choices.

Paths: absolute, or relative to ``base`` (default: the CSV's folder). A path must already be in the catalog or
lie inside ``base`` or one of the collection's image folders (a log cannot reach elsewhere on disk); an existing
image file not yet in the catalog is added to it (``add_unknown=True``) and its thumbnail built.

Selection log columns (see the README, "Importing logs"):
    ``candidates``: the candidate paths joined by ``|`` — or several columns ``candidate_1``, ``candidate_2`` …
    ``chosen``: the chosen path (or a file name that matches exactly one candidate).
    optional ``voter``, ``decision_ms``.
    Each row becomes one match (source ``import``): the chosen image rank 0, every other candidate tied at rank 1
    (an N-way ranking; a pair becomes an ordinary win).

Crop log columns:
    ``path`` (or ``filepath`` / ``file``); ``x``, ``y``, ``w``, ``h`` (or ``width``, ``height``): the box's top-left
    corner and size; optional ``units`` (``px`` / ``pixels`` or ``norm`` / ``normalised``) and ``aspect``.
    Without a units column (or with it empty), a row whose four numbers all lie in [0, 1] is read as normalised,
    anything else as pixels of the upright image; pass ``units=`` to force one reading for the whole file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..catalog import Catalog, CatalogLike, as_catalog
from ..errors import CropError, ImagerankError, ImportLogError, InvalidArgumentError, NotFoundError
from ..media import ThumbnailCache
from .data import add_crop

__all__ = ["ImportReport", "RowError", "import_crop_log", "import_selection_log"]


@dataclass
class RowError:
    """One rejected row: CSV line number (header = 1), the reason, and the offending value."""

    line: int
    reason: str
    value: str = ""

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" + (f" ({self.value})" if self.value else "")


@dataclass
class ImportReport:
    """What an import did: rows read, imported (matches or crops created), images added to the catalog, errors."""

    kind: str
    path: str
    rows: int = 0
    imported: int = 0
    images_added: int = 0
    errors: list[RowError] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    already: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    def __str__(self) -> str:
        head = (f"{self.kind} import of {self.path}: {self.imported} of {self.rows} rows imported, "
                f"{self.images_added} images added to the catalog, {len(self.errors)} rows rejected"
                + (f", {self.already} rows imported before (skipped)" if self.already else ""))
        return "\n".join([head, *(f"  {e}" for e in self.errors[:50])]
                         + ([f"  ... and {len(self.errors) - 50} more"] if len(self.errors) > 50 else []))


def _read_csv(path: str | os.PathLike[str]
              ) -> tuple[list[str], list[tuple[int, dict[str, Any]]], list[RowError], str]:
    """Header, (line, row) pairs, the rows the CSV reader could not read (a field over ``csv.field_size_limit``
    ...), and the file's SHA-256."""
    p = Path(path)
    if not p.is_file():
        raise ImportLogError(f"csv: no such file {p}")
    rows: list[tuple[int, dict[str, Any]]] = []
    bad: list[RowError] = []
    try:
        digest = hashlib.sha256(p.read_bytes()).hexdigest()
        with open(p, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip().lower() for h in (reader.fieldnames or []) if h is not None]
            if not header:
                raise ImportLogError(f"{p}: empty file or no header row")
            reader.fieldnames = header
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    break
                except csv.Error as e:  # this row only; the reader goes on with the next line
                    # line_num counts the lines of the rows read whole: the bad row starts on the next one
                    bad.append(RowError(reader.line_num + 1, f"unreadable row: {e}"))
                    continue
                rows.append((reader.line_num, row))
    except UnicodeDecodeError as e:
        raise ImportLogError(f"{p}: not UTF-8 text ({e})") from e
    except csv.Error as e:
        raise ImportLogError(f"{p}: not a readable CSV file ({e})") from e
    except OSError as e:
        raise ImportLogError(f"{p}: cannot be read ({e})") from e
    return header, rows, bad, digest


class _RowKeys:
    """Which rows of a log were imported before (``import_rows``), and recording newly imported ones."""

    def __init__(self, cat: Catalog, kind: str, digest: str) -> None:
        self.cat, self.kind, self.digest = cat, kind, digest
        self.seen: dict[str, int] = {}

    def key(self, content: list[Any]) -> str:
        """The key of the next row with this content: its SHA-256 and occurrence number in this file."""
        text = json.dumps(content, sort_keys=True, default=str)
        n = self.seen.get(text, 0)
        self.seen[text] = n + 1
        return hashlib.sha256(f"{self.kind}|{text}|{n}".encode()).hexdigest()

    def done(self, key: str) -> bool:
        """Whether a row with ``key`` was imported before."""
        return bool(self.cat.db.query("SELECT 1 FROM import_rows WHERE kind=? AND row_key=? LIMIT 1",
                                      (self.kind, key)))

    def record(self, key: str, line: int, *, match_id: int | None = None, crop_id: int | None = None) -> None:
        """Note the row as imported; call inside the transaction that stores its match or crop."""
        self.cat.db.execute(
            "INSERT INTO import_rows (kind, row_key, file_sha256, line, match_id, crop_id) VALUES (?,?,?,?,?,?)",
            (self.kind, key, self.digest, int(line), match_id, crop_id))


class _Resolver:
    """Maps CSV paths to catalog image ids, adding existing image files inside the allowed folders."""

    def __init__(self, col: CatalogLike, base: Path, add_unknown: bool) -> None:
        cat = as_catalog(col)
        self.cat = cat
        self.base = base.resolve()
        self.roots = [Path(r).resolve() for r in cat.settings.roots]
        self.add_unknown = add_unknown
        images = cat.images.images_df()
        self.by_path = dict(zip(images["filepath"].tolist(), images["id"].astype(int).tolist()))
        self.added: list[int] = []

    def __call__(self, value: str) -> int:
        """Image id for a path value.

        Raises:
            InvalidArgumentError: the reason the path cannot be imported (empty, outside the allowed folders,
                missing, not in the catalog, not an image, not decodable).
        """
        v = (value or "").strip()
        if not v:
            raise InvalidArgumentError("empty path")
        p = Path(v).expanduser()
        if not p.is_absolute():
            p = self.base / p
        absolute = os.path.abspath(p)
        for key in (absolute, str(Path(absolute).resolve())):
            if key in self.by_path:
                return self.by_path[key]
        real = Path(absolute).resolve()
        if not any(real == d or real.is_relative_to(d) for d in [self.base, *self.roots]):
            raise InvalidArgumentError("path lies outside the CSV's folder and the collection's image folders")
        if not real.is_file():
            raise InvalidArgumentError("file does not exist")
        if not self.add_unknown:
            raise InvalidArgumentError(
                "file is not in the catalog (scan its folder first, or import with add_unknown=True)")
        if real.suffix.lower() not in self.cat.settings.extensions:
            raise InvalidArgumentError(f"not an image file extension ({real.suffix or 'none'})")
        st = real.stat()
        key = str(real)
        iid = self.cat.images.add_files([(key, st.st_size, st.st_mtime_ns)])[key]
        ThumbnailCache(self.cat).build([iid], progress=False)
        row = self.cat.images.get(iid)
        self.by_path[key] = iid
        self.added.append(iid)
        if row["status"] != "active":
            reason = row.get("status_reason") or "cannot be decoded"
            raise InvalidArgumentError(f"image is {row['status']}: {reason}")
        return iid


def _record_failures(cat: Catalog, stage: str, path: str, errors: list[RowError]) -> None:
    cat.images.record_failures([(None, path, stage, str(e)[:500]) for e in errors])


def _check_width(row: Mapping[Any, Any]) -> None:
    """Raise :class:`InvalidArgumentError` when a CSV row has more fields than the header (``csv`` keeps them
    under the key None)."""
    extra = row.get(None)
    if extra is not None:
        raise InvalidArgumentError(f"{len(extra)} more fields than the header has")


def _selection_row(row: dict[str, Any], header: list[str], cand_cols: list[str], sep: str, resolve: _Resolver
                   ) -> tuple[list[int], int]:
    """The candidates' image ids of one selection-log row and the position of the chosen one.

    Raises:
        InvalidArgumentError: why the row cannot be imported.
    """
    _check_width(row)
    if "candidates" in header and (row.get("candidates") or "").strip():
        values = [v for v in (row.get("candidates") or "").split(sep) if v.strip()]
    else:
        values = [row[c] for c in cand_cols if (row.get(c) or "").strip()]
    chosen_value = (row.get("chosen") or "").strip()
    if not chosen_value:
        raise InvalidArgumentError("empty 'chosen'")
    if len(values) < 2:
        raise InvalidArgumentError(f"a choice needs at least 2 candidates, got {len(values)}")
    ids = []
    for v in values:
        try:
            ids.append(resolve(v))
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"candidate {v.strip()!r}: {e}") from None
    if len(set(ids)) != len(ids):
        raise InvalidArgumentError("the same image is listed twice among the candidates")
    stripped = [v.strip() for v in values]
    names = [Path(v).name for v in stripped]
    if chosen_value in stripped:
        return ids, stripped.index(chosen_value)
    if names.count(Path(chosen_value).name) == 1 and "/" not in chosen_value and "\\" not in chosen_value:
        return ids, names.index(chosen_value)
    try:
        cid = resolve(chosen_value)
    except InvalidArgumentError as e:
        raise InvalidArgumentError(f"chosen {chosen_value!r}: {e}") from None
    if cid not in ids:
        raise InvalidArgumentError(f"chosen {chosen_value!r} is not among the candidates")
    return ids, ids.index(cid)


def import_selection_log(
    col: CatalogLike,
    csv_path: str | os.PathLike[str],
    *,
    base: str | os.PathLike[str] | None = None,
    add_unknown: bool = True,
    force: bool = False,
    sep: str = "|",
) -> ImportReport:
    """Import a selection log: one row per choice (candidate paths + the chosen one) -> one N-way match.

    Args:
        col: the collection.
        csv_path: the CSV (format in the module docstring and the README).
        base: folder relative paths are resolved against (default: the CSV's folder).
        add_unknown: add existing image files that are not yet in the catalog.
        force: import every row again as new choices (they count twice), even when this exact file (same SHA-256)
            was imported before; without it, rows imported before are skipped (an interrupted import resumes).
        sep: separator of paths inside the ``candidates`` column.

    Returns:
        An :class:`ImportReport`; ``ids`` are the new match ids, ``already`` the rows imported before (skipped).

    Raises:
        ImportLogError: the file is unreadable, lacks ``chosen`` and candidate columns, or a finished import
            imported it before (without ``force``).
    """
    cat = as_catalog(col)
    header, rows, unreadable, digest = _read_csv(csv_path)
    cand_cols = sorted((h for h in header if h.startswith("candidate") and h != "candidates"),
                       key=lambda h: (len(h), h))
    if "chosen" not in header or ("candidates" not in header and not cand_cols):
        raise ImportLogError(
            f"{csv_path}: a selection log needs a 'chosen' column and a 'candidates' column (paths joined by "
            f"{sep!r}) or 'candidate_1', 'candidate_2' ... columns; found {header}"
        )
    note = f"import-selections sha256={digest}"  # stored on the import's session once it has finished
    seen = cat.votes.sessions_with_note(note)
    if seen and not force:
        raise ImportLogError(f"{csv_path} was imported before (session {seen[0]}); pass force=True to import "
                             "it again (its choices would count twice)")
    resolve = _Resolver(cat, Path(base) if base else Path(csv_path).resolve().parent, add_unknown)
    report = ImportReport("selection", str(csv_path), rows=len(rows) + len(unreadable), errors=list(unreadable))
    keys = _RowKeys(cat, "selection", digest)
    # the import gets its own session (the user's continues after) and one live-prior refit at its end
    with cat.votes.session_scope(voter="import", strategy="import", note=f"{note} unfinished") as session, \
            cat.votes.batch():
        for line, row in rows:
            try:
                ids, win = _selection_row(row, header, cand_cols, sep, resolve)
                ranks = [0 if k == win else 1 for k in range(len(ids))]
                dms = (row.get("decision_ms") or "").strip()
                voter = (row.get("voter") or "").strip() or None
                key = keys.key([ids, win, voter, dms])
                if not force and keys.done(key):
                    report.already += 1
                    continue
                with cat.db.atomic():  # the match and its import_rows row together
                    m = cat.votes.record(ids, ranks, kind="win" if len(ids) == 2 else "ranking", source="import",
                                         voter=voter, decision_ms=float(dms) if dms else None)
                    keys.record(key, line, match_id=m.id)
                report.ids.append(m.id)
                report.imported += 1
            except (ValueError, ImagerankError, OSError) as e:
                report.errors.append(RowError(line, str(e)))
        cat.db.execute("UPDATE sessions SET note=? WHERE id=?", (note, session.id))
    report.errors.sort(key=lambda e: e.line)
    report.images_added = len(resolve.added)
    _record_failures(cat, "import-selections", str(csv_path), report.errors)
    return report


def _parse_units(value: str) -> str | None:
    v = (value or "").strip().lower()
    if not v:
        return None
    if v in ("px", "pixel", "pixels"):
        return "pixels"
    if v in ("norm", "normalised", "normalized", "fraction", "relative"):
        return "normalised"
    raise InvalidArgumentError(f"units: expected 'px' or 'norm', got {value!r}")


def import_crop_log(
    col: CatalogLike,
    csv_path: str | os.PathLike[str],
    *,
    base: str | os.PathLike[str] | None = None,
    add_unknown: bool = True,
    units: str | None = None,
    source: str = "user",
    force: bool = False,
) -> ImportReport:
    """Import a crop log: one row per crop (file path and box, pixels or normalised) -> one ``crops`` row.

    Args:
        col: the collection.
        csv_path: the CSV (format in the module docstring and the README).
        base: folder relative paths are resolved against (default: the CSV's folder).
        add_unknown: add existing image files that are not yet in the catalog.
        units: ``"pixels"`` or ``"normalised"`` for every row (overrides detection and the units column).
        source: ``crops.source`` of the imported crops (accepted).
        force: import every row again, even rows imported before (without it they are skipped: an interrupted
            import resumes, a log that has grown adds its new rows).

    Returns:
        An :class:`ImportReport`; ``ids`` are the new crop ids, ``already`` the rows imported before (skipped).

    Raises:
        ImportLogError: the file is unreadable or lacks the path / box columns.
    """
    cat = as_catalog(col)
    header, rows, unreadable, digest = _read_csv(csv_path)
    path_col = next((c for c in ("path", "filepath", "file") if c in header), None)
    wcol = "w" if "w" in header else ("width" if "width" in header else None)
    hcol = "h" if "h" in header else ("height" if "height" in header else None)
    if path_col is None or "x" not in header or "y" not in header or wcol is None or hcol is None:
        raise ImportLogError(f"{csv_path}: a crop log needs columns path, x, y, w, h (or width, height); "
                             f"found {header}")
    forced = _parse_units(units) if units else None
    resolve = _Resolver(cat, Path(base) if base else Path(csv_path).resolve().parent, add_unknown)
    report = ImportReport("crop", str(csv_path), rows=len(rows) + len(unreadable), errors=list(unreadable))
    keys = _RowKeys(cat, "crop", digest)
    for line, row in rows:
        try:
            _check_width(row)
            raw = [row.get(c) for c in ("x", "y", wcol, hcol)]
            try:
                box = [float((v or "").strip()) for v in raw]
            except ValueError:
                raise InvalidArgumentError(f"box values must be numbers, got {raw}") from None
            u = forced or _parse_units(row.get("units") or "")
            if u is None:
                u = "normalised" if all(0.0 <= v <= 1.0 for v in box) else "pixels"
            try:
                iid = resolve(row.get(path_col) or "")
            except InvalidArgumentError as e:
                raise InvalidArgumentError(f"{(row.get(path_col) or '').strip()!r}: {e}") from None
            aspect = (row.get("aspect") or "").strip() or None
            key = keys.key([iid, box, u, aspect, source])
            if not force and keys.done(key):
                report.already += 1
                continue
            with cat.db.atomic():  # the crop and its import_rows row together
                crop_id = add_crop(cat, iid, box, units=u, source=source, aspect=aspect, accepted=True)
                keys.record(key, line, crop_id=crop_id)
            report.ids.append(crop_id)
            report.imported += 1
        except (ValueError, CropError, NotFoundError, OSError) as e:
            report.errors.append(RowError(line, str(e)))
    report.errors.sort(key=lambda e: e.line)
    report.images_added = len(resolve.added)
    _record_failures(cat, "import-crops", str(csv_path), report.errors)
    return report
