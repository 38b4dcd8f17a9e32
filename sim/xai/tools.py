"""Function calling: which tools a question calls (a keyword rule), their arguments, and the text
answer made from the tools' results."""

from __future__ import annotations

import json
import re
from typing import Any

from sim.xai.schemas import SchemaCheck, fill
from sim.xai.validation import Message, Tool

SYMBOL = re.compile(r"\b([A-Z]{2,}USDT|[A-Z]{2,}BTC)\b")
DEFAULT_SYMBOL = "BTCUSDT"
# Words of the question → what the name of a tool to call contains.
KEYWORD_RULES: tuple[tuple[frozenset[str], tuple[str, ...]], ...] = (
    (frozenset({"balance", "equity", "portfolio", "position", "positions"}), ("portfolio", "position")),
    (frozenset({"trade", "trades", "won", "lost"}), ("trade",)),
    (frozenset({"price", "prices", "candle", "candles", "chart"}), ("candle",)),
    (frozenset({"rsi", "macd", "indicator", "indicators"}), ("indicator",)),
)
MAX_RESULT_TEXT = 400
LIST_ITEMS_SHOWN = 3


def chosen_tools(tools: tuple[Tool, ...], question: str, tool_choice: str) -> list[Tool]:
    """The tools the question calls, each once, in the order they were defined."""
    if tool_choice == "none":
        return []
    if tool_choice not in ("auto", "required"):
        return [t for t in tools if t.name == tool_choice]
    words = set(re.findall(r"[a-z0-9]+", question.lower()))
    fragments = {fragment for keywords, found in KEYWORD_RULES if words & keywords for fragment in found}
    picked = [t for t in tools if any(fragment in t.name.lower() for fragment in fragments)]
    return picked or (list(tools[:1]) if tool_choice == "required" else [])


def tool_arguments(tool: Tool, question: str) -> dict[str, Any]:
    """Arguments valid against the tool's parameters: the question's first symbol (else BTCUSDT),
    interval 5m and limit 10 where the parameters name them; minimal values for other required ones."""
    symbol = SYMBOL.search(question)
    facts = {"symbol": symbol.group(1) if symbol else DEFAULT_SYMBOL, "interval": "5m", "limit": 10}
    return fill(tool.parameters, facts, SchemaCheck(tool.parameters))


def tool_calls(tools: list[Tool], question: str, calls_so_far: int) -> list[dict[str, Any]]:
    """The ``message.tool_calls`` of an answer; ids ``call_<n>`` continue the conversation's count."""
    return [
        {
            "id": f"call_{calls_so_far + i + 1}",
            "type": "function",
            "function": {"name": tool.name,
                         "arguments": json.dumps(tool_arguments(tool, question), separators=(",", ":"))},
        }
        for i, tool in enumerate(tools)
    ]


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _item(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_scalar(v)}" for k, v in value.items() if not isinstance(v, dict | list)) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_item(v) for v in value[:LIST_ITEMS_SHOWN]) + (", ..." if len(value) > 3 else "") + "]"
    return _scalar(value)


def compact(content: str) -> str:
    """A tool result in one line: a JSON object's scalar fields as key=value and the first three items
    of its lists; other JSON as is (lists cut to three items); plain text cut to 400 characters."""
    try:
        doc = json.loads(content)
    except ValueError:
        text = " ".join(content.split())
        return text if len(text) <= MAX_RESULT_TEXT else text[:MAX_RESULT_TEXT] + "..."
    if isinstance(doc, dict):
        return ", ".join(f"{k}={_item(v)}" for k, v in doc.items() if not isinstance(v, dict))
    return _item(doc)


def tool_results_text(messages: tuple[Message, ...], results: list[Message]) -> str:
    """"Based on <tools>: " and each result compacted, so the answer carries the tools' numbers."""
    names = {call_id: name for m in messages for call_id, name in m.tool_calls}
    labelled = [(names.get(m.tool_call_id or "", m.tool_call_id or "tool"), m.text) for m in results]
    called = ", ".join(dict.fromkeys(name for name, _ in labelled))
    return f"Based on {called}: " + "; ".join(f"[{name}] {compact(text)}" for name, text in labelled)
