"""The HTTP stack of the auto-pick sources: cache -> retry -> rate limit -> network, one library per concern.

* :class:`RateBudget`: ``pyrate-limiter``'s :class:`~pyrate_limiter.SQLiteBucket` (a sliding-window log of request
  times in a SQLite file), so the budget (500 requests per hour by default) survives restarts; its clock and sleep
  are injectable, so tests drive it with a fake clock instead of sleeping.
* :class:`RetryTransport`: ``tenacity`` retries network errors, 5xx, 429 and MediaWiki ``maxlag`` errors, waiting
  what ``Retry-After`` says (capped) or an exponential back-off; other API errors raise :class:`SourceError`.
* ``hishel``'s ``CacheTransport`` on top with a SQLite store: a rerun answers what it already fetched from the
  cache, spending no budget and sending no request.

Requests go one after another (one client, no concurrency), as Wikimedia's API etiquette asks.
"""

from __future__ import annotations

import email.utils
import os
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from ..errors import ImagerankError, InvalidArgumentError

__all__ = ["RateBudget", "RetryTransport", "SourceError", "build_client", "retry_after_seconds"]


class SourceError(ImagerankError):
    """A candidate source failed: the network, the server (after retries), an API error, or a bad response."""


class RateBudget:
    """At most ``per_hour`` requests in any sliding hour, remembered in a SQLite file across restarts.

    Args:
        path: the SQLite file (created); None keeps the budget in memory (one process only).
        per_hour: requests per hour, >= 1; None or 0 turns the limit off (benchmarks, local servers).
        clock: milliseconds since the epoch (default wall time; the stored log must compare across restarts).
        sleep: called with seconds to wait when the budget is spent (default :func:`time.sleep`).

    Raises:
        InvalidArgumentError: ``per_hour`` < 0.
    """

    def __init__(self, path: str | os.PathLike[str] | None, per_hour: int | None = 500, *,
                 clock: Callable[[], int] | None = None, sleep: Callable[[float], None] | None = None) -> None:
        from pyrate_limiter import Duration, Rate, SQLiteBucket

        if per_hour is not None and int(per_hour) < 0:
            raise InvalidArgumentError(f"per_hour: expected >= 0 requests (0 or None = no limit), got {per_hour!r}")
        self.per_hour = int(per_hour or 0)
        self.clock = clock or (lambda: time.time_ns() // 1_000_000)
        self.sleep = sleep or time.sleep
        self.waited_s = 0.0
        self.bucket: Any = None
        if self.per_hour:
            if path is not None:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            clock_fn = self.clock

            class _Bucket(SQLiteBucket):  # the library's SQLite bucket, reading our clock
                def now(self) -> int:
                    return int(clock_fn())

            rates = [Rate(self.per_hour, Duration.HOUR)]
            self.bucket = _Bucket.init_from_file(rates, table="commons_requests",
                                                 db_path=str(path) if path is not None else ":memory:")

    def acquire(self) -> None:
        """Take one request from the budget, sleeping (``sleep``) until the window has room."""
        if self.bucket is None:
            return
        from pyrate_limiter import RateItem

        while True:
            item = RateItem("commons", int(self.clock()))
            if self.bucket.put(item):
                return
            wait_ms = self.bucket.waiting(item)
            wait_s = max(int(wait_ms), 1) / 1000.0
            self.waited_s += wait_s
            self.sleep(wait_s)

    def used(self) -> int:
        """Requests counted in the last hour (0 without a limit)."""
        if self.bucket is None:
            return 0
        start = int(self.clock()) - 3_600_000
        row = self.bucket.conn.execute(f"SELECT COUNT(*) FROM '{self.bucket.table}' WHERE item_timestamp >= ?",
                                       (start,)).fetchone()
        return int(row[0])

    def close(self) -> None:
        if self.bucket is not None:
            self.bucket.close()


class _RateLimitTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, budget: RateBudget, counter: dict[str, int]) -> None:
        self.inner, self.budget, self.counter = inner, budget, counter

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.budget.acquire()
        self.counter["network"] = self.counter.get("network", 0) + 1
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date (RFC 9110 section 10.2.3);
    None when absent or unreadable."""
    if not value:
        return None
    v = value.strip()
    if v.isdigit():
        return float(v)
    try:
        when = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    ref = now if now is not None else datetime.now(timezone.utc).timestamp()
    return max(0.0, when.timestamp() - ref)


class _RetryableError(Exception):
    def __init__(self, reason: str, wait: float | None) -> None:
        super().__init__(reason)
        self.reason, self.wait = reason, wait


class RetryTransport(httpx.BaseTransport):
    """Retries with ``tenacity``: network errors, HTTP 5xx and 429, and MediaWiki API ``maxlag`` errors (the
    ``MediaWiki-API-Error`` header), at most ``attempts`` tries; waits ``Retry-After`` (capped at ``max_wait``
    seconds) or an exponential back-off from ``base_wait``. Other API errors raise :class:`SourceError` so that no
    error is cached.

    Args:
        inner: the next transport (rate limit -> network).
        attempts: tries per request, >= 1.
        sleep: the wait function (tests pass one that records instead of sleeping).
    """

    def __init__(self, inner: httpx.BaseTransport, *, attempts: int = 4, base_wait: float = 1.0,
                 max_wait: float = 120.0, sleep: Callable[[float], None] | None = None) -> None:
        if int(attempts) < 1:
            raise InvalidArgumentError(f"attempts: expected >= 1, got {attempts!r}")
        self.inner, self.attempts = inner, int(attempts)
        self.base_wait, self.max_wait = float(base_wait), float(max_wait)
        self.sleep = sleep or time.sleep
        self.waits: list[float] = []

    def _wait(self, state: Any) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        hinted = exc.wait if isinstance(exc, _RetryableError) else None
        w = hinted if hinted is not None else self.base_wait * 2 ** (state.attempt_number - 1)
        w = min(float(w), self.max_wait)
        self.waits.append(w)
        return w

    def _once(self, request: httpx.Request) -> httpx.Response:
        try:
            response = self.inner.handle_request(request)
        except httpx.TransportError as e:
            raise _RetryableError(f"{type(e).__name__}: {e}", None) from e
        api_error = response.headers.get("mediawiki-api-error")
        if response.status_code == 429 or response.status_code >= 500 or api_error == "maxlag":
            response.read()
            response.close()
            why = f"maxlag ({response.headers.get('x-database-lag', '?')} s lag)" if api_error == "maxlag" else (
                f"HTTP {response.status_code}")
            raise _RetryableError(why, retry_after_seconds(response.headers.get("retry-after")))
        if api_error:
            response.read()
            response.close()
            raise SourceError(f"{request.url.host}: API error {api_error!r}: {response.text[:200]}")
        return response

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        from tenacity import RetryError, Retrying, retry_if_exception_type, stop_after_attempt

        retrying = Retrying(stop=stop_after_attempt(self.attempts), wait=self._wait, sleep=self.sleep,
                            retry=retry_if_exception_type(_RetryableError), reraise=False)
        try:
            return retrying(self._once, request)
        except RetryError as e:
            last = e.last_attempt.exception()
            why = last.reason if isinstance(last, _RetryableError) else str(last)
            raise SourceError(f"GET {request.url.copy_with(query=None)} failed after {self.attempts} tries: "
                              f"{why}") from last

    def close(self) -> None:
        self.inner.close()


def build_client(
    *,
    user_agent: str,
    budget: RateBudget,
    cache_path: str | os.PathLike[str] | None,
    timeout: float = 30.0,
    attempts: int = 4,
    sleep: Callable[[float], None] | None = None,
    counter: dict[str, int] | None = None,
    transport: httpx.BaseTransport | None = None,
    cache_ttl: float | None = 30 * 86400.0,
) -> tuple[httpx.Client, RetryTransport]:
    """An ``httpx.Client`` over cache (hishel, SQLite at ``cache_path``; None: no cache) -> retry -> rate limit ->
    network, with ``user_agent`` on every request.

    Args:
        counter: a dict whose ``"network"`` entry counts the requests that reached the network (not the cache).
        transport: the innermost transport (default ``httpx.HTTPTransport()``).
        cache_ttl: seconds a cached response is served (default 30 days; None: for ever).

    Returns:
        (client, retry transport) -- the latter records the waits it asked for (``.waits``, seconds).
    """
    from hishel import SqliteStorage
    from hishel.httpx import CacheTransport

    counter = counter if counter is not None else {}
    retry = RetryTransport(_RateLimitTransport(transport or httpx.HTTPTransport(), budget, counter),
                           attempts=attempts, sleep=sleep)
    outer: httpx.BaseTransport = retry
    if cache_path is not None:
        Path(cache_path).parent.mkdir(parents=True, exist_ok=True)
        outer = CacheTransport(retry, storage=SqliteStorage(database_path=str(cache_path), default_ttl=cache_ttl))
    client = httpx.Client(transport=outer, headers={"User-Agent": user_agent}, timeout=timeout,
                          follow_redirects=True)
    return client, retry
