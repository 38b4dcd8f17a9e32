"""Chat with Grok about your own account and the market.

Each round is an ``AiChatWorkflow`` (``ai-chat:{user}:{request}:{round}``) on the ``ai`` queue: Grok
answers, or asks for tools. The tools are read-only use cases of this application layer run with the
caller's principal (their portfolio, their closed trades, stored candles, indicators): the model
chooses a tool and its symbol or limit, never whose data, so no answer can reach another user's
account. Tool arguments are checked here; a bad one goes back to Grok as the tool's error. At most
``MAX_ROUNDS`` rounds; spend counts against the caller's budget like any Grok call.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from temporalio.client import Client

from core.ai_contracts import ANSWERED, AiChatInput, GrokChatInput, GrokChatResult, ai_chat_workflow_id
from core.contracts import TASK_QUEUE_AI, task_queue_name
from core.settings import Settings
from services.ai import RESULT_SLACK_S, grok_policy
from services.errors import DomainError, Rejected
from services.idempotency import update_id
from services.market import MarketData
from services.paper import PaperTrading
from services.principal import Principal
from services.workflow_runs import run_once
from trading.ai_analysis import nano_to_usd
from trading.candle import INTERVAL_MS
from workflows.ai_chat import AiChatWorkflow

MAX_ROUNDS = 4
MAX_QUESTION = 2000
MAX_HISTORY = 20
MAX_TOOL_TEXT = 6000  # characters of one tool result sent back to Grok
SYSTEM_PROMPT = (
    "You are Durabot's assistant. Answer questions about the user's own paper-trading account and the "
    "crypto market with the tools you have; never invent numbers, say when a tool has no data. You cannot "
    "place, change or cancel anything, and you only ever see this user's account."
)


def _function(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": required, "additionalProperties": False}}}


SYMBOL_ARG = {"type": "string", "pattern": "^[A-Z0-9]{2,20}$", "description": "e.g. BTCUSDT"}
INTERVAL_ARG = {"type": "string", "enum": list(INTERVAL_MS)}
TOOLS: tuple[dict[str, Any], ...] = (
    _function("get_portfolio", "The user's paper account: balance, equity, open positions and their PnL.", {}, []),
    _function("get_trades", "The user's most recent closed paper trades, newest first.",
              {"limit": {"type": "integer", "minimum": 1, "maximum": 20}}, []),
    _function("get_candles", "Recent stored candles (OHLCV) of a symbol.",
              {"symbol": SYMBOL_ARG, "interval": INTERVAL_ARG, "limit": {"type": "integer", "minimum": 1,
                                                                          "maximum": 50}}, ["symbol"]),
    _function("get_indicators", "The latest RSI, MACD, Bollinger, stochastic and ATR values of a symbol.",
              {"symbol": SYMBOL_ARG, "interval": INTERVAL_ARG}, ["symbol"]),
)


class ToolRefused(ValueError):
    """A tool call with arguments the tool does not take: its error goes back to Grok."""


@dataclass(frozen=True)
class ChatTurn:
    role: str  # user | assistant
    content: str


@dataclass(frozen=True)
class ChatRequest:
    message: str
    history: tuple[ChatTurn, ...] = ()


@dataclass(frozen=True)
class ChatReply:
    answer: str | None
    fallback_reason: str | None = None
    fallback_detail: str | None = None
    tools_used: list[dict[str, Any]] = field(default_factory=list)
    rounds: int = 0
    cost_usd: float = 0.0


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _arguments(text: str, allowed: dict[str, Any], required: list[str]) -> dict[str, Any]:
    try:
        args = json.loads(text or "{}")
    except ValueError:
        raise ToolRefused("the arguments are not JSON") from None
    if not isinstance(args, dict):
        raise ToolRefused("the arguments must be a JSON object")
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise ToolRefused(f"this tool takes no {', '.join(unknown)} (it takes: {', '.join(allowed) or 'nothing'})")
    missing = [name for name in required if name not in args]
    if missing:
        raise ToolRefused(f"missing {', '.join(missing)}")
    for name, spec in allowed.items():
        if name not in args:
            continue
        value = args[name]
        if spec.get("type") == "integer" and (isinstance(value, bool) or not isinstance(value, int)
                                              or not spec["minimum"] <= value <= spec["maximum"]):
            raise ToolRefused(f"{name} must be a whole number from {spec['minimum']} to {spec['maximum']}")
        if spec.get("type") == "string" and not isinstance(value, str):
            raise ToolRefused(f"{name} must be a string")
        if "enum" in spec and value not in spec["enum"]:
            raise ToolRefused(f"{name} must be one of {', '.join(spec['enum'])}")
    return args


class AiChat:
    def __init__(self, settings: Settings, temporal: Client, db: AsyncDatabase, paper: PaperTrading,
                 market: MarketData) -> None:
        self.settings = settings
        self.temporal = temporal
        self.db = db
        self.paper = paper
        self.market = market
        self._tools = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}

    async def ask(self, principal: Principal, request: ChatRequest, key: str | None) -> ChatReply:
        principal.require("authenticated")
        message = request.message.strip()
        if not message or len(message) > MAX_QUESTION:
            raise Rejected("message", f"a message is 1 to {MAX_QUESTION} characters")
        if len(request.history) > MAX_HISTORY:
            raise Rejected("history", f"at most {MAX_HISTORY} earlier turns")
        messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}]
        messages += [{"role": t.role, "content": t.content[:MAX_QUESTION]} for t in request.history]
        messages.append({"role": "user", "content": message})
        request_id = update_id(principal.user_id, "ai.chat", key, request)
        used: list[dict[str, Any]] = []
        cost = 0
        for round_number in range(1, MAX_ROUNDS + 1):
            result = await self._round(principal, request_id, round_number, messages)
            cost += result.cost_nano_usd
            if result.outcome != ANSWERED:
                return ChatReply(None, result.reason, result.detail, used, round_number, nano_to_usd(cost))
            if not result.tool_calls:
                return ChatReply(result.content or "", None, None, used, round_number, nano_to_usd(cost))
            messages.append({"role": "assistant", "content": result.content, "tool_calls": [
                {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                for c in result.tool_calls]})
            for call in result.tool_calls:
                output = await self._run_tool(principal, call["name"], call["arguments"])
                used.append({"name": call["name"], "arguments": call["arguments"], "ok": "error" not in output})
                messages.append({"role": "tool", "tool_call_id": call["id"],
                                 "content": json.dumps(output, default=str)[:MAX_TOOL_TEXT]})
        return ChatReply(None, "unavailable", f"no answer after {MAX_ROUNDS} rounds of tool calls", used,
                         MAX_ROUNDS, nano_to_usd(cost))

    async def _round(self, principal: Principal, request_id: str, round_number: int,
                     messages: list[dict[str, Any]]) -> GrokChatResult:
        job = AiChatInput(GrokChatInput(principal.user_id, tuple(messages), TOOLS), grok_policy(self.settings))
        return await run_once(self.temporal, AiChatWorkflow.run, job,
                              workflow_id=ai_chat_workflow_id(principal.user_id, request_id, round_number),
                              task_queue=task_queue_name(TASK_QUEUE_AI, self.settings.task_queue_prefix),
                              wait_s=self.settings.ai_deadline_s + RESULT_SLACK_S, what="Grok's answer")

    async def _run_tool(self, principal: Principal, name: str, arguments: str) -> dict[str, Any]:
        """The tool's result for Grok, always as the caller: ``{"error": …}`` when it cannot run."""
        parameters = self._tools.get(name)
        if parameters is None:
            return {"error": f"no tool {name!r}; tools: {', '.join(self._tools)}"}
        try:
            args = _arguments(arguments, parameters["properties"], parameters["required"])
            return await self._tool(principal, name, args)
        except ToolRefused as exc:
            return {"error": str(exc)}
        except DomainError as exc:  # no session yet, no data for that symbol: said, not raised
            return {"error": exc.message}

    async def _tool(self, principal: Principal, name: str, args: dict[str, Any]) -> dict[str, Any]:
        if name == "get_portfolio":
            portfolio = await self.paper.portfolio(principal)
            return {"status": portfolio.status, **_plain(portfolio.account), "positions": _plain(portfolio.positions)}
        if name == "get_trades":
            rows = await self.paper.closed_trades(principal, args.get("limit", 10), 0, None)
            return {"trades": [_plain(r.get("trade", r)) for r in rows]}
        symbol, interval = args["symbol"].upper(), args.get("interval", "5m")
        if name == "get_candles":
            found = await self.market.candles(symbol, interval, args.get("limit", 10))
            return {"symbol": symbol, "interval": interval, "candles": [_plain(c) for c in found.candles]}
        chart = await self.market.chart(symbol, interval, ["rsi", "macd", "bollinger", "stochastic", "atr"], 1)
        return {"symbol": symbol, "interval": interval,
                "latest": {column: values[-1] if values else None for column, values in chart.indicators.items()}}
