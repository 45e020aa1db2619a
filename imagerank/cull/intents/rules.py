"""The offline, deterministic rule-based intent parser: documented phrasings → a :class:`~.schema.Plan`.

The text is lower-cased and read by an ordered list of patterns; each match consumes its words and adds criteria
or steps. Words left over that are not filler (``keep``, ``only``, ``the``, ``photos``...) are reported as not
understood, and the plan is then not run (``ParseResult.ok`` is False). The same text and settings always give
the same plan. Steps come in a fixed order: cull settings, one ``select`` keeping what every "keep" phrase asks,
one ``select`` per "drop" phrase, sort, limit, label, vote, export.

Phrasings (``N`` a number, ``D`` an ISO date ``2024-06-01``, ``H`` an hour ``14``, ``14:00``, ``2pm``; a "drop"
prefix is one of *drop, exclude, skip, without, no, not, except, ignore, leave out*, optionally followed by
*anything / any / those / ones / photos ... with / that are*):

- time: *saturday* (any weekday, plural too), *weekend*, *weekdays*; *morning* (6–12 h), *afternoon* (12–18 h),
  *evening* (18–24 h); *between H and H*, *after H*, *before H*; *on D*, *from D to D* / *between D and D*
  (both days included), *after D* / *since D*, *before D*, *until D* (included)
- camera and lens: *shot with (the) X*, *camera X*, *from the X camera*; *lens X*, *with the X lens*
- quality: *sharp* (sharpness >= ``cull_min_sharpness``), *blurry* (under it; usually with a drop prefix),
  *sharpness over/under N*; *clipped* / *blown (out)* / *overexposed* (a drop prefix keeps clipping <=
  ``cull_max_clip``), *clipping under N(%)*; *noise under N*; *closed eyes* / *eyes closed* (usually dropped),
  *eyes open*
- bucket: *best* / *best bucket*, *good*, *keepers* (best + good), *maybe*, *trash*
- bursts: *sharpest (frame) of each burst* (sort by sharpness, 1 per burst), *best (N) of each burst / cluster*
  (by score), *burst picks*, *singles* / *single frames* (no burst); *burst rejects* (members not picked)
- duplicates: *duplicates* / *near-duplicates* (usually dropped), *unique*
- rating: *ordinal / rating over/under N*, *rated* / *voted* (>= 1 comparison), *unrated* / *never voted*,
  *at least N comparisons*
- labels: *labelled / labeled / tagged X*, *flagged*; actions *label (them) X*, *mark (them) as X*, *flag them*
- folder: *in folder X* / *from folder X* / *in X/* (a glob relative to an image folder; ``X`` alone means
  ``X/*``)
- sort and limit: *sort by score / sharpness / rating / time / noise / clipping*, *newest first*, *oldest first*,
  *chronologically*; *top N* / *best N* (by score unless a sort is given), *top N by rating / sharpness*, *at most
  N*, *no more than N*, *up to N*, *limit N*
- actions: *start a voting session* / *vote on them* / *compare them*; *hardlink / symlink / copy / export (them)
  to PATH* (export's default mode is hardlink), *with xmp* / *write xmp (sidecars)*
- cull settings: *burst gap N s*, *bursts within N seconds*, *hamming N* / *duplicate threshold N bits*,
  *blur threshold N* / *min sharpness N*, *clip limit N(%)* / *max clip N(%)*

Anything else, deletes included (a plan cannot delete), is reported as not understood.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from ...config import CullSettings
from .schema import Cull, Export, Label, Limit, Plan, PlanError, Select, Sort, Vote, format_errors

__all__ = ["EXAMPLES", "FILLER", "ParseResult", "RuleParser", "parse_rules"]

#: One example intent per kind of phrasing (the README's table); every one parses completely.
EXAMPLES: tuple[str, ...] = (
    "keep the sharpest frame of each burst from Saturday afternoon, drop anything with closed eyes, at most 200, "
    "hardlink them to picks",
    "keepers, no duplicates, top 50 by rating, start a voting session",
    "weekend shots between 2pm and 5pm, from 2024-06-01 to 2024-06-03",
    "shot with the x100v, with the 85mm lens, sharpness over 200, clipping under 5%, noise under 4",
    "only sharp ones, no clipped frames, eyes open, unique shots",
    "best 2 of each cluster, not flagged, rating above 20, at least 3 comparisons",
    "in folder day1, burst picks, newest first, at most 20, label them good",
    "burst gap 1.5 s, hamming 8, blur threshold 30, max clip 20%, keepers, copy to picks with xmp",
)

#: Words that carry no meaning of their own in an intent (never reported as not understood).
FILLER: frozenset[str] = frozenset(str.split(
    "a an the all any and or of from with keep only just me my please show give find select pick get choose "
    "photos photo images image pictures picture shots shot frames frame files file ones one them those that "
    "which are is were was in on at to it its their then also but for each every i want would like let's lets "
    "some"
))

_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_NEG = (r"(?P<neg>\b(?:drop|exclude|skip|without|no|not|except|ignore|leave out|leaving out)\b"
        r"(?:\s+(?:anything|any|all|those|ones|the|images|photos|shots|frames|pictures))*"
        r"(?:\s+(?:with|that are|which are|that have|having|where))?\s+)?")
_NUM = r"(\d+(?:\.\d+)?)"
_DATE = r"(\d{4}-\d{2}-\d{2})"
_HOUR = r"(\d{1,2})(?::00)?\s*(am|pm|h)?"


@dataclass(frozen=True)
class ParseResult:
    """What a parser made of one intent.

    Attributes:
        plan: the validated plan, or None when nothing could be made of the text.
        not_understood: the words (or, for the LLM parser, the problems) the parser could not place; a plan is run
            only when this is empty.
        understood: the phrases each rule matched, in text order (rule parser), for people.
        parser: ``rules`` or ``llm``.
    """

    plan: Plan | None
    not_understood: list[str] = field(default_factory=list)
    understood: list[str] = field(default_factory=list)
    parser: str = "rules"

    @property
    def ok(self) -> bool:
        """True when there is a plan and nothing was left not understood."""
        return self.plan is not None and not self.not_understood


@dataclass
class _State:
    cfg: CullSettings
    keep: dict[str, Any] = field(default_factory=dict)
    drops: list[dict[str, Any]] = field(default_factory=list)
    cull: dict[str, Any] = field(default_factory=dict)
    sort: Sort | None = None
    limit: Limit | None = None
    per: tuple[Sort, Limit] | None = None
    top: int | None = None
    label: Label | None = None
    vote: Vote | None = None
    export: dict[str, Any] | None = None
    xmp: bool = False

    def crit(self, neg: bool, **kv: Any) -> None:
        if neg:
            self.drops.append(kv)
        else:
            for k, v in kv.items():
                if isinstance(v, list) and isinstance(self.keep.get(k), list):
                    self.keep[k] = sorted(set(self.keep[k]) | set(v), key=str)
                else:
                    self.keep[k] = v


def _hour(num: str, suffix: str | None) -> int:
    h = int(num)
    if suffix == "pm" and h < 12:
        h += 12
    elif suffix == "am" and h == 12:
        h = 0
    if not 0 <= h <= 24:
        raise PlanError(f"hour: expected 0..24, got {num}{suffix or ''}")
    return h


def _day(text: str) -> datetime:
    try:
        return datetime.strptime(text, "%Y-%m-%d")
    except ValueError:
        raise PlanError(f"date: expected YYYY-MM-DD, got {text!r}") from None


def _frac(num: str, pct: str | None) -> float:
    v = float(num)
    return v / 100.0 if pct or v > 1 else v


_Rule = tuple[str, Callable[[_State, re.Match[str]], None]]


def _neg(m: re.Match[str]) -> bool:
    return bool(m.groupdict().get("neg"))


def _export(mode: str | None) -> Callable[[_State, re.Match[str]], None]:
    def f(s: _State, m: re.Match[str]) -> None:
        s.export = {"destination": m.group("dest").strip().strip("'\"").rstrip(".,;"),
                    **({"mode": mode} if mode else {})}
    return f


def _sort(by: str, descending: bool = True) -> Sort:
    return Sort.model_validate({"by": by, "descending": descending})


def _top_by(s: _State, m: re.Match[str]) -> None:
    s.sort = _sort(_SORTS[m.group(2)], m.group(2) != "noise")
    s.limit = Limit(n=int(m.group(1)))


def _per(s: _State, m: re.Match[str], by: str) -> None:
    s.per = (_sort(by), Limit(n=int(m.group("n") or 1),
                                per="burst" if m.group("g").startswith("burst") else "cluster"))


# Ordered: longer, more specific phrasings first (each match consumes its words).
_RULES: list[_Rule] = [
    # actions with a free-text argument first, so paths are never read as criteria
    (r"\b(?:and\s+)?(?P<verb>hard\s?link|symlink|copy|export)(?:\s+(?:them|these|those|it|the selection))?"
     r"\s+(?:to|into|under)\s+(?P<dest>(?:'[^']+'|\"[^\"]+\"|[^\s,;]+))",
     lambda s, m: _export({"hard link": "hardlink", "hardlink": "hardlink", "symlink": "symlink",
                           "copy": "copy", "export": None}[m.group("verb")])(s, m)),
    (r"\b(?:with|write|add|and)\s+(?:xmp|an xmp|xmp sidecars?|sidecars)(?:\s+sidecars?)?\b",
     lambda s, m: setattr(s, "xmp", True)),
    (r"\bin\s+(?:the\s+)?folders?\s+(?P<g>'[^']+'|\"[^\"]+\"|[^\s,;]+)|\bfrom\s+(?:the\s+)?folders?\s+"
     r"(?P<g2>'[^']+'|\"[^\"]+\"|[^\s,;]+)|\bin\s+(?P<g3>[\w.*?-]+/[\w./*?-]*)",
     lambda s, m: s.crit(False, folder=_glob(m.group("g") or m.group("g2") or m.group("g3")))),
    # cull settings
    (r"\bburst gap (?:of\s+)?" + _NUM + r"\s*(?:s|sec|secs|seconds?)?\b|\bbursts? within " + _NUM
     + r"\s*(?:s|sec|secs|seconds?)\b",
     lambda s, m: s.cull.update(burst_seconds=float(m.group(1) or m.group(2)))),
    (r"\b(?:hamming|duplicate threshold)(?: distance)?(?: of)?\s+(\d+)(?:\s*bits?)?\b",
     lambda s, m: s.cull.update(dedupe_hamming=int(m.group(1)))),
    (r"\b(?:blur threshold|min(?:imum)? sharpness)(?: of)?\s+" + _NUM + r"\b",
     lambda s, m: s.cull.update(min_sharpness=float(m.group(1)))),
    (r"\b(?:clip limit|max(?:imum)? clip(?:ping)?)(?: of)?\s+" + _NUM + r"\s*(%)?",
     lambda s, m: s.cull.update(max_clip=_frac(m.group(1), m.group(2)))),
    # bursts and clusters
    (r"\b(?:the\s+)?sharpest(?:\s+(?:frame|shot|one|image|photo))?\s+(?:of|from|in)\s+(?:each|every)\s+"
     r"(?P<g>bursts?|clusters?)(?P<n>)",
     lambda s, m: _per(s, m, "sharpness")),
    (r"\b(?:the\s+)?(?:best|top)\s*(?P<n>\d+)?(?:\s+(?:frames?|shots?|ones?))?\s+(?:of|from|in)\s+(?:each|every)\s+"
     r"(?P<g>bursts?|clusters?)",
     lambda s, m: _per(s, m, "score")),
    (_NEG + r"\bburst rejects\b", lambda s, m: s.crit(_neg(m), burst_role=["other"])),
    (_NEG + r"\bburst picks?\b", lambda s, m: s.crit(_neg(m), burst_role=["pick"])),
    (_NEG + r"\b(?:singles|single (?:frames|shots|images|photos)|(?:not|outside) (?:in )?(?:a )?bursts?)\b",
     lambda s, m: s.crit(_neg(m), burst_role=["single"])),
    # limits and sorting
    (r"\b(?:top|best)\s+(\d+)\s+by\s+(rating|ordinal|sharpness|score|noise)\b",
     _top_by),
    (r"\b(?:top|best)\s+(\d+)\b", lambda s, m: setattr(s, "top", int(m.group(1)))),
    (r"\b(?:at most|no more than|up to|limit(?: to)?|max(?:imum)?(?: of)?)\s+(\d+)\b",
     lambda s, m: setattr(s, "limit", Limit(n=int(m.group(1))))),
    (r"\b(?:sort(?:ed)?|order(?:ed)?)\s+by\s+(score|sharpness|rating|ordinal|time|date|capture time|noise|"
     r"clipping|path|name)\b",
     lambda s, m: setattr(s, "sort", _sort(_SORTS[m.group(1)],
                                          m.group(1) not in ("time", "date", "capture time", "noise",
                                                                         "clipping", "path", "name")))),
    (r"\b(newest|latest|oldest|earliest) first\b|\bchronological(?:ly)?\b",
     lambda s, m: setattr(s, "sort", _sort("capture_time", m.group(1) in ("newest", "latest")))),
    # actions
    (r"\b(?:label|tag|mark)(?:\s+(?:them|these|those|it|the selection))?\s+(?:as\s+)?(good|bad|flag|flagged)\b",
     lambda s, m: setattr(s, "label", Label.model_validate({"label": "flag" if m.group(1) == "flagged"
                                                                   else m.group(1)}))),
    (r"\bflag (?:them|these|those|it|the selection)\b", lambda s, m: setattr(s, "label", Label(label="flag"))),
    (r"\b(?:start|open|begin)\s+(?:a\s+)?(?:new\s+)?(?:voting\s+)?session\b|\bvote on (?:them|these|those|it)\b|"
     r"\bcompare (?:them|these|those)\b|\blet me vote\b",
     lambda s, m: setattr(s, "vote", Vote())),
    # rating
    (_NEG + r"\b(?:ordinal|rating|rated)\s+(?:over|above|at least|>=?)\s+(-?" + _NUM[1:] ,
     lambda s, m: s.crit(_neg(m), min_ordinal=float(m.group(m.lastindex or 1)))),
    (_NEG + r"\b(?:ordinal|rating|rated)\s+(?:under|below|at most|<=?)\s+(-?" + _NUM[1:],
     lambda s, m: s.crit(_neg(m), max_ordinal=float(m.group(m.lastindex or 1)))),
    (r"\bat least (\d+) (?:comparisons|votes)\b", lambda s, m: s.crit(False, min_comparisons=int(m.group(1)))),
    (r"\b(?:unrated|never (?:voted|compared)(?: on)?|not (?:yet )?(?:voted|rated)(?: on)?|without votes)\b",
     lambda s, m: s.crit(False, max_comparisons=0)),
    (r"\b(?:rated|voted(?: on)?|compared)\b", lambda s, m: s.crit(False, min_comparisons=1)),
    # labels (as a criterion)
    (_NEG + r"\b(?:labell?ed|tagged|marked)\s+(?:as\s+)?(good|bad|flag|flagged)\b",
     lambda s, m: s.crit(_neg(m), labels=["flag" if m.group(m.lastindex or 1) == "flagged" else
                                          m.group(m.lastindex or 1)])),
    (_NEG + r"\bflagged\b", lambda s, m: s.crit(_neg(m), labels=["flag"])),
    # quality
    (_NEG + r"\b(?:closed eyes|eyes closed|blinks?|blinking)\b", lambda s, m: s.crit(_neg(m), eyes_closed=True)),
    (r"\b(?:eyes open|open eyes)\b", lambda s, m: s.crit(True, eyes_closed=True)),
    (_NEG + r"\bsharpness\s+(?:over|above|at least|>=?)\s+" + _NUM,
     lambda s, m: s.crit(_neg(m), min_sharpness=float(m.group(m.lastindex or 1)))),
    (_NEG + r"\bsharpness\s+(?:under|below|<)\s+" + _NUM,
     lambda s, m: s.crit(_neg(m), max_sharpness=float(m.group(m.lastindex or 1)))),
    (_NEG + r"\b(?:blurry|blurred|out of focus|soft)\b",
     lambda s, m: s.crit(_neg(m), max_sharpness=s.cfg.cull_min_sharpness or 0.0)),
    (_NEG + r"\b(?:in focus|sharp)\b",
     lambda s, m: s.crit(_neg(m), min_sharpness=s.cfg.cull_min_sharpness)),
    (r"\bclipping\s+(?:under|below|at most|<=?)\s+" + _NUM + r"\s*(%)?",
     lambda s, m: s.crit(False, max_clip=_frac(m.group(1), m.group(2)))),
    (_NEG + r"\b(?:clipped|blown(?: out)?(?: highlights)?|overexposed|over-exposed)\b",
     lambda s, m: s.crit(not _neg(m), max_clip=s.cfg.cull_max_clip)),
    (r"\bnoise\s+(?:under|below|at most|<=?)\s+" + _NUM, lambda s, m: s.crit(False, max_noise=float(m.group(1)))),
    # duplicates
    (_NEG + r"\b(?:near[- ]?duplicates?|duplicates?|dupes?)\b",
     lambda s, m: s.crit(_neg(m), duplicate_role=["duplicate"])),
    (_NEG + r"\bunique\b", lambda s, m: s.crit(_neg(m), duplicate_role=["unique"])),
    # buckets
    (_NEG + r"\bkeepers\b", lambda s, m: s.crit(_neg(m), bucket=["best", "good"])),
    (_NEG + r"\b(?:the\s+)?(best|good|maybe|trash)(?:\s+bucket)?(?:\s+ones)?\b",
     lambda s, m: s.crit(_neg(m), bucket=[m.group(m.lastindex or 1)])),
    # time
    (r"\b(?:from|between)\s+" + _DATE + r"\s+(?:to|and|until|through)\s+" + _DATE + r"\b",
     lambda s, m: s.crit(False, time_from=_day(m.group(1)), time_to=_day(m.group(2)) + timedelta(days=1))),
    (r"\b(?:after|since)\s+" + _DATE + r"\b", lambda s, m: s.crit(False, time_from=_day(m.group(1)))),
    (r"\bbefore\s+" + _DATE + r"\b", lambda s, m: s.crit(False, time_to=_day(m.group(1)))),
    (r"\buntil\s+" + _DATE + r"\b",
     lambda s, m: s.crit(False, time_to=_day(m.group(1)) + timedelta(days=1))),
    (r"\b(?:on\s+)?" + _DATE + r"\b",
     lambda s, m: s.crit(False, time_from=_day(m.group(1)), time_to=_day(m.group(1)) + timedelta(days=1))),
    (r"\bbetween\s+" + _HOUR + r"\s+and\s+" + _HOUR + r"\b",
     lambda s, m: s.crit(False, hour_from=_hour(m.group(1), m.group(2)), hour_to=_hour(m.group(3), m.group(4)))),
    (r"\bafter\s+(\d{1,2})(?::00)?\s*(am|pm|h)\b|\bafter\s+(\d{1,2}):00\b",
     lambda s, m: s.crit(False, hour_from=_hour(m.group(1) or m.group(3), m.group(2)), hour_to=24)),
    (r"\bbefore\s+(\d{1,2})(?::00)?\s*(am|pm|h)\b|\bbefore\s+(\d{1,2}):00\b",
     lambda s, m: s.crit(False, hour_from=0, hour_to=_hour(m.group(1) or m.group(3), m.group(2)))),
    (r"\b(?:in the\s+)?morning\b", lambda s, m: s.crit(False, hour_from=6, hour_to=12)),
    (r"\b(?:in the\s+)?afternoon\b", lambda s, m: s.crit(False, hour_from=12, hour_to=18)),
    (r"\b(?:in the\s+)?evening\b", lambda s, m: s.crit(False, hour_from=18, hour_to=24)),
    (r"\b(?:on\s+)?(?:the\s+)?weekends?\b", lambda s, m: s.crit(False, weekdays=[5, 6])),
    (r"\b(?:on\s+)?weekdays\b", lambda s, m: s.crit(False, weekdays=[0, 1, 2, 3, 4])),
    (r"\b(?:on\s+)?(monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b",
     lambda s, m: s.crit(False, weekdays=[_WEEKDAYS.index(m.group(1))])),
    # camera and lens (free text: last, so the words above are never swallowed)
    (r"\b(?:with|using)\s+(?:the\s+|my\s+|a\s+)?(?P<x>[\w.+-]+(?:\s+[\w.+-]+)?)\s+lens\b|\blens\s+(?P<y>[\w.+-]+)",
     lambda s, m: s.crit(False, lens=m.group("x") or m.group("y"))),
    (r"\bshot (?:with|on)\s+(?:the\s+|my\s+|a\s+)?(?P<x>[\w.+-]+(?:\s+[\w.+-]+)?)|\bcamera\s+(?P<y>[\w.+-]+)|"
     r"\bfrom\s+(?:the\s+|my\s+)?(?P<z>[\w.+-]+(?:\s+[\w.+-]+)?)\s+camera\b",
     lambda s, m: s.crit(False, camera=m.group("x") or m.group("y") or m.group("z"))),
]
_COMPILED = [(re.compile(p), f) for p, f in _RULES]
_SORTS: dict[str, str] = {"score": "score", "sharpness": "sharpness", "rating": "ordinal", "ordinal": "ordinal",
          "time": "capture_time", "date": "capture_time", "capture time": "capture_time", "noise": "noise",
          "clipping": "clipping", "path": "path", "name": "path"}


def _glob(g: str) -> str:
    g = g.strip().strip("'\"").rstrip(".,;")
    if not any(c in g for c in "*?["):
        g = g.rstrip("/") + "/*"
    return g


class RuleParser:
    """The deterministic, offline parser (the phrasings of this module's docstring).

    Args:
        settings: the ``[cull]`` settings whose thresholds words like *sharp*, *blurry* and *clipped* mean
            (default: the defaults).
    """

    name = "rules"

    def __init__(self, settings: CullSettings | None = None) -> None:
        self.cfg = settings if settings is not None else CullSettings()

    def parse(self, text: str) -> ParseResult:
        """Parse one intent.

        Returns:
            a :class:`ParseResult`; ``plan`` None when the text asked nothing the rules know, and
            ``not_understood`` listing every word left over (so a partly understood intent is never run).

        Raises:
            InvalidArgumentError: ``text`` is not a string or longer than 4,000 characters.
        """
        if not isinstance(text, str) or len(text) > 4000:
            raise PlanError(f"intent: expected a text of at most 4000 characters, got {str(text)[:60]!r}...")
        low = " " + re.sub(r"\s+", " ", text.lower().replace("’", "'")) + " "
        st = _State(self.cfg)
        hits: list[tuple[int, str]] = []
        for rx, fn in _COMPILED:
            while True:
                m = rx.search(low)
                if m is None:
                    break
                try:
                    fn(st, m)
                except (PlanError, ValidationError) as e:
                    reason = format_errors(e) if isinstance(e, ValidationError) else str(e)
                    return ParseResult(None, [f"{m.group(0).strip()!r}: {reason}"], parser=self.name)
                hits.append((m.start(), m.group(0).strip()))
                low = low[:m.start()] + " " * (m.end() - m.start()) + low[m.end():]
        leftover = [w for w in re.findall(r"[^\s,.;:!?()]+", low) if w.strip("'\"-") and w.strip("'\"-") not in FILLER]
        understood = [h for _, h in sorted(hits)]
        try:
            plan = self._plan(st, text)
        except ValidationError as e:
            return ParseResult(None, [format_errors(e), *leftover], understood, self.name)
        return ParseResult(plan, leftover, understood, self.name)

    @staticmethod
    def _plan(st: _State, text: str) -> Plan | None:
        steps: list[Any] = []
        if st.cull:
            steps.append(Cull(**st.cull))
        if st.keep:
            steps.append(Select(mode="keep", **st.keep))
        steps.extend(Select(mode="drop", **d) for d in st.drops)
        if st.per is not None:
            steps.extend(st.per)
        sort, limit = st.sort, st.limit
        if st.top is not None:
            sort = sort or (None if st.per is not None and st.per[0].by == "score" else Sort(by="score"))
            limit = Limit(n=st.top if limit is None else min(limit.n, st.top))
        if sort is not None:
            steps.append(sort)
        if limit is not None:
            steps.append(limit)
        if st.export is None and st.xmp:
            st.export = {"destination": "picks"}
        for extra in (st.label, st.vote):
            if extra is not None:
                steps.append(extra)
        if st.export is not None:
            steps.append(Export(**st.export, xmp=st.xmp))
        if not steps:
            return None
        return Plan(intent=text, steps=steps)


def parse_rules(text: str, settings: CullSettings | None = None) -> ParseResult:
    """:meth:`RuleParser.parse` with ``settings`` (a shortcut)."""
    return RuleParser(settings).parse(text)
