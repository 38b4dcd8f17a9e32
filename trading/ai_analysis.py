"""Grok's market analysis as data: the question we ask, the answer's JSON schema, its validation,
and what an answer costs. Pure: no I/O, no clock (the activities in ``activities/grok.py`` call).

The question is rendered from one candle's stored technical analysis (indicator values and the
consensus with every strategy's verdict) into a fixed text with the facts in a fenced JSON block, so
the same candle, settings and model always give the same prompt and therefore the same cache key:
sessions asking the very same question share one answer, and different settings never collide.

An answer is accepted only when it is a JSON object that satisfies ``ANALYSIS_SCHEMA`` (the schema
sent as ``response_format``, checked again here because a model may ignore it): anything else is an
``InvalidAnswer``, a counted failure and never a signal.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

DIRECTIONS = ("long", "short", "neutral")
SCHEMA_NAME = "market_analysis"
MAX_TEXT = 2000  # reasoning / risk texts beyond this are refused, not cut: a runaway answer is not advice

ANALYSIS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["direction", "confidence", "reasoning", "key_levels", "risks", "horizon"],
    "properties": {
        "direction": {"type": "string", "enum": list(DIRECTIONS)},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reasoning": {"type": "string"},
        "key_levels": {
            "type": "object",
            "additionalProperties": False,
            "required": ["support", "resistance"],
            "properties": {
                "support": {"type": "array", "items": {"type": "number"}},
                "resistance": {"type": "array", "items": {"type": "number"}},
            },
        },
        "risks": {"type": "array", "items": {"type": "string"}},
        "horizon": {"type": "string"},
    },
}

SYSTEM_PROMPT = (
    "You are a cautious crypto market analyst. You receive one closed candle's technical indicators and "
    "the consensus of five rule-based strategies. Judge the likely direction over the next few candles. "
    "Answer only with JSON matching the schema: direction (long, short or neutral), confidence from 0 to 1, "
    "reasoning in two or three sentences, key support and resistance levels, the main risks, and the horizon. "
    "Say neutral when the evidence is mixed."
)


class InvalidAnswer(ValueError):
    """Grok's answer is not JSON or breaks the schema."""


@dataclass(frozen=True, slots=True)
class KeyLevels:
    support: tuple[float, ...] = ()
    resistance: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class GrokAnswer:
    direction: str
    confidence: float
    reasoning: str
    key_levels: KeyLevels = field(default_factory=KeyLevels)
    risks: tuple[str, ...] = ()
    horizon: str = ""

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["key_levels"] = {"support": list(self.key_levels.support), "resistance": list(self.key_levels.resistance)}
        out["risks"] = list(self.risks)
        return out

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> GrokAnswer:
        levels = doc.get("key_levels") or {}
        return cls(doc["direction"], float(doc["confidence"]), doc["reasoning"],
                   KeyLevels(tuple(levels.get("support", ())), tuple(levels.get("resistance", ()))),
                   tuple(doc.get("risks", ())), doc.get("horizon", ""))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise InvalidAnswer(f"{name} must be a string")
    if len(value) > MAX_TEXT:
        raise InvalidAnswer(f"{name} is longer than {MAX_TEXT} characters")
    return value


def _levels(value: Any) -> KeyLevels:
    if not isinstance(value, dict) or set(value) != {"support", "resistance"}:
        raise InvalidAnswer("key_levels must be an object with exactly support and resistance")
    found = {}
    for side in ("support", "resistance"):
        items = value[side]
        if not isinstance(items, list) or not all(_number(x) for x in items):
            raise InvalidAnswer(f"key_levels.{side} must be a list of numbers")
        found[side] = tuple(float(x) for x in items)
    return KeyLevels(found["support"], found["resistance"])


def parse_answer(content: str | None) -> GrokAnswer:
    """The validated answer in ``content`` (the message text of a chat completion)."""
    if not content:
        raise InvalidAnswer("the answer is empty")
    try:
        doc = json.loads(content)
    except ValueError as exc:
        raise InvalidAnswer(f"the answer is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidAnswer("the answer is not a JSON object")
    required = ANALYSIS_SCHEMA["required"]
    missing = [name for name in required if name not in doc]
    if missing:
        raise InvalidAnswer(f"the answer lacks {', '.join(missing)}")
    extra = sorted(set(doc) - set(required))
    if extra:
        raise InvalidAnswer(f"the answer has unknown fields {', '.join(extra)}")
    if doc["direction"] not in DIRECTIONS:
        raise InvalidAnswer(f"direction must be one of {', '.join(DIRECTIONS)}, got {doc['direction']!r}")
    if not _number(doc["confidence"]) or not 0 <= doc["confidence"] <= 1:
        raise InvalidAnswer(f"confidence must be a number from 0 to 1, got {doc['confidence']!r}")
    risks = doc["risks"]
    if not isinstance(risks, list):
        raise InvalidAnswer("risks must be a list of strings")
    return GrokAnswer(
        direction=doc["direction"],
        confidence=float(doc["confidence"]),
        reasoning=_text(doc["reasoning"], "reasoning"),
        key_levels=_levels(doc["key_levels"]),
        risks=tuple(_text(r, "risks[]") for r in risks),
        horizon=_text(doc["horizon"], "horizon"),
    )


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """What Grok is told about one closed candle: the stored technical analysis of it."""

    symbol: str
    interval: str
    open_time: int
    indicators: dict[str, float | None]
    consensus: dict[str, Any]  # direction, confidence, reason, verdicts (None direction: warming up)


def _rounded(value: float | None) -> float | None:
    # Eight significant digits: the prompt (and its hash) must not depend on float noise.
    return None if value is None else float(f"{value:.8g}")


def render_messages(snapshot: MarketSnapshot) -> list[dict[str, str]]:
    facts = {
        "symbol": snapshot.symbol,
        "interval": snapshot.interval,
        "open_time": snapshot.open_time,
        "indicators": {k: _rounded(v) for k, v in sorted(snapshot.indicators.items())},
        "consensus": snapshot.consensus,
    }
    user = (
        f"Analyse {snapshot.symbol} on the {snapshot.interval} chart after the candle that opened at "
        f"{snapshot.open_time} (ms since the epoch, UTC) closed.\n\n```json\n"
        f"{json.dumps(facts, sort_keys=True, separators=(',', ':'))}\n```"
    )
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": user}]


def response_format() -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": SCHEMA_NAME, "schema": ANALYSIS_SCHEMA, "strict": True}}


def question_key(messages: list[dict[str, str]], model: str) -> str:
    """The cache key of an answer: the model and a hash of everything it was sent."""
    body = json.dumps({"messages": messages, "schema": ANALYSIS_SCHEMA}, sort_keys=True, separators=(",", ":"))
    return f"grok:{model}:{hashlib.sha256(body.encode()).hexdigest()}"


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    prompt: Decimal
    completion: Decimal


def price_table(text: str) -> dict[str, Price]:
    """``DURABOT_AI_PRICES`` (validated by the settings) as exact decimals."""
    return {model: Price(Decimal(str(p)), Decimal(str(c))) for model, (p, c) in json.loads(text).items()}


def cost_nano_usd(price: Price, prompt_tokens: int, completion_tokens: int) -> int:
    """A call's cost in billionths of a dollar: integers, so a day's calls add up exactly."""
    nano_per_token_per_usd_per_million = Decimal(1000)  # 1e9 nano-USD / 1e6 tokens
    exact = (prompt_tokens * price.prompt + completion_tokens * price.completion) * nano_per_token_per_usd_per_million
    return int(exact.to_integral_value())


def nano_to_usd(nano: int) -> float:
    return nano / 1e9
