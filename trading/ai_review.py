"""Grok's review of a closed trade as data: the question, the answer's schema and its validation.
Pure: no I/O.

The review says why the trade won or lost and may suggest settings changes. A suggestion names a
tunable parameter (``trading.tuning_table``) and a value; it is only ever a proposal, so the
tuning tiers decide: GREEN applies, YELLOW and RED wait for the owner.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from trading.ai_analysis import MAX_TEXT, InvalidAnswer
from trading.tuning_table import TUNABLES

SCHEMA_NAME = "trade_review"
MAX_ITEMS = 10

REVIEW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["verdict", "reasons", "lessons", "suggestions"],
    "properties": {
        "verdict": {"type": "string", "enum": ["won", "lost"]},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "lessons": {"type": "array", "items": {"type": "string"}},
        "suggestions": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["parameter", "value", "reason"],
            "properties": {"parameter": {"type": "string", "enum": sorted(TUNABLES)},
                           "value": {"type": "number"}, "reason": {"type": "string"}}}},
    },
}

SYSTEM_PROMPT = (
    "You review one closed paper trade of a rule-based crypto strategy. Say whether it won or lost, why "
    "(entry and exit), what to learn, and suggest at most a few settings changes among the listed tunable "
    "parameters only when the trade shows a reason for them. Answer only with JSON matching the schema."
)


@dataclass(frozen=True, slots=True)
class Suggestion:
    parameter: str
    value: float
    reason: str


@dataclass(frozen=True, slots=True)
class TradeReview:
    verdict: str
    reasons: tuple[str, ...]
    lessons: tuple[str, ...]
    suggestions: tuple[Suggestion, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reasons": list(self.reasons), "lessons": list(self.lessons),
                "suggestions": [{"parameter": s.parameter, "value": s.value, "reason": s.reason}
                                for s in self.suggestions]}


def render_messages(trade: dict[str, Any], entry_analysis: dict[str, Any] | None,
                    settings: dict[str, Any]) -> list[dict[str, str]]:
    """The question: the trade, what decided its entry, and the current value of every tunable."""
    facts = {"trade": trade, "entry_analysis": entry_analysis, "settings": settings}
    user = (f"Review this closed trade and its settings.\n\n```json\n"
            f"{json.dumps(facts, sort_keys=True, separators=(',', ':'), default=str)}\n```")
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def response_format() -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": REVIEW_SCHEMA, "strict": True}}


def _texts(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_ITEMS or \
            not all(isinstance(v, str) and len(v) <= MAX_TEXT for v in value):
        raise InvalidAnswer(f"{name} must be a list of at most {MAX_ITEMS} texts")
    return tuple(value)


def _suggestion(item: Any) -> Suggestion:
    if not isinstance(item, dict) or set(item) != {"parameter", "value", "reason"}:
        raise InvalidAnswer("a suggestion is an object of parameter, value and reason")
    parameter, value, reason = item["parameter"], item["value"], item["reason"]
    if parameter not in TUNABLES:
        raise InvalidAnswer(f"a suggestion names {parameter!r}, which is not a tunable parameter")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidAnswer(f"the suggested {parameter} is not a number")
    if not isinstance(reason, str) or len(reason) > MAX_TEXT:
        raise InvalidAnswer("a suggestion's reason must be a text")
    return Suggestion(parameter, float(value), reason)


def parse_review(content: str | None) -> TradeReview:
    if not content:
        raise InvalidAnswer("the answer is empty")
    try:
        doc = json.loads(content)
    except ValueError as exc:
        raise InvalidAnswer(f"the answer is not JSON: {exc}") from None
    if not isinstance(doc, dict) or set(doc) != set(REVIEW_SCHEMA["required"]):
        raise InvalidAnswer(f"the answer must have exactly {', '.join(REVIEW_SCHEMA['required'])}")
    if doc["verdict"] not in ("won", "lost"):
        raise InvalidAnswer(f"verdict must be won or lost, got {doc['verdict']!r}")
    suggestions = doc["suggestions"]
    if not isinstance(suggestions, list) or len(suggestions) > MAX_ITEMS:
        raise InvalidAnswer(f"suggestions must be a list of at most {MAX_ITEMS}")
    return TradeReview(doc["verdict"], _texts(doc["reasons"], "reasons"), _texts(doc["lessons"], "lessons"),
                       tuple(_suggestion(s) for s in suggestions))
