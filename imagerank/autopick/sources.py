"""Candidate sources for auto-pick: what a candidate is, the source protocol, a local-folder source, and decoding
downloaded bytes behind the decompression-bomb guard.

A source answers :meth:`Source.candidates` (at most ``limit`` :class:`Candidate` records for a subject name),
:meth:`Source.thumbnail` (the candidate's small image, in memory) and :meth:`Source.original` (the full-size
bytes of the winner). :class:`~imagerank.autopick.commons.CommonsSource` searches Wikimedia Commons;
:class:`FolderSource` reads one folder per subject, for offline use.
"""

from __future__ import annotations

import io
import os
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from PIL import Image, ImageOps

from ..errors import InvalidArgumentError
from ..media.decode import check_pixels, pillow_limit_lifted, to_rgb
from .http import SourceError

__all__ = ["IMAGE_EXTENSIONS", "Candidate", "FolderSource", "Source", "decode_bytes", "folder_name"]

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp")


@dataclass
class Candidate:
    """One candidate image for a subject, with its provenance.

    Attributes:
        title: the file's name at the source (``File:...`` on Commons, the file name in a folder).
        source: ``commons`` or ``folder``.
        position: 0-based rank in the source's answer (Commons' search ``index`` - 1).
        source_url: the full-size file (a URL, or a local path).
        thumb_url: the thumbnail actually served (Commons: at a standard width), or the local path.
        page_url: the file's description page (Commons), or None.
        licence, licence_url, author: from the file's metadata (Commons ``extmetadata``: LicenseShortName,
            LicenseUrl, Artist with markup removed); a folder source reads ``<image>.txt`` / folder defaults.
        attribution: the credit line: "<title> by <author>, <licence> (<licence url>), via <where>".
        width, height: full-size pixels when known; mime: the media type.
    """

    title: str
    source: str
    position: int
    source_url: str
    thumb_url: str
    page_url: str | None = None
    licence: str | None = None
    licence_url: str | None = None
    author: str | None = None
    attribution: str | None = None
    width: int | None = None
    height: int | None = None
    mime: str | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def record(self) -> dict[str, object]:
        """The columns of the ``autopick_candidates`` table this candidate fills."""
        return {k: getattr(self, k) for k in ("position", "title", "source", "source_url", "thumb_url", "page_url",
                                              "licence", "licence_url", "author", "attribution", "mime", "width",
                                              "height")}


class Source(Protocol):
    """What :func:`imagerank.autopick.auto_pick` needs from a candidate source."""

    name: str

    def candidates(self, subject: str, limit: int) -> list[Candidate]:
        """At most ``limit`` candidates for ``subject`` (by name only), in the source's order; [] when none.

        Raises:
            SourceError: the source could not answer.
        """
        ...

    def thumbnail(self, candidate: Candidate) -> bytes:
        """The candidate's thumbnail bytes. Raises SourceError."""
        ...

    def original(self, candidate: Candidate) -> bytes:
        """The candidate's full-size bytes. Raises SourceError."""
        ...


def decode_bytes(data: bytes, *, max_pixels: int, what: str = "image", target: int | None = None) -> Image.Image:
    """Decode image bytes: header checked against ``max_pixels`` before any pixel is decoded
    (decompression-bomb guard), first frame, EXIF orientation applied, 8-bit RGB.

    Args:
        target: when given, JPEGs decode at the 1/2-1/8 scale nearest above this longest side (``draft``).

    Raises:
        SourceError: not an image (HTML, text, truncated or corrupt bytes) or too many pixels; the message names
            ``what`` and the reason.
    """
    if not data:
        raise SourceError(f"{what}: empty response")
    head = data[:256].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"{")):
        raise SourceError(f"{what}: the server sent {'HTML' if b'html' in head else 'text'}, not an image")
    try:
        with pillow_limit_lifted(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
            with Image.open(io.BytesIO(data)) as im:
                check_pixels(im.width, im.height, max_pixels)
                if target and im.format == "JPEG":
                    k = target / max(im.width, im.height)
                    if k < 1:
                        im.draft("RGB", (max(1, int(im.width * k) + 1), max(1, int(im.height * k) + 1)))
                im.load()
                out = ImageOps.exif_transpose(im) or im.copy()
    except Image.DecompressionBombError as e:
        raise SourceError(f"{what}: refused, {e}") from e
    except (OSError, ValueError, SyntaxError, Image.UnidentifiedImageError) as e:
        raise SourceError(f"{what}: not a decodable image ({type(e).__name__}: {str(e)[:160]})") from e
    if out.width * out.height == 0:
        raise SourceError(f"{what}: image has zero width or height")
    return to_rgb(out)


def folder_name(subject: str) -> str:
    """The folder a subject's images live in under a :class:`FolderSource` root: the name itself when it is a
    safe folder name, else a slug (NFKC, characters outside letters, digits, space, ``._-`` replaced by ``_``)."""
    s = unicodedata.normalize("NFKC", subject).strip()
    s = re.sub(r"[^\w .-]", "_", s).strip(". ") or "_"
    return s[:200]


class FolderSource:
    """One folder per subject under ``root`` (named :func:`folder_name` of the subject), its image files the
    candidates in name order. Provenance: ``<image>.txt`` beside an image may hold ``licence:``, ``licence_url:``,
    ``author:`` and ``source_url:`` lines; otherwise licence and author are ``None`` (unknown).

    Args:
        root: the folder of subject folders.

    Raises:
        InvalidArgumentError: ``root`` is not a folder.
    """

    name = "folder"

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise InvalidArgumentError(f"folder source: expected a folder of subject folders, got {root}")

    def _meta(self, path: Path) -> dict[str, str]:
        side = path.with_name(path.name + ".txt")
        out: dict[str, str] = {}
        if side.is_file():
            for line in side.read_text(encoding="utf-8", errors="replace").splitlines():
                key, sep, value = line.partition(":")
                if sep and key.strip().lower() in ("licence", "license", "licence_url", "author", "source_url"):
                    out[key.strip().lower().replace("license", "licence")] = value.strip()
        return out

    def candidates(self, subject: str, limit: int) -> list[Candidate]:
        d = self.root / folder_name(subject)
        if not d.resolve().is_relative_to(self.root) or not d.is_dir():
            return []
        files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)[:limit]
        out = []
        for i, p in enumerate(files):
            m = self._meta(p)
            lic, author = m.get("licence"), m.get("author")
            credit = f"{p.name}" + (f" by {author}" if author else "") + (f", {lic}" if lic else "")
            out.append(Candidate(title=p.name, source=self.name, position=i, source_url=m.get("source_url", str(p)),
                                 thumb_url=str(p), licence=lic, licence_url=m.get("licence_url"), author=author,
                                 attribution=credit, extra={"path": str(p)}))
        return out

    def _read(self, c: Candidate) -> bytes:
        try:
            return Path(c.extra.get("path", c.thumb_url)).read_bytes()
        except OSError as e:
            raise SourceError(f"{c.title}: cannot read ({e.strerror or e})") from e

    def thumbnail(self, candidate: Candidate) -> bytes:
        return self._read(candidate)

    def original(self, candidate: Candidate) -> bytes:
        return self._read(candidate)
