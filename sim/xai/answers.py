"""One request's answer, decided by rules alone (no randomness: the same request, the same answer).

1. Tools given, no tool result since the last user message, and the keyword rule (``tools.py``)
   picks some: the answer calls them (``finish_reason: tool_calls``).
2. Otherwise the facts: a trade review (schema named ``trade_review``, or a fenced block with a
   ``trade``), a market analysis (a fenced block with ``indicators``), or "no market data"; after
   tool results their compacted contents are the text (and the reasoning when there is no market data).
3. Shaped by ``response_format``: json_schema → the facts fitted into the schema (``schemas.fill``),
   json_object → the facts as JSON, none → a plain-text summary.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sim.xai.analysis import (
    analysis_text,
    fenced_objects,
    market_analysis,
    no_market_data,
    review_text,
    trade_review,
)
from sim.xai.schemas import SchemaCheck, broken, fill
from sim.xai.tools import chosen_tools, tool_calls, tool_results_text
from sim.xai.validation import ChatRequest

NO_FACTS = "No market data found: send the candle's facts as a fenced ```json block with indicators."


@dataclass(frozen=True)
class Answer:
    content: str | None
    finish_reason: str = "stop"
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    structured: dict[str, Any] | None = None  # the JSON object in content, for a schema-break fault
    check: SchemaCheck | None = None  # the requested schema


def _facts_blocks(request: ChatRequest, last_user: int) -> list[dict[str, Any]]:
    """Fenced JSON objects: the last user message's first, then earlier messages' (newest first)."""
    order = [last_user] if last_user >= 0 else []
    order += [i for i in range(len(request.messages) - 1, -1, -1) if i != last_user]
    return [doc for i in order if request.messages[i].role in ("user", "system")
            for doc in fenced_objects(request.messages[i].text)]


def _facts(request: ChatRequest, last_user: int) -> tuple[dict[str, Any], str, bool]:
    """(facts, plain text, whether market data was given)."""
    blocks = _facts_blocks(request, last_user)
    market = next((b for b in blocks if isinstance(b.get("indicators"), dict)), None)
    trade_block = next((b for b in blocks if isinstance(b.get("trade"), dict)), None)
    trade = trade_block["trade"] if trade_block else None
    fmt = request.response_format
    if (fmt is not None and fmt.name == "trade_review") or (trade is not None and market is None):
        settings = (trade_block or {}).get("settings")
        review = trade_review(trade or {}, settings if isinstance(settings, dict) else None)
        return review, review_text(review), True
    if market is not None:
        analysis = market_analysis(market)
        return analysis, analysis_text(analysis), True
    return no_market_data(NO_FACTS), NO_FACTS, False


def compose(request: ChatRequest) -> Answer:
    messages = request.messages
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    question = messages[last_user].text if last_user >= 0 else ""
    results = [m for m in messages[last_user + 1:] if m.role == "tool"]
    if request.tools and not results:
        picked = chosen_tools(request.tools, question, request.tool_choice)
        if picked:
            calls_so_far = sum(len(m.tool_calls) for m in messages)
            return Answer(None, "tool_calls", tool_calls(picked, question, calls_so_far))

    facts, text, grounded = _facts(request, last_user)
    if results:
        text = tool_results_text(messages, results)
        if not grounded:
            facts = {**facts, "reasoning": text}
    fmt = request.response_format
    if fmt is None:
        return Answer(text)
    if fmt.type == "json_object" or fmt.schema is None:
        return Answer(json.dumps(facts), structured=facts)
    check = SchemaCheck(fmt.schema)
    shaped = fill(fmt.schema, facts, check)
    return Answer(json.dumps(shaped), structured=shaped, check=check)


def malformed(answer: Answer) -> Answer:
    """The answer with content that is not JSON: a JSON answer cut in half, else an unterminated object."""
    content = answer.content or ""
    try:
        json.loads(content)
        cut = content[: len(content) // 2]
    except ValueError:
        cut = '{"reasoning": "' + content[:60]
    return Answer(cut)


def schema_broken(answer: Answer) -> Answer:
    """Valid JSON that breaks the requested schema (``schemas.broken``); a text or tool-call answer
    becomes the no-data analysis with direction "sideways"."""
    base = answer.structured if answer.structured is not None else no_market_data(NO_FACTS)
    doc = broken(base, answer.check)
    return Answer(json.dumps(doc), structured=doc, check=answer.check)
