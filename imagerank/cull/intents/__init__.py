"""Plans in plain words (the cull room's third stage): intent → a validated plan of whitelisted actions → a preview
→ a run on confirmation; and explanations of every cull decision.

:mod:`.schema` the plan language (pydantic, versioned); :mod:`.rules` the offline rule parser; :mod:`.llm` the
optional parser for an OpenAI-compatible chat endpoint (it only translates words into a plan; it never runs
anything); :mod:`.run` the selection, dry run, execution and storage; :mod:`.explain` the reasons of one image and
a sentence built from them.
"""

from .explain import explain_image, explain_record, polish_sentence, sentence
from .llm import LLMError, LLMParser
from .parse import get_parser, llm_parser, parse_intent, plan_intent
from .rules import ParseResult, RuleParser, parse_rules
from .run import PlanPreview, execute, preview, selection_frame, session_pairs
from .schema import PLAN_VERSION, Plan, PlanError, parse_plan, plan_json_schema

__all__ = ["PLAN_VERSION", "LLMError", "LLMParser", "ParseResult", "Plan", "PlanError", "PlanPreview", "RuleParser",
           "execute", "explain_image", "explain_record", "get_parser", "llm_parser", "parse_intent", "parse_plan",
           "parse_rules", "plan_intent", "plan_json_schema", "polish_sentence", "preview", "selection_frame",
           "sentence", "session_pairs"]
