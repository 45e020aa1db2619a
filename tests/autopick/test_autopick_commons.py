"""The Commons client against the fake server on 127.0.0.1, and the rate budget with a fake clock."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from imagerank.autopick import CommonsSource, RateBudget, SourceError
from imagerank.autopick.fake_commons import FakeCommons, FakeFile, fake_catalogue
from imagerank.autopick.http import retry_after_seconds
from imagerank.errors import InvalidArgumentError


class FakeClock:
    """Milliseconds that move only when the code under test sleeps."""

    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.ms = start_ms
        self.slept: list[float] = []

    def __call__(self) -> int:
        return self.ms

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.ms += round(seconds * 1000)


def source(srv: FakeCommons, tmp_path: Path, **kw: object) -> CommonsSource:
    kw.setdefault("sleep", lambda s: None)
    return CommonsSource("tests@example.org", api=srv.api, state_dir=tmp_path / "state", **kw)  # type: ignore[arg-type]


def test_search_answer_shape_order_metadata_and_user_agent(fake: FakeCommons, tmp_path: Path) -> None:
    src = source(fake, tmp_path)
    got = src.candidates("Subject 000", 10)
    assert [c.title for c in got] == [f"File:Subject 000 view {j}.jpg" for j in range(6)]  # by `index`
    c = got[0]
    assert c.thumb_url.endswith("/thumb/330px/Subject_000_view_0.jpg")
    assert c.licence == "CC BY-SA 4.0"
    assert c.author == "Example"
    assert c.attribution == ("Subject 000 view 0.jpg by Example, CC BY-SA 4.0 "
                             "(https://creativecommons.org/licenses/by-sa/4.0), via Wikimedia Commons")
    assert src.user_agent.startswith("imagerank/")
    assert "(tests@example.org; auto-pick)" in src.user_agent
    assert "httpx/" in src.user_agent
    assert len(src.candidates("Subject 000", 3)) == 3


def test_continuation_is_passed_back_until_enough(tmp_path: Path) -> None:
    files = [FakeFile(f"File:Many {j}.jpg", width=400, height=300, seed=j) for j in range(25)]
    with FakeCommons({"Many": files}, max_per_page=4) as srv:
        src = source(srv, tmp_path)
        got = src.candidates("Many", 10)
        assert [c.title for c in got] == [f"File:Many {j}.jpg" for j in range(10)]
        assert [k for k, _ in srv.log].count("api") == 3  # 4 + 4 + 4 pages, continuation from the answers
        assert srv.offsets == [0, 4, 8]


def test_non_standard_thumb_width_and_contact_are_refused(fake: FakeCommons, tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="standard Commons width"):
        source(fake, tmp_path, thumb_width=300)
    with pytest.raises(InvalidArgumentError, match="User-Agent policy"):
        CommonsSource("me", api=fake.api)


def test_standard_width_served_is_the_next_larger(fake: FakeCommons, tmp_path: Path) -> None:
    src = source(fake, tmp_path, thumb_width=250)
    assert "/thumb/250px/" in src.candidates("Subject 000", 1)[0].thumb_url


def test_429_maxlag_and_5xx_are_retried_honouring_retry_after(tmp_path: Path) -> None:
    cat = fake_catalogue(3)
    with FakeCommons(cat, faults={"Subject 001": ["429", "maxlag", "503"]}, retry_after=7) as srv:
        src = source(srv, tmp_path, attempts=4)
        got = src.candidates("Subject 001", 10)
        assert len(got) == 6
        assert src.retry.waits == [7.0, 7.0, 4.0]  # Retry-After twice, then back-off 1 * 2**2 (no header on 503)
        assert src.network_requests == 4
        assert "maxlag" in srv.params[1]
        assert srv.params[1]["maxlag"] == "5"


def test_dropped_connection_is_a_network_error_retried(tmp_path: Path) -> None:
    with FakeCommons(fake_catalogue(2), faults={"Subject 000": ["drop"]}) as srv:
        src = source(srv, tmp_path)
        assert len(src.candidates("Subject 000", 10)) == 6
        assert len(src.retry.waits) == 1


def test_retries_exhausted_raise_source_error_naming_the_cause(tmp_path: Path) -> None:
    with FakeCommons(fake_catalogue(2), faults={"Subject 000": ["503"] * 5}) as srv:
        src = source(srv, tmp_path, attempts=3)
        with pytest.raises(SourceError, match="after 3 tries: HTTP 503"):
            src.candidates("Subject 000", 10)


def test_unreachable_server_is_a_source_error(tmp_path: Path) -> None:
    src = CommonsSource("t@example.org", api="http://127.0.0.1:9/w/api.php", attempts=2, sleep=lambda s: None)
    with pytest.raises(SourceError, match="ConnectError"):
        src.candidates("anything", 10)


def test_no_results_is_an_empty_list(fake: FakeCommons, tmp_path: Path) -> None:
    assert source(fake, tmp_path).candidates("Subject 009", 10) == []
    assert source(fake, tmp_path).candidates("Nothing like this", 10) == []


def test_cache_makes_a_rerun_spend_nothing(fake: FakeCommons, tmp_path: Path) -> None:
    src = source(fake, tmp_path)
    c = src.candidates("Subject 000", 10)[0]
    src.thumbnail(c)
    n, logged = src.network_requests, len(fake.log)
    src.close()
    again = source(fake, tmp_path)  # a new process: same state folder
    assert again.candidates("Subject 000", 10)[0].title == c.title
    assert again.thumbnail(c)
    assert again.network_requests == 0
    assert len(fake.log) == logged
    assert n == 2


def test_html_instead_of_an_image_is_refused(tmp_path: Path) -> None:
    with FakeCommons({"H": [FakeFile("File:H.jpg", kind="html", width=400, height=300)]}) as srv:
        src = source(srv, tmp_path)
        c = src.candidates("H", 10)[0]
        with pytest.raises(SourceError, match="expected an image, the server sent 'text/html'"):
            src.original(c)


def test_retry_after_http_date() -> None:
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


# ------------------------------------------------------------------ the rate budget, with a fake clock
def test_budget_waits_for_the_sliding_hour_without_sleeping(tmp_path: Path) -> None:
    clock = FakeClock()
    b = RateBudget(tmp_path / "b.sqlite", per_hour=3, clock=clock, sleep=clock.sleep)
    t0 = clock.ms
    for _ in range(3):
        b.acquire()
        clock.ms += 1000  # one request a second
    assert clock.slept == []
    assert b.used() == 3
    b.acquire()  # the 4th waits until the first leaves the window
    assert 3_600_000 <= clock.ms - t0 <= 3_600_000 + 1000
    assert sum(clock.slept) < 3_600
    assert b.used() == 3  # the first fell out of the hour, the next two and this one are in it


def test_budget_survives_a_restart(tmp_path: Path) -> None:
    clock = FakeClock()
    first = RateBudget(tmp_path / "b.sqlite", per_hour=2, clock=clock, sleep=clock.sleep)
    first.acquire()
    first.acquire()
    first.close()
    clock.ms += 60_000
    again = RateBudget(tmp_path / "b.sqlite", per_hour=2, clock=clock, sleep=clock.sleep)
    assert again.used() == 2
    again.acquire()
    assert clock.slept
    assert clock.ms >= 1_700_000_000_000 + 3_600_000


def test_budget_never_exceeds_the_rate_through_the_client(tmp_path: Path) -> None:
    clock = FakeClock()
    with FakeCommons(fake_catalogue(6)) as srv:
        src = CommonsSource("t@example.org", api=srv.api, state_dir=tmp_path, per_hour=5, clock=clock,
                            sleep=clock.sleep)
        for i in range(6):
            src.candidates(f"Subject {i:03d}", 10)
        times = sorted(r[0] for r in src.budget.bucket.conn.execute("SELECT item_timestamp FROM commons_requests"))
    assert len(times) == 6
    assert src.network_requests == 6
    for k in range(len(times) - 5):  # any 6 requests span more than an hour
        assert times[k + 5] - times[k] >= 3_600_000


def test_budget_off_and_bad_values(tmp_path: Path) -> None:
    b = RateBudget(None, per_hour=0)
    for _ in range(1000):
        b.acquire()
    assert b.used() == 0
    with pytest.raises(InvalidArgumentError, match="per_hour"):
        RateBudget(None, per_hour=-1)


def test_transport_is_swappable(tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"error": {"code": "badvalue", "info": "no"}},
                              headers={"MediaWiki-API-Error": "badvalue"})

    src = CommonsSource("t@example.org", api="http://example.invalid/w/api.php", transport=httpx.MockTransport(handler))
    with pytest.raises(SourceError, match="API error 'badvalue'"):
        src.candidates("x", 10)


def test_expired_cache_entries_are_fetched_again(fake: FakeCommons, tmp_path: Path) -> None:
    src = source(fake, tmp_path, cache_ttl=0.0)  # every entry already expired
    src.candidates("Subject 000", 10)
    src.candidates("Subject 000", 10)
    assert src.network_requests == 2
