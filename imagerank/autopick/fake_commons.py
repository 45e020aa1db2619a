"""A local stand-in for the Wikimedia Commons API on 127.0.0.1 (aiohttp, in a background thread), for tests, the
notebook and the benchmark: nothing here reaches the internet.

It answers ``action=query&generator=search&prop=imageinfo`` in the real response shape (``query.pages`` keyed by
page id with ``index``, ``imageinfo`` with ``thumburl``/``thumbwidth``/``url``/``descriptionurl``/``size``/``mime``/
``extmetadata``, ``continue`` with ``gsroffset`` when more results exist), serves thumbnails at the next standard
width at or above the one asked (as Commons does) and originals, and misbehaves on request: a subject's
``fault`` makes the first answers ``429`` with ``Retry-After``, a ``maxlag`` error (``MediaWiki-API-Error: maxlag``),
``503``, a dropped connection, or makes a file's original HTML, a thumbnail corrupt, or an image a decompression
bomb (a PNG header declaring 40000 x 40000 pixels). Every request is logged (:attr:`FakeCommons.log`).
"""

from __future__ import annotations

import asyncio
import io
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

__all__ = ["FAULTS", "FakeCommons", "FakeFile", "fake_catalogue", "render"]

FAULTS: tuple[str, ...] = ("429", "maxlag", "503", "drop")
_WIDTHS = (20, 40, 60, 120, 250, 330, 500, 960, 1280, 1920, 3840)


@dataclass
class FakeFile:
    """One fake Commons file: ``title`` (``File:...``), ``kind`` (``good`` colourful and sharp, ``bad`` dark and
    blurred, ``html`` original served as HTML, ``corrupt`` thumbnail truncated, ``bomb`` a PNG declaring 40000 x
    40000 pixels), pixel size, licence, author (HTML markup, as Commons' ``Artist``), seed."""

    title: str
    kind: str = "good"
    width: int = 1600
    height: int = 1200
    licence: str = "CC BY-SA 4.0"
    author: str = '<a href="//commons.wikimedia.org/wiki/User:Example">Example</a>'
    seed: int = 0


@dataclass
class _Subject:
    files: list[FakeFile]
    faults: list[str] = field(default_factory=list)


def render(kind: str, width: int, height: int, seed: int) -> Image.Image:
    """The picture of a fake file: ``good`` = saturated colour blocks and sharp edges, ``bad`` = dark, grey and
    blurred (a visual difference a CLIP embedding carries)."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (width, height), tuple(int(v) for v in rng.integers(40, 220, 3)))
    d = ImageDraw.Draw(im)
    for _ in range(12):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = x0 + int(rng.integers(width // 10, width // 2)), y0 + int(rng.integers(height // 10, height // 2))
        d.rectangle((x0, y0, x1, y1), fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    if kind == "bad":
        im = im.convert("L").point(lambda v: v // 5).convert("RGB").filter(ImageFilter.GaussianBlur(8))
    return im


def _bomb_png(width: int = 40000, height: int = 40000) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + tag + data + zlib.crc32(tag + data).to_bytes(4, "big")

    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND",
                                                                                                          b"")


def fake_catalogue(n_subjects: int = 60, *, seed: int = 0, per_subject: int = 6) -> dict[str, list[FakeFile]]:
    """``n_subjects`` subjects named ``Subject 000`` ... : most have a few good and some bad files; every 6th has
    only bad files, every 10th none, every 7th has a non-free licence on its best file."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[FakeFile]] = {}
    for i in range(n_subjects):
        name = f"Subject {i:03d}"
        if i % 10 == 9:
            out[name] = []
            continue
        files = []
        for j in range(per_subject):
            kind = "bad" if (i % 6 == 5 or j % 2 == 1) else "good"
            w, h = int(rng.integers(900, 1600)), int(rng.integers(700, 1200))
            lic = "CC BY-NC 2.0" if (i % 7 == 3 and j == 0) else ("CC0" if j % 3 == 2 else "CC BY-SA 4.0")
            files.append(FakeFile(f"File:{name} view {j}.jpg", kind, w, h, lic, seed=seed * 100_000 + i * 100 + j))
        out[name] = files
    return out


class FakeCommons:
    """The fake server. Use as a context manager or ``start()`` / ``stop()``; :attr:`api` is the endpoint.

    Args:
        catalogue: subject name -> files (see :func:`fake_catalogue`).
        faults: subject name -> faults answered to its first searches, in order (:data:`FAULTS`).
        retry_after: the ``Retry-After`` seconds sent with 429 and maxlag answers.
        max_per_page: at most this many results per answer whatever ``gsrlimit`` asks (forces continuation).

    Attributes:
        log: ``(kind, what)`` per request: ``("api", search)``, ``("thumb", name)``, ``("orig", name)``.
        params: the query parameters of every API request; offsets: the ``gsroffset`` of each search answered.
    """

    def __init__(self, catalogue: dict[str, list[FakeFile]], *, faults: dict[str, list[str]] | None = None,
                 retry_after: int = 1, max_per_page: int = 50) -> None:
        self.subjects = {k.lower(): _Subject(list(v), list((faults or {}).get(k, []))) for k, v in
                         catalogue.items()}
        self.by_title = {f.title: f for s in self.subjects.values() for f in s.files}
        self.retry_after = int(retry_after)
        self.log: list[tuple[str, str]] = []
        self.params: list[dict[str, str]] = []
        self.offsets: list[int] = []
        self.max_per_page = int(max_per_page)
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self._bytes: dict[tuple[str, int], bytes] = {}

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/w/api.php"

    def _image(self, f: FakeFile, width: int | None) -> bytes:
        key = (f.title, width or 0)
        if key not in self._bytes:
            if f.kind == "bomb":
                self._bytes[key] = _bomb_png()
            else:
                im = render(f.kind, f.width, f.height, f.seed)
                if width:
                    im.thumbnail((width, width * 4), Image.Resampling.BILINEAR)
                buf = io.BytesIO()
                im.save(buf, "JPEG", quality=85)
                data = buf.getvalue()
                if f.kind == "corrupt" and width:
                    data = data[: len(data) // 3]
                self._bytes[key] = data
        return self._bytes[key]

    def prerender(self, width: int = 330) -> None:
        """Render and encode every file's original and its thumbnail at the standard width served for ``width``
        now, so that timings of a client measure the client, not this server drawing pictures."""
        served = next((w for w in _WIDTHS if w >= width), _WIDTHS[-1])
        for f in self.by_title.values():
            self._image(f, None)
            self._image(f, served)

    def _info(self, f: FakeFile, width: int) -> dict[str, Any]:
        served = next((w for w in _WIDTHS if w >= width), _WIDTHS[-1])
        th = round(f.height * served / f.width)
        base = f"http://127.0.0.1:{self.port}"
        name = f.title.split(":", 1)[1].replace(" ", "_")
        return {
            "thumburl": f"{base}/thumb/{served}px/{name}", "thumbwidth": served, "thumbheight": th,
            "responsiveUrls": {}, "url": f"{base}/orig/{name}", "descriptionurl": f"{base}/wiki/File:{name}",
            "descriptionshorturl": f"{base}/w/index.php?curid=1", "size": f.width * f.height // 3,
            "width": f.width, "height": f.height, "mime": "image/png" if f.kind == "bomb" else "image/jpeg",
            "extmetadata": {
                "LicenseShortName": {"value": f.licence, "source": "commons-desc-page", "hidden": ""},
                "LicenseUrl": {"value": "https://creativecommons.org/licenses/by-sa/4.0",
                               "source": "commons-desc-page", "hidden": ""},
                "Artist": {"value": f.author, "source": "commons-desc-page"},
                "AttributionRequired": {"value": "true", "source": "commons-desc-page", "hidden": ""},
            },
        }

    async def _api(self, request: Any) -> Any:
        from aiohttp import web

        q = request.query
        self.log.append(("api", q.get("gsrsearch", "")))
        self.params.append(dict(q))
        subj = self.subjects.get(q.get("gsrsearch", "").strip().lower())
        if subj is not None and subj.faults:
            fault = subj.faults.pop(0)
            if fault == "429":
                return web.Response(status=429, text="Too many requests",
                                    headers={"Retry-After": str(self.retry_after)})
            if fault == "maxlag":
                return web.json_response(
                    {"error": {"code": "maxlag", "info": "Waiting for a database server: 7 seconds lagged.",
                               "host": "db1", "lag": 7}},
                    headers={"MediaWiki-API-Error": "maxlag", "Retry-After": str(self.retry_after),
                             "X-Database-Lag": "7"})
            if fault == "503":
                return web.Response(status=503, text="Service Unavailable")
            if fault == "drop":
                if request.transport is not None:
                    request.transport.close()
                return web.Response(status=500)
        if q.get("action") != "query" or q.get("generator") != "search" or q.get("gsrnamespace") != "6":
            return web.json_response({"error": {"code": "badvalue", "info": "unsupported request"}},
                                     headers={"MediaWiki-API-Error": "badvalue"})
        files = subj.files if subj is not None else []
        offset, limit = int(q.get("gsroffset", 0)), min(int(q.get("gsrlimit", 10)), self.max_per_page)
        self.offsets.append(offset)
        page = files[offset: offset + limit]
        width = int(q.get("iiurlwidth", 330))
        pages = {}
        for k, f in enumerate(page):
            pid = 10_000 + zlib.crc32(f.title.encode()) % 900_000
            pages[str(pid)] = {"pageid": pid, "ns": 6, "title": f.title, "index": offset + k + 1,
                               "imagerepository": "local", "imageinfo": [self._info(f, width)]}
        body: dict[str, Any] = {"batchcomplete": ""}
        if offset + limit < len(files):
            body["continue"] = {"gsroffset": offset + limit, "continue": "gsroffset||"}
        if pages:
            body["query"] = {"pages": pages}
        return web.json_response(body)

    async def _file(self, request: Any) -> Any:
        from aiohttp import web

        name = request.match_info["name"].replace("_", " ")
        width = int(request.match_info.get("w", 0) or 0)
        self.log.append(("thumb" if width else "orig", name))
        f = self.by_title.get(f"File:{name}")
        if f is None:
            return web.Response(status=404, text="not found")
        if f.kind == "html" and not width:
            return web.Response(text="<!DOCTYPE html><html><body>Error</body></html>", content_type="text/html")
        ctype = "image/png" if f.kind == "bomb" else "image/jpeg"
        return web.Response(body=self._image(f, width or None), content_type=ctype)

    def start(self) -> FakeCommons:
        """Start serving on 127.0.0.1 at a free port (returns when ready)."""
        from aiohttp import web

        ready = threading.Event()

        async def main() -> None:
            app = web.Application()
            app.router.add_get("/w/api.php", self._api)
            app.router.add_get("/thumb/{w}px/{name}", self._file)
            app.router.add_get("/orig/{name}", self._file)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        self._loop = asyncio.new_event_loop()

        def run() -> None:
            loop = self._loop
            if loop is None:  # pragma: no cover - stop() before the thread ran
                return
            asyncio.set_event_loop(loop)
            loop.run_until_complete(main())
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="fake-commons", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the fake Commons server did not start within 10 s")
        return self

    def stop(self) -> None:
        """Stop the server and its thread."""
        if self._loop is None:
            return
        loop = self._loop
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        loop.close()
        self._loop = None

    def __enter__(self) -> FakeCommons:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
