"""The sim xAI API through the real OpenAI SDK and httpx: models, rule-based structured answers,
determinism, usage, function calling, every fault, refused inputs, the request log and its restart."""

from __future__ import annotations

import json
import math
import time
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from openai import AsyncOpenAI
from pydantic import BaseModel

KEY = "sk-test-secret-4711"
MODEL = "grok-4-fast"

# Shaped like the product's market-analysis schema (trading/ai_analysis.py).
ANALYSIS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["direction", "confidence", "reasoning", "key_levels", "risks", "horizon"],
    "properties": {
        "direction": {"type": "string", "enum": ["long", "short", "neutral"]},
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
ANALYSIS_FORMAT = {"type": "json_schema",
                   "json_schema": {"name": "market_analysis", "schema": ANALYSIS_SCHEMA, "strict": True}}

LONG = {"close": 40000.0, "rsi": 28.4, "macd": 40.0, "macd_signal": 27.5, "macd_histogram": 12.5, "bb_lower": 39500.0,
        "bb_mid": 40500.0, "bb_upper": 41500.0, "bb_percent_b": 0.1, "stoch_k": 12.0, "stoch_d": 15.0,
        "volume_ratio": 1.3, "atr": 620.0}
SHORT = {**LONG, "rsi": 72.0, "macd_histogram": -3.25, "bb_percent_b": 0.5, "atr": 100.0}
NEUTRAL = {**LONG, "rsi": 50.0, "macd_histogram": 1.0, "bb_percent_b": 0.9, "atr": None}


def question(indicators: dict[str, Any], symbol: str = "BTCUSDT") -> list[dict[str, str]]:
    facts = {"symbol": symbol, "interval": "5m", "open_time": 1700000000000, "indicators": indicators,
             "consensus": {"direction": "long", "confidence": 0.6, "reason": "3 of 5 strategies"}}
    return [{"role": "system", "content": "You are a cautious crypto market analyst."},
            {"role": "user", "content": f"Analyse {symbol}.\n\n```json\n{json.dumps(facts)}\n```"}]


def sdk(server: Any, key: str = KEY) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.base_url, api_key=key, max_retries=0, timeout=10)


async def set_faults(server: Any, **faults: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url) as http:
        return await http.post("/sim/faults", json=faults)


async def sim_get(server: Any, path: str) -> Any:
    async with httpx.AsyncClient(base_url=server.url) as http:
        reply = await http.get(path)
        assert reply.status_code == 200, reply.text
        return reply.json()


async def test_models_are_listed_in_the_openai_shape(start_sim_xai):
    server = await start_sim_xai()
    async with sdk(server) as client:
        models = (await client.models.list()).data
        assert [m.id for m in models] == ["grok-4", "grok-4-fast", "grok-3-mini"]
        assert {m.owned_by for m in models} == {"xai"} and all(m.object == "model" for m in models)
        assert (await client.models.retrieve("grok-3-mini")).id == "grok-3-mini"
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("gpt-4o")
    async with httpx.AsyncClient() as http:
        body = (await http.get(f"{server.base_url}/models", headers={"Authorization": f"Bearer {KEY}"})).json()
    assert body["object"] == "list" and isinstance(body["data"][0]["created"], int)


@pytest.mark.parametrize(
    ("indicators", "direction", "confidence", "risk"),
    [(LONG, "long", 0.95, "high volatility"), (SHORT, "short", 0.8, "disagrees with the technical consensus"),
     (NEUTRAL, "neutral", 0.5, "a sudden news-driven move")],
)
async def test_a_structured_analysis_follows_the_documented_rule(start_sim_xai, indicators, direction, confidence,
                                                                 risk):
    server = await start_sim_xai()
    async with sdk(server) as client:
        reply = await client.chat.completions.create(model=MODEL, messages=question(indicators),
                                                     response_format=ANALYSIS_FORMAT)
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and reply.model == MODEL and reply.id.startswith("chatcmpl-")
    assert choice.finish_reason == "stop" and choice.message.role == "assistant" and not choice.message.tool_calls
    answer = json.loads(choice.message.content)
    jsonschema.validate(answer, ANALYSIS_SCHEMA)
    assert answer["direction"] == direction and answer["confidence"] == confidence
    assert f"RSI {indicators['rsi']:g}" in answer["reasoning"]
    assert f"MACD histogram {indicators['macd_histogram']:g}" in answer["reasoning"]
    assert answer["key_levels"] == {"support": [39500.0], "resistance": [41500.0]}
    assert risk in answer["risks"] and answer["horizon"] == "1-4 candles"


async def test_the_same_request_gets_the_same_answer_in_every_format(start_sim_xai):
    server = await start_sim_xai()
    async with sdk(server) as client:
        async def ask(**extra: Any) -> Any:
            return await client.chat.completions.create(model=MODEL, messages=question(SHORT), **extra)

        first, second = await ask(response_format=ANALYSIS_FORMAT), await ask(response_format=ANALYSIS_FORMAT)
        assert first.choices[0].message.content == second.choices[0].message.content and first.id == second.id
        as_object = json.loads((await ask(response_format={"type": "json_object"})).choices[0].message.content)
        assert as_object["direction"] == "short" and as_object["symbol"] == "BTCUSDT"
        text = (await ask()).choices[0].message.content
        assert text.startswith("Short (confidence 0.80).") and "resistance 41500" in text
        assert (await ask(temperature=1.5)).id != first.id  # another request, another id
        other = await client.chat.completions.create(model=MODEL, messages=question(LONG, "ETHUSDT"),
                                                     response_format=ANALYSIS_FORMAT)
        assert json.loads(other.choices[0].message.content)["direction"] == "long"


async def test_usage_follows_the_token_rule_and_the_totals_add_up(start_sim_xai):
    server = await start_sim_xai()
    replies = []
    async with sdk(server) as client:
        for indicators, model in ((LONG, MODEL), (SHORT, "grok-4"), (NEUTRAL, "grok-3-mini")):
            messages = question(indicators)
            reply = await client.chat.completions.create(model=model, messages=messages,
                                                         response_format=ANALYSIS_FORMAT)
            prompt = math.ceil(sum(len(m["content"]) for m in messages) / 4)
            completion = math.ceil(len(reply.choices[0].message.content) / 4)
            assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (prompt, completion)
            assert reply.usage.total_tokens == prompt + completion
            replies.append(reply)
        await set_faults(server, http_5xx_remaining=1)
        with pytest.raises(openai.InternalServerError):  # a failed call costs nothing
            await client.chat.completions.create(model=MODEL, messages=question(LONG))
        cut = await client.chat.completions.create(model=MODEL, messages=question(LONG), max_tokens=5)
        assert cut.choices[0].finish_reason == "length" and len(cut.choices[0].message.content) == 20
        replies.append(cut)
    usage = await sim_get(server, "/sim/usage")
    assert usage["requests"] == 4
    for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert usage[name] == sum(getattr(r.usage, name) for r in replies)
    assert usage["by_model"]["grok-4"]["total_tokens"] == replies[1].usage.total_tokens


PARAMETERS = {"type": "object", "properties": {"symbol": {"type": "string"}}, "required": ["symbol"]}
TOOLS = [
    {"type": "function", "function": {"name": "get_portfolio", "description": "Balances and positions",
                                      "parameters": PARAMETERS}},
    {"type": "function", "function": {"name": "recent_trades", "parameters": {
        "type": "object", "properties": {"limit": {"type": "integer", "minimum": 1, "maximum": 5}},
        "required": ["limit"]}}},
    {"type": "function", "function": {"name": "get_candles", "parameters": {
        "type": "object", "additionalProperties": False, "required": ["symbol", "interval", "limit", "closed_only"],
        "properties": {"symbol": {"type": "string"}, "interval": {"type": "string", "enum": ["1m", "5m", "1h"]},
                       "limit": {"type": "integer"}, "closed_only": {"type": "boolean"}}}}},
    {"type": "function", "function": {"name": "get_indicators", "parameters": PARAMETERS}},
]


async def test_tools_are_called_by_keyword_and_their_results_come_back_in_the_answer(start_sim_xai):
    server = await start_sim_xai()
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is my balance, and the SOLUSDT price?"}]
    async with sdk(server) as client:
        reply = await client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
        choice = reply.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        calls = choice.message.tool_calls
        assert [(c.id, c.type, c.function.name) for c in calls] == [
            ("call_1", "function", "get_portfolio"), ("call_2", "function", "get_candles")]
        assert json.loads(calls[0].function.arguments) == {"symbol": "SOLUSDT"}
        assert json.loads(calls[1].function.arguments) == {"symbol": "SOLUSDT", "interval": "5m", "limit": 10,
                                                            "closed_only": False}
        assert reply.usage.completion_tokens == math.ceil(len(json.dumps(
            [c.model_dump(exclude_none=True) for c in calls])) / 4)

        messages.append(choice.message.model_dump(exclude_none=True))
        portfolio = {"equity": 10432.5, "cash": 2500, "positions": [{"symbol": "SOLUSDT", "qty": 12.5}],
                     "detail": {"ignored": 1}}
        candles = [{"close": 101.25}, {"close": 102.75}, {"close": 99.5}, {"close": 98.0}]
        messages += [{"role": "tool", "tool_call_id": "call_1", "content": json.dumps(portfolio)},
                     {"role": "tool", "tool_call_id": "call_2", "content": json.dumps(candles)}]
        final = await client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
        text = final.choices[0].message.content
        assert final.choices[0].finish_reason == "stop" and not final.choices[0].message.tool_calls
        assert text.startswith("Based on get_portfolio, get_candles: ")
        for number in ("equity=10432.5", "cash=2500", "qty=12.5", "close=101.25", "close=99.5"):
            assert number in text, text
        assert "98.0" not in text  # lists show their first three items

        quiet = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Say hello"}], tools=TOOLS)
        assert quiet.choices[0].finish_reason == "stop" and quiet.choices[0].message.content
        forced = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "My trades?"}], tools=TOOLS,
            tool_choice={"type": "function", "function": {"name": "get_indicators"}})
        assert [c.function.name for c in forced.choices[0].message.tool_calls] == ["get_indicators"]
        trades = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Which trades won?"}], tools=TOOLS)
        assert json.loads(trades.choices[0].message.tool_calls[0].function.arguments) == {"limit": 5}
    log = await sim_get(server, "/sim/requests")
    assert [e["tool_calls"] for e in log] == [["get_portfolio", "get_candles"], [], [], ["get_indicators"],
                                              ["recent_trades"]]


async def test_a_trade_review_fills_verdict_reasons_and_lessons(start_sim_xai):
    server = await start_sim_xai()
    schema = {"type": "object", "additionalProperties": False, "required": ["verdict", "reasons", "lessons", "score"],
              "properties": {"verdict": {"type": "string", "enum": ["won", "lost"]},
                             "reasons": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                             "lessons": {"type": "array", "items": {"type": "string"}},
                             "score": {"type": "integer", "minimum": 1, "maximum": 10}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "trade_review", "schema": schema}}
    async with sdk(server) as client:
        for pnl, verdict in ((-42.5, "lost"), (17.0, "won")):
            trade = {"trade": {"symbol": "BTCUSDT", "pnl": pnl, "entry_reason": "rsi oversold",
                               "exit_reason": "stop loss hit"}}
            reply = await client.chat.completions.create(model=MODEL, response_format=fmt, messages=[
                {"role": "user", "content": f"Review this trade:\n```json\n{json.dumps(trade)}\n```"}])
            review = json.loads(reply.choices[0].message.content)
            jsonschema.validate(review, schema)
            assert review["verdict"] == verdict and review["score"] == 1
            assert review["reasons"] == ["entry: rsi oversold", "exit: stop loss hit"] and review["lessons"]


class Levels(BaseModel):
    support: list[float]
    resistance: list[float]


class Analysis(BaseModel):
    direction: str
    confidence: float
    reasoning: str
    key_levels: Levels
    note: str | None
    tags: list[str]


async def test_the_sdk_parse_helper_gets_a_valid_answer_for_a_pydantic_schema(start_sim_xai):
    """The SDK's strict schema from a pydantic model ($defs, $ref, anyOf with null) is filled as well."""
    server = await start_sim_xai()
    async with sdk(server) as client:
        reply = await client.chat.completions.parse(model=MODEL, messages=question(LONG), response_format=Analysis)
    parsed = reply.choices[0].message.parsed
    assert parsed.direction == "long" and parsed.confidence == 0.95 and parsed.key_levels.support == [39500.0]
    assert parsed.tags == [] and parsed.note == ""


async def test_faults_answer_as_the_real_api_fails(start_sim_xai):
    server = await start_sim_xai()
    messages = question(LONG)
    async with sdk(server) as client:
        async def ask() -> Any:
            return await client.chat.completions.create(model=MODEL, messages=messages,
                                                        response_format=ANALYSIS_FORMAT)

        assert (await set_faults(server, http_429_remaining=1, retry_after_s=7)).status_code == 200
        with pytest.raises(openai.RateLimitError) as limited:
            await ask()
        assert limited.value.response.headers["retry-after"] == "7" and limited.value.code == "rate_limit_exceeded"

        await set_faults(server, http_5xx_remaining=2, http_5xx_status=502)
        for _ in range(2):
            with pytest.raises(openai.InternalServerError) as failed:
                await ask()
            assert failed.value.status_code == 502

        await set_faults(server, down=True)
        for _ in range(2):
            with pytest.raises(openai.InternalServerError) as outage:
                await ask()
            assert outage.value.status_code == 503
        await set_faults(server, down=False)

        await set_faults(server, malformed_remaining=1)
        with pytest.raises(ValueError):
            json.loads((await ask()).choices[0].message.content)

        await set_faults(server, schema_break_remaining=1)
        broken = json.loads((await ask()).choices[0].message.content)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, ANALYSIS_SCHEMA)
        assert broken["direction"] == "sideways"

        await set_faults(server, drop_connection_remaining=1)
        with pytest.raises(openai.APIConnectionError):
            await ask()

        await set_faults(server, slow_remaining=1, slow_ms=300)
        started = time.monotonic()
        await ask()
        assert time.monotonic() - started >= 0.3
        started = time.monotonic()
        healthy = await ask()
        assert time.monotonic() - started < 0.3
        jsonschema.validate(json.loads(healthy.choices[0].message.content), ANALYSIS_SCHEMA)

    log = await sim_get(server, "/sim/requests")
    assert [(e["status"], e["fault"]) for e in log] == [
        (429, "http_429"), (502, "http_5xx"), (502, "http_5xx"), (503, "down"), (503, "down"), (200, "malformed"),
        (200, "schema_break"), (None, "drop_connection"), (200, "slow"), (200, None)]
    faults = await sim_get(server, "/sim/faults")
    assert all(faults[f"{name}_remaining"] == 0 for name in ("http_429", "http_5xx", "malformed", "slow"))


async def test_fault_settings_are_checked_and_reset(start_sim_xai):
    server = await start_sim_xai()
    async with httpx.AsyncClient(base_url=server.url) as http:
        for body, message in (({"no_such_fault": 1}, "unknown fault"), ({"down": 1}, "down must be"),
                              ({"http_429_remaining": -1}, "non-negative"), ({"http_5xx_status": 404}, "500"),
                              ({"latency_ms": "fast"}, "latency_ms"), ([1], "JSON object")):
            reply = await http.post("/sim/faults", json=body)
            assert reply.status_code == 400 and message in reply.json()["error"], reply.text
        reply = await http.post("/sim/faults", json={"malformed_remaining": 2, "down": "yes"})
        assert reply.status_code == 400
        assert (await http.get("/sim/faults")).json()["malformed_remaining"] == 0  # nothing half-applied
        await http.post("/sim/faults", json={"latency_ms": 5, "down": True})
        reset = (await http.post("/sim/faults/reset")).json()
        assert reset["down"] is False and reset["latency_ms"] == 0 and reset["retry_after_s"] == 1
        assert (await http.get("/sim/health")).json() == {"ok": True}


async def test_bad_requests_are_refused_with_openai_errors_naming_the_field(start_sim_xai):
    server = await start_sim_xai()
    chat = f"{server.base_url}/chat/completions"
    valid = {"model": MODEL, "messages": question(LONG)}
    async with httpx.AsyncClient() as http:
        for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}):
            reply = await http.post(chat, json=valid, headers=headers)
            assert reply.status_code == 401 and reply.json()["error"]["code"] == "invalid_api_key", reply.text
        auth = {"Authorization": f"Bearer {KEY}"}
        cases = [
            ({**valid, "model": "grok-99"}, 404, "model"),
            ({"messages": valid["messages"]}, 400, "model"),
            ({**valid, "messages": []}, 400, "messages"),
            ({**valid, "messages": [{"role": "robot", "content": "hi"}]}, 400, "messages[0].role"),
            ({**valid, "messages": [{"role": "tool", "content": "1"}]}, 400, "messages[0].tool_call_id"),
            ({**valid, "response_format": {"type": "xml"}}, 400, "response_format"),
            ({**valid, "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}, 400,
             "response_format.json_schema.schema"),
            ({**valid, "response_format": {"type": "json_schema", "json_schema": {
                "name": "x", "schema": {"type": "object", "properties": {"a": {"type": "nope"}}}}}}, 400,
             "response_format.json_schema.schema"),
            ({**valid, "tools": [{"type": "function", "function": {"name": "bad name"}}]}, 400,
             "tools[0].function.name"),
            ({**valid, "stop": ["\n"]}, 400, "stop"),
            ({**valid, "model": "grok-4", "presence_penalty": 0.5}, 400, "presence_penalty"),
            ({**valid, "model": "grok-4", "reasoning_effort": "high"}, 400, "reasoning_effort"),
            ({**valid, "stream": True}, 400, "stream"),
            ({**valid, "temperature": 3}, 400, "temperature"),
        ]
        for body, status, param in cases:
            reply = await http.post(chat, json=body, headers=auth)
            error = reply.json()["error"]
            assert reply.status_code == status and error["param"] == param, (body, reply.text)
            assert error["message"] and error["type"] == "invalid_request_error"
        for raw in (b"not json", b"[1, 2]"):
            reply = await http.post(chat, content=raw, headers={**auth, "Content-Type": "application/json"})
            assert reply.status_code == 400 and reply.json()["error"]["code"] == "invalid_json"
        mini = await http.post(chat, json={**valid, "model": "grok-3-mini", "stop": "\n", "reasoning_effort": "low"},
                               headers=auth)
        assert mini.status_code == 200, mini.text
        assert (await http.get(chat, headers=auth)).status_code == 405
    async with sdk(server) as client:
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="grok-4", messages=question(LONG), stop=["END"])
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="grok-0", messages=question(LONG))


async def test_only_configured_keys_pass_when_keys_are_set(start_sim_xai):
    server = await start_sim_xai(api_keys=("xai-right",))
    async with sdk(server, "xai-wrong") as client:
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model=MODEL, messages=question(LONG))
    async with sdk(server, "xai-right") as client:
        assert (await client.chat.completions.create(model=MODEL, messages=question(LONG))).choices


async def test_the_request_log_holds_no_key_and_no_message_text_and_survives_a_restart(start_sim_xai, tmp_path):
    state_dir = tmp_path / "kept"
    server = await start_sim_xai(state_dir=state_dir)
    marker = "UNIQUE-MARKER-TEXT-99"
    async with sdk(server) as client:
        await client.chat.completions.create(model=MODEL, response_format=ANALYSIS_FORMAT, messages=[
            *question(LONG), {"role": "assistant", "content": "noted"}, {"role": "user", "content": marker}])
    async with httpx.AsyncClient(base_url=server.url) as http:
        raw = (await http.get("/sim/requests")).text
        assert KEY not in raw and marker not in raw and "RSI" not in raw
        entry = json.loads(raw)[0]
        assert entry["response_format"] == "market_analysis" and entry["model"] == MODEL
        assert entry["status"] == 200 and entry["finish_reason"] == "stop" and entry["total_tokens"] > 0
        usage = (await http.get("/sim/usage")).json()
    await server.stop()
    assert KEY not in (state_dir / "ledger.json").read_text()

    again = await start_sim_xai(state_dir=state_dir)
    async with httpx.AsyncClient(base_url=again.url) as http:
        assert (await http.get("/sim/usage")).json() == usage
        assert (await http.get("/sim/requests")).json() == [entry]
        assert (await http.delete("/sim/requests")).json() == []
        assert (await http.get("/sim/requests")).json() == []
        assert (await http.delete("/sim/usage")).json()["requests"] == 0
