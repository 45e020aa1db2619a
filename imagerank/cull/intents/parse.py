"""One interface over both parsers: :func:`get_parser` picks one from the settings, :func:`parse_intent` parses,
:func:`plan_intent` parses, checks, previews and (on confirmation) runs."""

from __future__ import annotations

from typing import Literal, Protocol

from ...catalog import CatalogLike, as_catalog
from ...config import Settings
from ...errors import InvalidArgumentError
from .llm import LLMParser
from .rules import ParseResult, RuleParser
from .run import PlanPreview, execute, preview
from .schema import PlanError

__all__ = ["IntentParser", "get_parser", "llm_parser", "parse_intent", "plan_intent"]


class IntentParser(Protocol):
    """What both parsers offer: a ``name`` (``rules``, ``llm``) and ``parse(text) -> ParseResult``."""

    name: str

    def parse(self, text: str) -> ParseResult: ...


def get_parser(settings: Settings | None = None, parser: Literal["auto", "rules", "llm"] = "auto") -> IntentParser:
    """The parser to use: ``rules`` (offline), ``llm`` (``llm_url`` and ``llm_model`` from the settings, which read
    ``IMAGERANK_LLM_URL`` / ``IMAGERANK_LLM_MODEL`` / ``IMAGERANK_LLM_API_KEY`` from the environment), or ``auto``
    (the LLM when ``llm_url`` is set, else the rules).

    Raises:
        InvalidArgumentError: an unknown ``parser``; ``llm`` without ``llm_url`` or ``llm_model``.
    """
    s = settings if settings is not None else Settings()
    c = s.cull
    if parser not in ("auto", "rules", "llm"):
        raise InvalidArgumentError(f"parser: expected auto, rules or llm, got {parser!r}")
    if parser == "rules" or (parser == "auto" and not c.llm_url):
        return RuleParser(c)
    return llm_parser(s)


def llm_parser(settings: Settings) -> LLMParser:
    """The :class:`~.llm.LLMParser` of ``settings`` (``llm_url``, ``llm_model``, ``llm_api_key``,
    ``llm_timeout_s``).

    Raises:
        InvalidArgumentError: ``llm_url`` or ``llm_model`` is empty.
    """
    c = settings.cull
    if not c.llm_url or not c.llm_model:
        raise InvalidArgumentError(f"parser llm: expected the llm_url and llm_model settings (or IMAGERANK_LLM_URL "
                                   f"and IMAGERANK_LLM_MODEL), got url={c.llm_url!r} model={c.llm_model!r}")
    return LLMParser(c.llm_url, c.llm_model, c.llm_api_key, timeout_s=c.llm_timeout_s)


def parse_intent(text: str, settings: Settings | None = None,
                 parser: Literal["auto", "rules", "llm"] = "auto") -> ParseResult:
    """Parse ``text`` with :func:`get_parser` ``(settings, parser)``. Raises as the parser does."""
    return get_parser(settings, parser).parse(text)


def plan_intent(col: CatalogLike, intent: str, *, run: bool = False,
                parser: Literal["auto", "rules", "llm"] = "auto") -> PlanPreview:
    """Parse ``intent`` with the workspace's settings, check it, preview it, and with ``run`` execute it.

    Returns:
        the :class:`~.run.PlanPreview` (``plan_id`` and ``result`` set when it ran).

    Raises:
        PlanError: the parser did not understand every word (the message lists them) or made no plan; the export
            destination is outside the allowed roots.
        LLMError: the LLM endpoint failed (``parser`` llm or auto with ``llm_url`` set).
    """
    cat = as_catalog(col)
    p = get_parser(cat.settings, parser)
    res = p.parse(intent)
    if res.plan is None or res.not_understood:
        raise PlanError(f"intent: not understood: {', '.join(map(repr, res.not_understood)) or 'nothing to do'}"
                        + (f" (understood: {'; '.join(res.understood)})" if res.understood else "")
                        + "; see the phrasings in imagerank.cull.intents.rules")
    return execute(res.plan, cat, parser=p.name) if run else preview(res.plan, cat, parser=p.name)
