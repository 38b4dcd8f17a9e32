"""Grok's market analysis end to end: ``/api/ai/analyze`` through the gateway, the trading and ai
workers, real Temporal and SecantusDB, and ``sim/xai`` over real HTTP. Each fault of the sim gives its
documented outcome (retry, fallback, breaker open, no signal from malformed output), costs add up
exactly to the sim's reported usage, and the xAI key is never in logs, responses or histories."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from activities.binance.key_vault import new_master_key_text
from activities.market_store import store_candles
from core.contracts import TASK_QUEUE_AI, TASK_QUEUE_TRADING
from core.datafiles import load_candles
from trading.ai_analysis import ANALYSIS_SCHEMA, cost_nano_usd, price_table

from ..conftest import record_histories, registered_and_logged_in, worker_running

REPO = Path(__file__).resolve().parents[2]
CANDLES = load_candles(REPO / "data" / "candles" / "BTCUSDT-5m-2023-01.csv.gz")
WARM = 300  # candles stored before the first analysis: the indicators are defined by then
XAI_KEY = "xai-test-key-5fb1c0d2e3a4"
PASSWORD = "correct horse battery staple"


class Stack:
    def __init__(self, gateway: Any, xai: Any, settings: Any, temporal: Any) -> None:
        self.gateway, self.xai, self.settings, self.temporal = gateway, xai, settings, temporal
        self.stored = WARM

    @property
    def http(self):
        return self.gateway.http

    async def next_candle(self) -> None:
        """Store one more candle: the next analysis asks a new question."""
        await store_candles(self.gateway.db, CANDLES[self.stored:self.stored + 1], "5m", "test")
        self.stored += 1

    async def faults(self, **changes: Any) -> None:
        async with httpx.AsyncClient() as http:
            reply = await http.post(f"http://127.0.0.1:{self.xai.port}/sim/faults", json=changes)
            assert reply.status_code == 200, reply.text

    async def sim(self, path: str) -> Any:
        async with httpx.AsyncClient() as http:
            return (await http.get(f"http://127.0.0.1:{self.xai.port}{path}")).json()

    async def analyze(self, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
        reply = await self.http.post("/api/ai/analyze", json={"symbol": "BTCUSDT", "interval": "5m", **extra},
                                     headers=headers)
        assert reply.status_code == 200, reply.text
        return reply.json()

    async def user(self) -> dict[str, str]:
        found = await registered_and_logged_in(self.http, PASSWORD)
        return {"Authorization": f"Bearer {found['access_token']}"}


@pytest.fixture
async def stack(settings, jwt_private_pem, run_gateway, temporal_client, mongo_client,
                start_sim_xai) -> AsyncIterator[Stack]:
    xai = await start_sim_xai()
    ai_settings = settings.model_copy(update={
        "jwt_private_key": SecretStr(jwt_private_pem), "master_key": SecretStr(new_master_key_text()),
        "login_attempts_per_ip": 1000, "task_queue_prefix": f"ai-{uuid.uuid4().hex[:10]}-",
        "xai_base_url": xai.base_url, "xai_api_key": SecretStr(XAI_KEY), "ai_retry_initial_s": 0.05,
        "ai_call_timeout_s": 2.0, "ai_deadline_s": 4.0, "ai_breaker_failures": 3, "ai_breaker_cooldown_s": 2.0,
    })
    db = mongo_client[ai_settings.mongo_database]
    async with AsyncExitStack() as stack:
        for role in (TASK_QUEUE_TRADING, TASK_QUEUE_AI):
            await stack.enter_async_context(worker_running(temporal_client, ai_settings, db, f"ai-{role}", role))
        gateway = await stack.enter_async_context(run_gateway(ai_settings))
        await store_candles(db, CANDLES[:WARM], "5m", "test")
        yield Stack(gateway, xai, ai_settings, temporal_client)


def expected_cost(settings: Any, prompt_tokens: int, completion_tokens: int) -> int:
    return cost_nano_usd(price_table(settings.ai_prices)[settings.xai_model], prompt_tokens, completion_tokens)


async def test_an_answer_is_structured_costed_exactly_shared_and_idempotent(stack: Stack) -> None:
    alice, bob = await stack.user(), await stack.user()
    key = {"Idempotency-Key": f"analyze-{uuid.uuid4().hex}"}
    first = await stack.analyze({**alice, **key})
    assert first["source"] == "grok" and first["grok"]["outcome"] == "answered", first
    answer = first["grok"]["answer"]
    assert set(answer) == set(ANALYSIS_SCHEMA["required"])
    assert answer["direction"] in ("long", "short", "neutral") and 0 <= answer["confidence"] <= 1
    assert first["signal"] == answer["direction"] and first["open_time"] == CANDLES[WARM - 1].open_time
    assert first["technical"] is not None and first["grok"]["cost_usd"] > 0

    # The same key again: the first result, and no second call.
    again = await stack.analyze({**alice, **key})
    assert again == first
    # Another user asking the very same question shares the answer and pays nothing.
    shared = await stack.analyze(bob)
    assert shared["grok"]["shared"] is True and shared["grok"]["cost_usd"] == 0
    assert shared["grok"]["answer"] == answer
    sim_usage = await stack.sim("/sim/usage")
    assert sim_usage["requests"] == 1

    # A new candle is a new question; the costs add up exactly to the sim's reported usage.
    await stack.next_candle()
    await stack.analyze(alice)
    sim_usage = await stack.sim("/sim/usage")
    assert sim_usage["requests"] == 2
    usage = (await stack.http.get("/api/ai/usage", headers=alice)).json()
    assert usage["user"]["prompt_tokens"] == sim_usage["prompt_tokens"]
    assert usage["user"]["completion_tokens"] == sim_usage["completion_tokens"]
    exact = expected_cost(stack.settings, sim_usage["prompt_tokens"], sim_usage["completion_tokens"])
    assert round(usage["user"]["cost_usd"] * 1e9) == exact
    assert usage["user"]["calls"] == 2 and usage["breaker"]["state"] == "closed"
    assert (await stack.http.get("/api/ai/usage", headers=bob)).json()["user"]["calls"] == 0

    signals = (await stack.http.get("/api/ai/signals/BTCUSDT", headers=bob)).json()
    assert [s["open_time"] for s in signals] == [CANDLES[WARM].open_time, CANDLES[WARM - 1].open_time]
    assert signals[1]["answer"] == answer

    # At once: three users ask the same new question, one of them twice with one key: one call to Grok.
    await stack.next_candle()
    carol = await stack.user()
    same = {**carol, "Idempotency-Key": f"analyze-{uuid.uuid4().hex}"}
    results = await asyncio.gather(stack.analyze(alice), stack.analyze(bob), stack.analyze(same), stack.analyze(same))
    assert (await stack.sim("/sim/usage"))["requests"] == 3
    assert len({json.dumps(r["grok"]["answer"], sort_keys=True) for r in results}) == 1
    assert results[2] == results[3] and sum(r["grok"]["cost_usd"] > 0 for r in results[:3]) == 1


async def test_each_fault_has_its_documented_outcome(stack: Stack) -> None:
    alice = await stack.user()
    # 429 with Retry-After: retried after the server's pause (not the 0.05 s backoff), then answered.
    await stack.faults(http_429_remaining=1, retry_after_s=1)
    answered = await stack.analyze(alice)
    assert answered["grok"]["outcome"] == "answered"
    log = [r for r in await stack.sim("/sim/requests") if r["path"].endswith("/chat/completions")]
    assert [r["status"] for r in log[-2:]] == [429, 200]
    assert log[-1]["wall_ms"] - log[-2]["wall_ms"] >= 900

    # A dropped connection is retried.
    await stack.next_candle()
    await stack.faults(drop_connection_remaining=1)
    assert (await stack.analyze(alice))["grok"]["outcome"] == "answered"

    # Malformed and schema-breaking JSON: paid for, never a signal, not retried.
    for fault in ("malformed_remaining", "schema_break_remaining"):
        await stack.next_candle()
        await stack.faults(**{fault: 1})
        result = await stack.analyze(alice)
        assert result["grok"]["outcome"] == "fallback" and result["grok"]["reason"] == "invalid_answer", result
        assert result["source"] == "technical" and result["grok"]["answer"] is None
        assert result["signal"] == result["technical"]["direction"]
        # Answered once by the sim (with the fault), never asked again.
        log = await stack.sim("/sim/requests")
        faulty = [r for r in log if r["fault"] == fault.removesuffix("_remaining")]
        assert len(faulty) == 1 and faulty[0]["seq"] == log[-1]["seq"], log[-3:]
    usage = (await stack.http.get("/api/ai/usage", headers=alice)).json()
    sim_usage = await stack.sim("/sim/usage")
    assert usage["user"]["invalid_answers"] == 2
    assert usage["user"]["prompt_tokens"] == sim_usage["prompt_tokens"]
    assert round(usage["user"]["cost_usd"] * 1e9) == expected_cost(
        stack.settings, sim_usage["prompt_tokens"], sim_usage["completion_tokens"])

    # A success ends the failures in a row (two invalid answers) before the breaker opens.
    await stack.next_candle()
    assert (await stack.analyze(alice))["grok"]["outcome"] == "answered"
    # Answers slower than the call timeout, twice: the second attempt runs past the deadline.
    await stack.next_candle()
    await stack.faults(slow_remaining=2, slow_ms=5000)
    late = await stack.analyze(alice)
    assert late["grok"]["reason"] == "deadline" and late["source"] == "technical", late


async def test_the_breaker_opens_on_failures_and_closes_after_a_trial(stack: Stack) -> None:
    alice = await stack.user()
    # Three 500s (the attempts of one ask) open the breaker (3 failures in a row).
    await stack.faults(http_5xx_remaining=3, http_5xx_status=500)
    failed = await stack.analyze(alice)
    assert failed["grok"]["reason"] == "unavailable" and "500" in failed["grok"]["detail"], failed
    health = (await stack.http.get("/api/health")).json()
    assert health["dependencies"]["ai"]["status"] == "error" and "open" in health["dependencies"]["ai"]["detail"]
    usage = (await stack.http.get("/api/ai/usage", headers=alice)).json()
    assert usage["breaker"]["state"] == "open" and usage["breaker"]["failures"] == 3

    # While open, nothing reaches Grok.
    await stack.next_candle()
    before = len(await stack.sim("/sim/requests"))
    resting = await stack.analyze(alice)
    assert resting["grok"]["reason"] == "breaker_open" and resting["source"] == "technical"
    assert len(await stack.sim("/sim/requests")) == before

    # After the cooldown one trial call goes through and closes it.
    await asyncio.sleep(stack.settings.ai_breaker_cooldown_s + 0.2)
    assert (await stack.analyze(alice))["grok"]["outcome"] == "answered"
    assert (await stack.http.get("/api/ai/usage", headers=alice)).json()["breaker"]["state"] == "closed"
    assert (await stack.http.get("/api/health")).json()["dependencies"]["ai"]["status"] == "ok"


async def test_over_budget_falls_back_and_the_key_never_leaks(stack: Stack, mongo_client) -> None:
    alice, bob = await stack.user(), await stack.user()
    await stack.analyze(alice)  # spends something
    db = mongo_client[stack.settings.mongo_database]
    assert (await db.ai_spend.find_one({"scope": {"$regex": "^user:"}}))["nano_usd"] > 0
    # Alice's day is over her $1 budget: her next question falls back without a call.
    await db.ai_spend.update_one({"scope": {"$regex": "^user:"}}, {"$set": {"nano_usd": 10**9}})
    await stack.next_candle()
    before = (await stack.sim("/sim/usage"))["requests"]
    over = await stack.analyze(alice)
    assert over["grok"]["reason"] == "over_budget" and "budget" in over["grok"]["detail"], over
    assert (await stack.sim("/sim/usage"))["requests"] == before
    # Bob's own budget is untouched.
    assert (await stack.analyze(bob))["grok"]["outcome"] == "answered"

    # The key: not in the gateway's logs, the responses above, or any analysis workflow's history.
    assert XAI_KEY not in stack.gateway.logs.getvalue()
    scanned, analyses = 0, []
    async for wf in stack.temporal.list_workflows():
        if not wf.id.startswith("ai-analysis:"):
            continue
        scanned += 1
        analyses.append(wf.id)
        history = await stack.temporal.get_workflow_handle(wf.id, run_id=wf.run_id).fetch_history()
        assert XAI_KEY not in json.dumps(history.to_json_dict())
    assert scanned >= 3
    await record_histories(stack.temporal, analyses, "DURABOT_RECORD_AI_HISTORIES")


async def test_bad_requests_are_refused_and_change_nothing(stack: Stack) -> None:
    alice = await stack.user()
    cases = [
        ({"symbol": "BTC/USDT"}, 422),
        ({"symbol": "BTCUSDT", "interval": "7m"}, 422),
        ({"symbol": "BTCUSDT", "extra": 1}, 422),
        ({"symbol": "DOGEUSDT"}, 404),
    ]
    for body, status in cases:
        reply = await stack.http.post("/api/ai/analyze", json=body, headers=alice)
        assert reply.status_code == status, (body, reply.text)
    assert (await stack.http.post("/api/ai/analyze", json={"symbol": "BTCUSDT"})).status_code == 401
    assert (await stack.http.get("/api/ai/signals/BTCUSDT", params={"limit": 0}, headers=alice)).status_code == 422
    assert (await stack.sim("/sim/usage"))["requests"] == 0


async def test_a_refused_request_is_not_retried_and_never_echoes_the_key(settings, mongo_client, start_sim_xai) -> None:
    """Another 4xx than 429 (here the sim refuses the key) proves retrying gives the same answer: the
    attempt fails for good at once (Temporal's retry policy never sees a retryable error), and the
    server's reason is not passed on, since a 401 may echo the key."""
    from temporalio.exceptions import ApplicationError
    from temporalio.testing import ActivityEnvironment

    from activities.grok import GrokActivities
    from core.ai_contracts import GROK_REFUSED, AskGrokInput

    xai = await start_sim_xai(api_keys=("the-only-key-the-sim-takes",))
    ai_settings = settings.model_copy(update={"xai_base_url": xai.base_url, "xai_api_key": SecretStr(XAI_KEY)})
    db = mongo_client[ai_settings.mongo_database]
    await db.ai_analysis_results.insert_one({
        "analysis_key": "technical-1", "symbol": "BTCUSDT", "interval": "5m", "open_time": CANDLES[0].open_time,
        "warming_up": False, "direction": "long", "confidence": 0.6, "reason": "long: 3 of 5 agree",
        "verdicts": [], "indicators": {"rsi": 25.0, "macd_histogram": 1.0, "bb_percent_b": 0.1}})
    grok = GrokActivities(db, ai_settings)
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(grok.ask_grok, AskGrokInput("u1", "technical-1"))
    assert refused.value.type == GROK_REFUSED and refused.value.non_retryable
    assert "401" in refused.value.message and XAI_KEY not in refused.value.message
    async with httpx.AsyncClient() as http:
        log = (await http.get(f"http://127.0.0.1:{xai.port}/sim/requests")).json()
    assert [r["status"] for r in log] == [401]
    breaker = await db.ai_breakers.find_one({"model": ai_settings.xai_model})
    assert breaker["failures"] == 1 and breaker["state"] == "closed"
