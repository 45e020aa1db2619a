"""Wikimedia Commons as a candidate source (the MediaWiki Action API).

One request per subject page: ``action=query&generator=search&gsrnamespace=6&gsrsearch=<subject>`` (the File
namespace, searched by the subject's name only) with ``prop=imageinfo&iiprop=url|size|mime|extmetadata`` and
``iiurlwidth`` at a standard thumbnail width. Answers are read as the API gives them: ``query.pages`` keyed by page
id, ordered by each page's ``index`` (the search rank); ``continue`` is passed back verbatim for the next page,
until enough candidates or no ``continue``. Every request carries ``maxlag`` (the server answers a ``maxlag`` error
while its replicas lag; it is retried after ``Retry-After``) and the User-Agent Wikimedia's policy requires:
``imagerank/<version> (<contact>) httpx/<version>`` (meta.wikimedia.org/wiki/User-Agent_policy). Requests go one
after another through the cache -> retry -> rate-limit stack of :mod:`imagerank.autopick.http`.

Commons serves thumbnails only at standard widths (:data:`STANDARD_WIDTHS`) and answers another width with the
next larger one, so only those are accepted.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable
from typing import Any

import httpx

from ..errors import InvalidArgumentError
from .http import RateBudget, SourceError, build_client
from .sources import Candidate

__all__ = ["COMMONS_API", "STANDARD_WIDTHS", "CommonsSource", "user_agent"]

COMMONS_API = "https://commons.wikimedia.org/w/api.php"
#: Thumbnail widths Wikimedia renders and caches (px); others are answered with the next larger one.
STANDARD_WIDTHS: tuple[int, ...] = (20, 40, 60, 120, 250, 330, 500, 960, 1280, 1920, 3840)
_TAG = re.compile(r"<[^>]+>")
_CONTACT = re.compile(r"(@|https?://|mailto:)")


def user_agent(contact: str) -> str:
    """The policy User-Agent: ``imagerank/<version> (<contact>; auto-pick) httpx/<version>``.

    Raises:
        InvalidArgumentError: ``contact`` is not an e-mail address or URL (Wikimedia blocks clients without one).
    """
    import importlib.metadata as md

    if not contact or not _CONTACT.search(contact):
        raise InvalidArgumentError(
            "contact: Wikimedia's User-Agent policy requires a way to reach you; expected an e-mail address or "
            f"URL (e.g. 'you@example.org' or 'https://example.org/you'), got {contact!r}")
    try:
        version = md.version("imagerank")
    except md.PackageNotFoundError:  # pragma: no cover - a source checkout without metadata
        version = "0"
    return f"imagerank/{version} ({contact.strip()}; auto-pick) httpx/{httpx.__version__}"


def _text(meta: dict[str, Any], key: str) -> str | None:
    v = meta.get(key, {})
    v = v.get("value") if isinstance(v, dict) else v
    if v is None:
        return None
    s = html.unescape(_TAG.sub("", str(v))).strip()
    return re.sub(r"\s+", " ", s) or None


class CommonsSource:
    """Candidates from Wikimedia Commons.

    Args:
        contact: your e-mail address or URL for the User-Agent (required by Wikimedia's policy).
        api: the API endpoint (default :data:`COMMONS_API`; tests point it at a local server).
        thumb_width: a standard width from :data:`STANDARD_WIDTHS` (default 330).
        per_hour: requests per hour (default 500; 0 or None: no limit).
        state_dir: where the rate budget (``rate_budget.sqlite``) and the HTTP cache (``http_cache.sqlite``) live;
            None keeps both in memory / off.
        cache_ttl: seconds a cached answer or image is reused (default 30 days; None: for ever).
        maxlag: seconds of replica lag above which the server asks us to wait (default 5).
        attempts: tries per request (retries on network errors, 5xx, 429, maxlag).
        sleep, clock: injected wait and clock (tests).
        transport: the innermost httpx transport (tests).

    Raises:
        InvalidArgumentError: a non-standard ``thumb_width``, a bad ``contact`` or ``maxlag`` < 1.
    """

    name = "commons"

    def __init__(self, contact: str, *, api: str = COMMONS_API, thumb_width: int = 330, per_hour: int | None = 500,
                 state_dir: str | os.PathLike[str] | None = None, maxlag: int = 5, attempts: int = 4,
                 sleep: Callable[[float], None] | None = None, clock: Callable[[], int] | None = None,
                 transport: httpx.BaseTransport | None = None, timeout: float = 30.0,
                 cache_ttl: float | None = 30 * 86400.0) -> None:
        if int(thumb_width) not in STANDARD_WIDTHS:
            raise InvalidArgumentError(f"thumb_width: expected a standard Commons width "
                                       f"({', '.join(map(str, STANDARD_WIDTHS))}), got {thumb_width!r}")
        if int(maxlag) < 1:
            raise InvalidArgumentError(f"maxlag: expected >= 1 second, got {maxlag!r}")
        self.api, self.thumb_width, self.maxlag = api, int(thumb_width), int(maxlag)
        self.user_agent = user_agent(contact)
        self.counter: dict[str, int] = {"network": 0}
        self.budget = RateBudget(None if state_dir is None else os.path.join(state_dir, "rate_budget.sqlite"),
                                 per_hour, clock=clock, sleep=sleep)
        cache = None if state_dir is None else os.path.join(state_dir, "http_cache.sqlite")
        self.client, self.retry = build_client(user_agent=self.user_agent, budget=self.budget, cache_path=cache,
                                               attempts=attempts, sleep=sleep, counter=self.counter,
                                               transport=transport, timeout=timeout, cache_ttl=cache_ttl)

    @property
    def network_requests(self) -> int:
        """Requests that reached the network in this process (cache hits excluded)."""
        return int(self.counter.get("network", 0))

    def _query(self, params: dict[str, Any]) -> dict[str, Any]:
        try:
            r = self.client.get(self.api, params=params)
        except httpx.HTTPError as e:
            raise SourceError(f"Commons API: {type(e).__name__}: {e}") from e
        if r.status_code != 200:
            raise SourceError(f"Commons API: HTTP {r.status_code} for {params.get('gsrsearch')!r}")
        try:
            data = r.json()
        except ValueError as e:
            raise SourceError(f"Commons API: expected JSON, got {r.headers.get('content-type')!r}") from e
        if not isinstance(data, dict):
            raise SourceError(f"Commons API: expected a JSON object, got {type(data).__name__}")
        if "error" in data:
            err = data["error"] if isinstance(data["error"], dict) else {"info": data["error"]}
            raise SourceError(f"Commons API error {err.get('code')!r}: {str(err.get('info'))[:200]}")
        return data

    def candidates(self, subject: str, limit: int = 10) -> list[Candidate]:
        """At most ``limit`` (1-50) image files found by searching the File namespace for ``subject``.

        Raises:
            SourceError: the API failed after retries or answered an error. InvalidArgumentError: bad ``limit``.
        """
        if not 1 <= int(limit) <= 50:
            raise InvalidArgumentError(f"limit: expected 1..50 candidates, got {limit!r}")
        base = {"action": "query", "format": "json", "generator": "search", "gsrsearch": subject,
                "gsrnamespace": 6, "gsrlimit": int(limit), "prop": "imageinfo",
                "iiprop": "url|size|mime|extmetadata", "iiurlwidth": self.thumb_width, "maxlag": self.maxlag}
        found: dict[str, dict[str, Any]] = {}
        cont: dict[str, Any] = {}
        for _ in range(10):  # continuation pages; a search gives `limit` pages each
            data = self._query({**base, **cont})
            pages = data.get("query", {}).get("pages", {})
            items = pages.values() if isinstance(pages, dict) else pages
            for p in items:
                key = str(p.get("pageid", p.get("title")))
                old = found.setdefault(key, {})
                if p.get("imageinfo"):
                    old.update(p)
                else:
                    old.update({k: v for k, v in p.items() if k != "imageinfo"})
            usable = [p for p in found.values() if p.get("imageinfo")]
            if len(usable) >= limit or "continue" not in data:
                break
            cont = dict(data["continue"])
        pages_sorted = sorted((p for p in found.values() if p.get("imageinfo")),
                              key=lambda p: (int(p.get("index", 1 << 30)), str(p.get("title"))))
        out: list[Candidate] = []
        for p in pages_sorted:
            info = p["imageinfo"][0]
            mime = str(info.get("mime", ""))
            if not mime.startswith("image/") or "thumburl" not in info:
                continue
            meta = info.get("extmetadata", {}) or {}
            title = str(p.get("title", ""))
            lic = _text(meta, "LicenseShortName")
            lic_url = _text(meta, "LicenseUrl")
            author = _text(meta, "Artist")
            name = title.split(":", 1)[-1]
            credit = name + (f" by {author}" if author else "") + (f", {lic}" if lic else "") + (
                f" ({lic_url})" if lic_url else "") + ", via Wikimedia Commons"
            out.append(Candidate(title=title, source=self.name, position=len(out), source_url=str(info["url"]),
                                 thumb_url=str(info["thumburl"]), page_url=info.get("descriptionurl"), licence=lic,
                                 licence_url=lic_url, author=author, attribution=credit,
                                 width=info.get("width"), height=info.get("height"), mime=mime))
            if len(out) >= limit:
                break
        return out

    def _get(self, url: str, what: str, max_bytes: int) -> bytes:
        try:
            with self.client.stream("GET", url) as r:
                if r.status_code != 200:
                    raise SourceError(f"{what}: HTTP {r.status_code} from {url}")
                ctype = r.headers.get("content-type", "")
                if ctype and not ctype.startswith(("image/", "application/octet-stream")):
                    raise SourceError(f"{what}: expected an image, the server sent {ctype.split(';')[0]!r}")
                size = int(r.headers.get("content-length") or 0)
                if size > max_bytes:
                    raise SourceError(f"{what}: {size} bytes exceeds the limit of {max_bytes}")
                chunks, n = [], 0
                for chunk in r.iter_bytes():
                    n += len(chunk)
                    if n > max_bytes:
                        raise SourceError(f"{what}: more than {max_bytes} bytes; refused")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.HTTPError as e:
            raise SourceError(f"{what}: {type(e).__name__}: {e}") from e

    def thumbnail(self, candidate: Candidate) -> bytes:
        """The thumbnail at the standard width (at most 20 MB)."""
        return self._get(candidate.thumb_url, f"thumbnail of {candidate.title}", 20 << 20)

    def original(self, candidate: Candidate) -> bytes:
        """The full-size file (at most 200 MB)."""
        return self._get(candidate.source_url, f"original of {candidate.title}", 200 << 20)

    def close(self) -> None:
        """Close the HTTP client, the cache and the rate budget."""
        self.client.close()
        self.budget.close()
