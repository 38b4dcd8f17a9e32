"""The AI tools through the MCP SDK's client over real HTTP: Grok's analysis, chat and trade review
against sim/xai, recent answers and spend, and price models trained on stored BTCUSDT candles by the
ai worker. Each tool is called by name with its values checked; a repeated idempotency key spends
nothing more; bad arguments are tool errors; another user's job and trade are not found."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from activities.market_store import store_candles
from core.contracts import SIGNAL_CANDLE_CLOSED, CandleClosed, session_workflow_id
from core.datafiles import load_candles

from .conftest import XAI_KEY, error_text, mcp_client, mint_token, new_person, raw_call, structured

REPO = Path(__file__).resolve().parents[2]
CANDLES = load_candles(REPO / "data" / "candles" / "BTCUSDT-5m-2023-01.csv.gz")
STORED = 600  # past the indicators' warm-up, and enough for a small model
TRAINING = {"symbol": "BTCUSDT", "interval": "5m", "candles": 500, "folds": 3, "lookback": 5, "horizon": 1}


@pytest.fixture
async def xai(start_sim_xai) -> Any:
    return await start_sim_xai()


@pytest.fixture
def mcp_settings(mcp_settings, xai):
    return mcp_settings.model_copy(update={
        "xai_base_url": xai.base_url, "xai_api_key": SecretStr(XAI_KEY), "ai_retry_initial_s": 0.05,
        "ai_call_timeout_s": 2.0, "ai_deadline_s": 4.0})


def key() -> str:
    return f"mcp-ai-{uuid.uuid4().hex}"


async def grok_requests(xai: Any) -> int:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"http://127.0.0.1:{xai.port}/sim/usage")).json()["requests"]


async def closed_paper_trade(gw: Any, temporal_client: Any, person: Any) -> int:
    """A manual paper trade opened and closed through REST by the person: its trade ID."""
    http, headers = gw.http, person.headers
    started = await http.post("/api/paper-trading/start", headers=headers,
                              json={"symbols": ["BTCUSDT"], "interval": "5m"})
    assert started.status_code == 200, started.text
    handle = temporal_client.get_workflow_handle(session_workflow_id(person.user_id))
    fed = CANDLES[STORED - 3:STORED]
    for c in fed:
        await handle.signal(SIGNAL_CANDLE_CLOSED, CandleClosed("test", c.symbol, "5m", c.open_time, c.close_time,
                                                               c.open, c.high, c.low, c.close, c.volume))
    for _ in range(300):
        status = (await http.get("/api/paper-trading/status", headers=headers)).json()
        if status["last_open_time"].get("BTCUSDT@5m") == fed[-1].open_time and status["queued"] == 0:
            break
        await asyncio.sleep(0.1)
    order = {"symbol": "BTCUSDT", "side": "long", "order_type": "market", "quantity": 0.01}
    placed = await http.post("/api/paper-trading/orders", headers=headers, json=order)
    assert placed.status_code == 200, placed.text
    (trade,) = (await http.get("/api/paper-trading/trades/open", headers=headers)).json()
    closed = await http.post(f"/api/paper-trading/trades/{trade['trade_id']}/close", headers=headers)
    assert closed.status_code == 200, closed.text
    return int(trade["trade_id"])


async def test_grok_tools_answer_once_per_key_and_only_about_the_callers_account(
        mcp_gateway, xai, temporal_client) -> None:
    gw = mcp_gateway
    await store_candles(gw.db, CANDLES[:STORED], "5m", "test")
    alice, bob = await new_person(gw), await new_person(gw)
    trade_id = await closed_paper_trade(gw, temporal_client, alice)
    alice_token, bob_token = await mint_token(gw, alice, "sensitive"), await mint_token(gw, bob, "sensitive")
    url = gw.settings.mcp_url

    async with mcp_client(url, alice_token) as client:
        # An analysis: the consensus, then Grok's view; the same key again is the same answer and no new call.
        same = key()
        first = structured(await client.call_tool("analyze_market", {"symbol": "btcusdt", "idempotency_key": same}))
        assert first["symbol"] == "BTCUSDT" and first["interval"] == "5m"
        assert first["open_time"] == CANDLES[STORED - 1].open_time
        assert first["source"] == "grok" and first["grok"]["outcome"] == "answered", first
        assert first["signal"] == first["grok"]["answer"]["direction"] and first["grok"]["cost_usd"] > 0
        assert first["technical"]["direction"] in ("long", "short", "neutral")
        asked = await grok_requests(xai)
        again = structured(await client.call_tool("analyze_market", {"symbol": "BTCUSDT", "idempotency_key": same}))
        assert again == first and await grok_requests(xai) == asked

        found = structured(await client.call_tool("get_ai_signals", {"symbol": "BTCUSDT", "interval": "5m"}))["result"]
        assert [s["open_time"] for s in found] == [first["open_time"]]
        assert found[0]["answer"] == first["grok"]["answer"] and found[0]["model"] == first["grok"]["model"]

        # A chat about the caller's own account: Grok used the portfolio tool and quotes its cash.
        question = {"message": "What is my balance and equity right now?", "idempotency_key": key()}
        chat = structured(await client.call_tool("chat_with_ai", question))
        assert [t["name"] for t in chat["tools_used"]] == ["get_portfolio"] and chat["tools_used"][0]["ok"]
        assert "cash=" in chat["answer"] and chat["rounds"] == 2 and chat["cost_usd"] > 0, chat
        asked = await grok_requests(xai)
        assert structured(await client.call_tool("chat_with_ai", question)) == chat
        assert await grok_requests(xai) == asked

        # A review of the closed trade: Grok's verdict, and its suggestions become tuning proposals.
        review_key = key()
        review = structured(await client.call_tool("review_trade_with_ai",
                                                   {"trade_id": trade_id, "idempotency_key": review_key}))
        assert review["trade_id"] == trade_id and review["symbol"] == "BTCUSDT" and review["outcome"] == "answered"
        assert review["review"]["verdict"] in ("won", "lost") and review["cost_usd"] > 0
        assert len(review["proposals"]) == len(review["review"]["suggestions"])
        asked = await grok_requests(xai)
        repeated = structured(await client.call_tool("review_trade_with_ai",
                                                      {"trade_id": trade_id, "idempotency_key": review_key}))
        assert repeated["review"] == review["review"] and await grok_requests(xai) == asked
        reviews = structured(await client.call_tool("list_ai_trade_reviews", {}))["result"]
        assert [r["trade_id"] for r in reviews] == [trade_id]

        spent = structured(await client.call_tool("get_ai_usage", {}))
        assert spent["configured"] is True and spent["breaker"]["state"] == "closed"
        assert spent["user"]["calls"] == await grok_requests(xai) == 4  # analysis, 2 chat rounds, review
        assert spent["global"]["cost_usd"] >= spent["user"]["cost_usd"] > 0

        # Bad arguments are tool errors, and reach no one.
        for name, arguments in (
                ("analyze_market", {"symbol": "BTC/USDT", "idempotency_key": key()}),
                ("analyze_market", {"symbol": "BTCUSDT", "interval": "7m", "idempotency_key": key()}),
                ("analyze_market", {"symbol": "BTCUSDT", "idempotency_key": "short"}),
                ("analyze_market", {"symbol": "BTCUSDT"}),
                ("chat_with_ai", {"message": "", "idempotency_key": key()}),
                ("chat_with_ai", {"message": "hi", "history": [{"role": "system", "content": "x"}],
                                  "idempotency_key": key()}),
                ("review_trade_with_ai", {"trade_id": 0, "idempotency_key": key()}),
                ("get_ai_signals", {"symbol": "BTCUSDT", "limit": 500})):
            assert (await client.call_tool(name, arguments)).is_error, (name, arguments)
        assert "no stored DOGEUSDT 5m candles" in error_text(
            await client.call_tool("analyze_market", {"symbol": "DOGEUSDT", "idempotency_key": key()}))
        assert "not found" in error_text(
            await client.call_tool("review_trade_with_ai", {"trade_id": 99_999, "idempotency_key": key()}))
        assert await grok_requests(xai) == 4

    async with mcp_client(url, bob_token) as client:
        # Alice's trade is no trade of Bob's, and her reviews and spend are not his.
        assert "not found" in error_text(
            await client.call_tool("review_trade_with_ai", {"trade_id": trade_id, "idempotency_key": key()}))
        assert structured(await client.call_tool("list_ai_trade_reviews", {}))["result"] == []
        assert structured(await client.call_tool("get_ai_usage", {}))["user"]["calls"] == 0
    assert await grok_requests(xai) == 4


async def follow_job(client: Any, job_id: str, within_s: float = 60) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        job = structured(await client.call_tool("get_training_job", {"job_id": job_id}))
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        assert asyncio.get_running_loop().time() < deadline, job
        await asyncio.sleep(0.2)


async def test_a_price_model_trains_predicts_and_is_the_owners_alone(mcp_gateway) -> None:
    gw = mcp_gateway
    await store_candles(gw.db, CANDLES[:STORED], "5m", "test")
    alice, bob = await new_person(gw), await new_person(gw)
    alice_token, bob_token = await mint_token(gw, alice, "sensitive"), await mint_token(gw, bob, "sensitive")
    url = gw.settings.mcp_url

    async with mcp_client(url, alice_token) as client:
        missing = await client.call_tool("predict_price", {"symbol": "BTCUSDT"})
        assert "no trained model of yours for BTCUSDT 5m" in error_text(missing)

        train_key = key()
        started = structured(await client.call_tool("train_price_model", {**TRAINING, "idempotency_key": train_key}))
        job_id = started["job_id"]
        assert started["status"] == "queued" and started["symbol"] == "BTCUSDT" and started["folds_total"] == 3
        again = structured(await client.call_tool("train_price_model", {**TRAINING, "idempotency_key": train_key}))
        assert again["job_id"] == job_id
        other = await client.call_tool("train_price_model", {**TRAINING, "folds": 4, "idempotency_key": train_key})
        assert "Idempotency-Key" in error_text(other)

        job = await follow_job(client, job_id)
        assert job["status"] == "completed" and job["progress"] == 1.0 and job["folds_done"] == 3, job
        assert job["model_version"] == f"{job_id}@{CANDLES[STORED - 1].open_time}" and job["model"]["weights"]
        listed = structured(await client.call_tool("list_training_jobs", {}))["result"]
        assert [j["job_id"] for j in listed] == [job_id] and listed[0]["model"] is None
        assert listed[0]["scores"]["skill"] == job["scores"]["skill"]

        prediction = structured(await client.call_tool("predict_price", {"symbol": "BTCUSDT", "interval": "5m"}))
        assert prediction["job_id"] == job_id and prediction["model_version"] == job["model_version"]
        assert prediction["from_open_time"] == CANDLES[STORED - 1].open_time and prediction["horizon"] == 1
        assert prediction["predicted_close"] == pytest.approx(
            CANDLES[STORED - 1].close * (1 + prediction["predicted_return"]))

        # Cancelling a completed job answers it as it is: the model stays.
        kept = structured(await client.call_tool("cancel_training_job", {"job_id": job_id, "idempotency_key": key()}))
        assert kept["status"] == "completed" and kept["model_version"] == job["model_version"]

        for arguments in ({**TRAINING, "folds": 1}, {**TRAINING, "interval": "7m"}, {**TRAINING, "ridge": 0},
                          {**TRAINING, "candles": 10}, {k: v for k, v in TRAINING.items() if k != "symbol"}):
            assert (await client.call_tool("train_price_model", {**arguments, "idempotency_key": key()})).is_error
        assert "no stored ETHBTC 5m candles" in error_text(await client.call_tool(
            "train_price_model", {**TRAINING, "symbol": "ETHBTC", "idempotency_key": key()}))
        assert (await client.call_tool("get_training_job", {"job_id": "../x"})).is_error
        assert await gw.db.training_jobs.count_documents({"user_id": alice.user_id}) == 1

    async with mcp_client(url, bob_token) as client:
        for name, arguments in (("get_training_job", {"job_id": job_id}),
                                ("cancel_training_job", {"job_id": job_id, "idempotency_key": key()}),
                                ("predict_price", {"symbol": "BTCUSDT"})):
            text = error_text(await client.call_tool(name, arguments))
            assert "not found" in text and job_id not in text, (name, text)
        assert structured(await client.call_tool("list_training_jobs", {}))["result"] == []
    assert (await gw.db.training_jobs.find_one({"job_id": job_id}))["status"] == "completed"

    # An AUTHENTICATED token reads; what spends or cancels needs SENSITIVE (403 before any tool runs).
    reader = await mint_token(gw, alice, "authenticated")
    for name in ("analyze_market", "chat_with_ai", "review_trade_with_ai", "train_price_model", "cancel_training_job"):
        refused = await raw_call(url, reader, name, {})
        assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope", (name, refused.text)
    async with mcp_client(url, reader) as client:
        assert [j["job_id"] for j in structured(await client.call_tool("list_training_jobs", {}))["result"]] == [job_id]
