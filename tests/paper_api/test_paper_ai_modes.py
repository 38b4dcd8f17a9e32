"""A paper session with Grok's part on (``ai_mode``), through the gateway, the trading and ai workers
and sim/xai over real HTTP: every candle's decision is recorded with what it used, an outage of Grok
only means the consensus trades alone, and the session returns to Grok after it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from core.contracts import TASK_QUEUE_AI

from ..conftest import record_histories, worker_running
from .conftest import BTC_ACCOUNT, SYMBOL, candles, feed, store

XAI_KEY = "xai-session-key-9f8e7d6c5b4a"
WARM = 120  # candles of warm-up (115 with the default indicators)
# DURABOT_RECORD_AI_HISTORIES=tests/ai/histories records the replay histories of tests/ai/test_ai_replay.py.
RECORD_ENV = "DURABOT_RECORD_AI_HISTORIES"


@pytest.fixture
async def xai(start_sim_xai) -> Any:
    return await start_sim_xai()


@pytest.fixture
def paper_settings(paper_settings, xai):
    return paper_settings.model_copy(update={
        "xai_base_url": xai.base_url, "xai_api_key": SecretStr(XAI_KEY), "ai_breaker_failures": 2,
        "ai_breaker_cooldown_s": 2.0})


@pytest.fixture
async def ai_worker(paper_settings, temporal_client, mongo_client) -> AsyncIterator[Any]:
    async with worker_running(temporal_client, paper_settings, mongo_client[paper_settings.mongo_database],
                              "paper-ai-test", TASK_QUEUE_AI) as worker:
        yield worker


async def sim_faults(xai: Any, **changes: Any) -> None:
    async with httpx.AsyncClient() as http:
        reply = await http.post(f"http://127.0.0.1:{xai.port}/sim/faults", json=changes)
        assert reply.status_code == 200, reply.text


async def decisions(gateway: Any, session_id: str, first: int, last: int, count: int | None = None,
                    within_s: float = 30) -> list[dict[str, Any]]:
    """The session's decision records of these candles; with ``count``, waited for (the session writes its
    records through an outbox, so they may land a moment after it has processed the candle)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        cursor = gateway.db.ai_decisions.find({"session_id": session_id, "open_time": {"$gte": first, "$lte": last}},
                                              {"_id": 0}).sort("open_time", 1)
        found = await cursor.to_list()
        if count is None or len(found) >= count or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def test_gate_mode_trades_the_consensus_through_an_outage_and_returns_to_grok(
        gateway, ai_worker, temporal_client, sign_up, xai) -> None:
    account = await sign_up()
    started = await gateway.http.post("/api/paper-trading/start", headers=account.headers, json={
        "symbols": [SYMBOL], "interval": "5m", "basic": BTC_ACCOUNT,
        "strategy": {"ai_mode": "gate", "ai_deadline_s": 8, "min_agree": 2}})
    assert started.status_code == 200, started.text
    strategy = (await gateway.http.get("/api/paper-trading/strategy-settings", headers=account.headers)).json()
    assert strategy["settings"]["ai_mode"] == "gate", strategy

    # The candles before the first traded one are stored, so its analysis is warm at once.
    stored = candles(WARM + 130)
    await store(gateway, stored[:WARM])
    series = stored[WARM:]
    await feed(gateway, temporal_client, account, series[:80])
    before = await decisions(gateway, account.session_id, series[0].open_time, series[79].open_time, 80)
    assert len(before) == 80
    assert all(d["grok"]["outcome"] == "answered" for d in before), before[-1]
    # Grok's answers close the gate on some consensus signals: those candles decide neutral.
    for d in before:
        if d["technical"]["direction"] != "neutral" and d["grok"]["direction"] != d["technical"]["direction"]:
            assert d["decided"]["direction"] == "neutral"

    # An outage of 20 candles: every one is decided, on the consensus alone, saying why.
    await sim_faults(xai, down=True)
    await feed(gateway, temporal_client, account, series[80:100], within_s=180)
    outage = await decisions(gateway, account.session_id, series[80].open_time, series[99].open_time, 20)
    assert len(outage) == 20
    assert {d["grok"]["reason"] for d in outage} <= {"unavailable", "breaker_open"}
    assert "breaker_open" in {d["grok"]["reason"] for d in outage}
    for d in outage:
        assert d["grok"]["outcome"] == "fallback"
        assert d["decided"]["direction"] == d["technical"]["direction"]
    status = (await gateway.http.get("/api/paper-trading/status", headers=account.headers)).json()
    assert "grok" in (status["degraded"] or {}), status

    # Grok is back: after the breaker's cooldown the session asks again and trades on its answers.
    await sim_faults(xai, down=False)
    await asyncio.sleep(2.2)
    await feed(gateway, temporal_client, account, series[100:130])
    after = await decisions(gateway, account.session_id, series[100].open_time, series[129].open_time, 30)
    assert len(after) == 30 and all(d["grok"]["outcome"] == "answered" for d in after[1:]), after[:2]
    status = (await gateway.http.get("/api/paper-trading/status", headers=account.headers)).json()
    assert "grok" not in (status["degraded"] or {}), status
    await assert_key_not_in_histories(temporal_client, [account.session_id])
    assert XAI_KEY not in gateway.logs.getvalue()
    await record_histories(temporal_client, [account.session_id], RECORD_ENV)


TRADE_FIELDS = ("symbol", "side", "entry_time", "exit_time", "quantity", "entry_price", "exit_price")


async def backtest_trades(http: Any, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    started = await http.post("/api/backtests", headers=headers, json=body)
    assert started.status_code == 202, started.text
    backtest_id = started.json()["backtest_id"]
    for _ in range(600):
        doc = (await http.get(f"/api/backtests/{backtest_id}", headers=headers)).json()
        if doc["status"] in ("completed", "failed", "cancelled"):
            break
        await asyncio.sleep(0.2)
    assert doc["status"] == "completed", doc
    page = (await http.get(f"/api/backtests/{backtest_id}/trades", headers=headers, params={"limit": 500})).json()
    return {"doc": doc, "trades": page["items"]}


async def test_a_voter_session_and_a_backtest_of_its_decision_records_make_the_same_trades(
        gateway, ai_worker, temporal_client, sign_up, xai) -> None:
    account = await sign_up()
    http, h = gateway.http, account.headers
    started = await http.post("/api/paper-trading/start", headers=h, json={
        "symbols": [SYMBOL], "interval": "5m", "basic": BTC_ACCOUNT,
        "strategy": {"ai_mode": "voter", "ai_weight": 1.5, "ai_deadline_s": 3, "min_agree": 2}})
    assert started.status_code == 200, started.text
    stored = candles(WARM + 160)
    await store(gateway, stored[:WARM])
    series = stored[WARM:]
    await feed(gateway, temporal_client, account, series[:40])
    # One answer comes late (twice slower than the deadline allows): that candle decides on the fallback.
    await sim_faults(xai, slow_remaining=2, slow_ms=4000)
    await feed(gateway, temporal_client, account, series[40:41])
    await asyncio.sleep(1.5)  # the cut-off attempt ends in the worker before the next candles
    await feed(gateway, temporal_client, account, series[41:80])
    # And an outage of ten candles.
    await sim_faults(xai, down=True)
    await feed(gateway, temporal_client, account, series[80:90], within_s=180)
    await sim_faults(xai, down=False)
    await asyncio.sleep(2.2)
    await feed(gateway, temporal_client, account, series[90:160])

    records = await decisions(gateway, account.session_id, series[0].open_time, series[-1].open_time)
    assert len(records) == 160
    reasons = {r["open_time"]: r["grok"]["reason"] for r in records}
    assert reasons[series[40].open_time] == "deadline"
    assert {reasons[c.open_time] for c in series[80:90]} <= {"unavailable", "breaker_open"}
    voted = [r for r in records if r["grok"]["outcome"] == "answered"
             and r["decided"]["direction"] != r["technical"]["direction"]]
    assert voted, "Grok's vote never changed a decision: the scenario proves nothing"

    session = [r["trade"] for r in (await http.get("/api/paper-trading/trades/closed", headers=h,
                                                   params={"limit": 500})).json()]
    assert session, "the session made no trade"
    document = (await http.get("/api/paper-trading/settings/export", headers=h)).json()
    assert document["analysis"]["ai_mode"] == "voter"
    body = {"settings": document, "trade_from": series[0].open_time, "trade_to": series[-1].open_time + 1}
    replayed = await backtest_trades(http, h, {**body, "replay_ai_decisions": True})
    assert replayed["doc"]["data"]["ai_replay"] == {"session_id": account.session_id, "records_used": 160,
                                                    "candles_without_record": 0}

    def key(t: dict[str, Any]) -> tuple:
        return tuple(t[f] for f in TRADE_FIELDS)

    assert sorted(map(key, session)) == sorted(map(key, replayed["trades"]))
    # Without the records, the consensus alone trades otherwise: the replay is what made them equal.
    plain = await backtest_trades(http, h, body)
    assert plain["doc"]["data"]["ai_replay"] is None
    assert sorted(map(key, plain["trades"])) != sorted(map(key, replayed["trades"]))
    await record_histories(temporal_client, [account.session_id], RECORD_ENV)


async def ids_of(temporal_client: Any, prefix: str, user_id: str) -> list[str]:
    return [w.id async for w in temporal_client.list_workflows() if w.id.startswith(f"{prefix}{user_id}:")]


async def assert_key_not_in_histories(temporal_client: Any, workflow_ids: list[str]) -> None:
    assert workflow_ids
    for workflow_id in workflow_ids:
        async for run in temporal_client.list_workflows(f"WorkflowId = '{workflow_id}'"):
            history = await temporal_client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
            assert XAI_KEY not in history.to_json(), workflow_id


async def test_the_chat_answers_from_the_callers_own_account_only(gateway, ai_worker, temporal_client, sign_up,
                                                                  xai) -> None:
    alice, bob = await sign_up(), await sign_up()
    balances = {alice.user_id: 2.5, bob.user_id: 7.25}
    for account in (alice, bob):
        started = await gateway.http.post("/api/paper-trading/start", headers=account.headers, json={
            "symbols": [SYMBOL], "interval": "5m",
            "basic": {**BTC_ACCOUNT, "starting_balance": balances[account.user_id]}})
        assert started.status_code == 200, started.text

    for account, other in ((alice, bob), (bob, alice)):
        reply = await gateway.http.post("/api/ai/chat", headers=account.headers,
                                        json={"message": "What is my balance and equity right now?"})
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert [t["name"] for t in body["tools_used"]] == ["get_portfolio"] and body["tools_used"][0]["ok"]
        assert f"cash={balances[account.user_id]}" in body["answer"], body
        assert f"cash={balances[other.user_id]}" not in body["answer"]
        assert body["rounds"] == 2 and body["cost_usd"] > 0

    # Questions about the market go through the market tools; an unknown symbol is the tool's error.
    reply = (await gateway.http.post("/api/ai/chat", headers=alice.headers,
                                     json={"message": "Show me the latest ETHBTC candle price"})).json()
    assert [t["name"] for t in reply["tools_used"]] == ["get_candles"]
    # Bad requests change nothing and reach no one.
    for body, status in (({"message": ""}, 422), ({"message": "x", "history": [{"role": "system", "content": "y"}]},
                                                  422), ({"message": "x" * 2001}, 422)):
        assert (await gateway.http.post("/api/ai/chat", headers=alice.headers, json=body)).status_code == status
    assert (await gateway.http.post("/api/ai/chat", json={"message": "hi"})).status_code == 401
    assert XAI_KEY not in gateway.logs.getvalue()
    chats = await ids_of(temporal_client, "ai-chat:", alice.user_id)
    await assert_key_not_in_histories(temporal_client, [*chats, alice.session_id])
    await record_histories(temporal_client, chats, RECORD_ENV)


def test_a_tool_takes_only_its_own_arguments() -> None:
    from services.ai_chat import TOOLS, ToolRefused, _arguments

    tools = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
    portfolio, candles_tool = tools["get_portfolio"], tools["get_candles"]
    with pytest.raises(ToolRefused, match="takes no user_id"):
        _arguments('{"user_id": "someone-else"}', portfolio["properties"], portfolio["required"])
    with pytest.raises(ToolRefused, match="missing symbol"):
        _arguments("{}", candles_tool["properties"], candles_tool["required"])
    with pytest.raises(ToolRefused, match="limit"):
        _arguments('{"symbol": "BTCUSDT", "limit": 5000}', candles_tool["properties"], candles_tool["required"])
    with pytest.raises(ToolRefused, match="not JSON"):
        _arguments("{", portfolio["properties"], portfolio["required"])
    assert _arguments('{"symbol": "BTCUSDT", "interval": "1h"}', candles_tool["properties"],
                      candles_tool["required"]) == {"symbol": "BTCUSDT", "interval": "1h"}


async def test_a_trade_review_explains_the_trade_and_its_suggestion_goes_through_the_tiers(
        gateway, ai_worker, temporal_client, sign_up, xai) -> None:
    alice, bob = await sign_up(), await sign_up()
    http, h = gateway.http, alice.headers
    started = await http.post("/api/paper-trading/start", headers=h, json={
        "symbols": [SYMBOL], "interval": "5m", "basic": BTC_ACCOUNT, "strategy": {"min_agree": 5}})
    assert started.status_code == 200, started.text
    await feed(gateway, temporal_client, alice, candles(5))
    order = {"symbol": SYMBOL, "side": "long", "order_type": "market", "quantity": 1.0}
    assert (await http.post("/api/paper-trading/orders", headers=h, json=order)).status_code == 200
    (trade,) = (await http.get("/api/paper-trading/trades/open", headers=h)).json()
    assert (await http.post(f"/api/paper-trading/trades/{trade['trade_id']}/close", headers=h)).status_code == 200

    reply = await http.post(f"/api/ai/trade-reviews/{trade['trade_id']}", headers=h)
    assert reply.status_code == 200, reply.text
    review = reply.json()
    assert review["outcome"] == "answered" and review["review"]["verdict"] == "lost", review  # fees: a loss
    assert any("exit" in r for r in review["review"]["reasons"]) and review["cost_usd"] > 0
    (suggested,) = review["review"]["suggestions"]
    assert suggested["parameter"] == "min_confidence"
    (proposal,) = review["proposals"]
    # Asking for more confidence lowers risk: the tiers apply it at once (a riskier one would wait).
    assert (proposal["tier"], proposal["status"]) == ("NONE", "APPLIED"), proposal
    found = (await http.get(f"/api/tuning/proposals/{proposal['number']}", headers=h)).json()
    assert found["proposer"]["kind"] == "ai"
    assert found["reason"].startswith(f"Grok's review of trade {trade['trade_id']}")
    assert [r["trade_id"] for r in (await http.get("/api/ai/trade-reviews", headers=h)).json()] == [trade["trade_id"]]

    # Another user's trade, an open trade and a trade that does not exist are all "no such closed trade".
    assert (await http.post(f"/api/ai/trade-reviews/{trade['trade_id']}", headers=bob.headers)).status_code == 404
    assert (await http.post("/api/ai/trade-reviews/99999", headers=h)).status_code == 404
    assert (await http.get("/api/ai/trade-reviews", headers=bob.headers)).json() == []
    await record_histories(temporal_client, await ids_of(temporal_client, "ai-review:", alice.user_id), RECORD_ENV)
