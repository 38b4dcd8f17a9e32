"""The Backtests and Tasks tools through the MCP SDK's client over real HTTP, on the trading and ai workers:
backtests run on a candle file, read, paged and compared; tasks (backtests, training jobs, analyses) are
listed, followed, read and cancelled, a running training job among them. Each tool is called by name with
its values checked; a repeated idempotency key starts nothing new; bad arguments are tool errors; another
user's backtest or task ID finds nothing and changes nothing."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from activities.market_store import store_candles
from core.datafiles import load_candles

from .conftest import error_text, mcp_client, mint_token, new_person, raw_call, structured

REPO = Path(__file__).resolve().parents[2]
FILE = "BTCUSDT-5m-2023-01.csv.gz"
CANDLES = load_candles(REPO / "data" / "candles" / FILE)
STORED = 1000
# 20 folds of about half a second each: long enough to catch it running.
SLOW_TRAINING = {"kind": "training", "symbol": "BTCUSDT", "interval": "5m", "candles": STORED, "folds": 20,
                 "lookback": 5}
POLL_S = 0.5  # a token may make 120 calls a minute


@pytest.fixture
def mcp_settings(mcp_settings):
    """Grok not configured (no key for xAI proper): an analysis is the technical consensus alone."""
    return mcp_settings.model_copy(update={"xai_base_url": "https://api.x.ai/v1", "xai_api_key": None})


def key() -> str:
    return f"mcp-task-{uuid.uuid4().hex}"


async def until(client: Any, tool: str, arguments: dict[str, Any], done: Any, within_s: float = 60) -> Any:
    """Call ``tool`` until ``done(answer)``: the answer."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        answer = structured(await client.call_tool(tool, arguments))
        if done(answer):
            return answer
        assert asyncio.get_running_loop().time() < deadline, answer
        await asyncio.sleep(POLL_S)


def ended(answer: dict[str, Any]) -> bool:
    return answer["status"] in ("completed", "failed", "cancelled")


async def test_backtests_run_once_per_key_read_compare_and_are_the_owners_alone(mcp_gateway) -> None:
    gw = mcp_gateway
    alice, bob = await new_person(gw), await new_person(gw)
    alice_token, bob_token = await mint_token(gw, alice, "sensitive"), await mint_token(gw, bob, "sensitive")
    url = gw.settings.mcp_url

    async with mcp_client(url, alice_token) as client:
        first_key = key()
        started = structured(await client.call_tool("run_backtest", {"dataset": FILE, "idempotency_key": first_key}))
        first = started["backtest_id"]
        assert started["status"] == "queued" and started["progress"] == 0.0
        assert structured(await client.call_tool(
            "run_backtest", {"dataset": FILE, "idempotency_key": first_key}))["backtest_id"] == first
        other = await client.call_tool("run_backtest", {"dataset": FILE, "engine_settings": {"leverage": 3},
                                                        "idempotency_key": first_key})
        assert "Idempotency-Key" in error_text(other)

        # The second run as a task, with another leverage: compared below.
        task_key = key()
        spec = {"kind": "backtest", "dataset": FILE, "engine_settings": {"leverage": 3}}
        task = structured(await client.call_tool("create_task", {"task": spec, "idempotency_key": task_key}))
        assert task["kind"] == "backtest" and task["task_id"].startswith("backtest:")
        assert structured(await client.call_tool("create_task", {"task": spec, "idempotency_key": task_key})) \
            ["task_id"] == task["task_id"]
        second = task["task_id"].split(":", 1)[1]

        done = await until(client, "get_backtest_results", {"backtest_id": first}, ended)
        assert done["status"] == "completed" and done["progress"] == 1.0, done
        total = done["trades_total"]
        assert total == done["summary"]["trades"] == done["metrics"]["trades"] > 0
        assert done["metrics"]["final_equity"] == done["summary"]["final_equity"]
        assert done["report"]["parameters"] and done["trades"] is None and done["equity_curve"] is None
        full = structured(await client.call_tool("get_backtest_results", {"backtest_id": first, "full": True}))
        assert len(full["trades"]) == min(100, total) and full["equity_curve"]["equity"][-1] == \
            done["summary"]["final_equity"]
        page = structured(await client.call_tool("get_backtest_trades",
                                                 {"backtest_id": first, "limit": 5, "offset": 1}))
        assert page["total"] == total and page["items"] == full["trades"][1:6]

        status = await until(client, "get_task_status", {"task_id": task["task_id"]}, ended)
        assert status["status"] == "completed" and status["progress"] == 1.0 and status["subject"] == FILE
        result = structured(await client.call_tool("get_task_result", {"task_id": f"backtest:{first}"}))
        assert result["task"]["status"] == "completed" and result["backtest"]["metrics"] == done["metrics"]
        assert result["training"] is None and result["analysis"] is None

        compared = structured(await client.call_tool("compare_backtests", {"backtest_ids": [first, second]}))
        assert [r["backtest_id"] for r in compared["runs"]] == [first, second]
        leverage = [d for d in compared["differences"] if d["parameter"].endswith("leverage")]
        assert leverage and leverage[0]["values"][1] == 3, compared["differences"]

        listed = structured(await client.call_tool("list_backtests", {}))["result"]
        assert [b["backtest_id"] for b in listed] == [second, first]
        assert listed[1]["metrics"] == done["metrics"] and listed[1]["trades"] is None
        tasks = structured(await client.call_tool("list_tasks", {"kind": "backtest"}))["result"]
        assert [t["task_id"] for t in tasks] == [f"backtest:{second}", f"backtest:{first}"]
        assert structured(await client.call_tool("list_tasks", {"kind": "backtest", "active_only": True})) \
            ["result"] == []

        # A task that has ended is answered as it is when cancelled: its report stays.
        kept = structured(await client.call_tool("cancel_task", {"task_id": f"backtest:{first}",
                                                                 "idempotency_key": key()}))
        assert kept["status"] == "completed"

        for name, arguments in (
                ("run_backtest", {"idempotency_key": key()}),
                ("run_backtest", {"dataset": "../../etc/passwd", "idempotency_key": key()}),
                ("run_backtest", {"dataset": "NOPE-5m-2020-01.csv.gz", "idempotency_key": key()}),
                ("run_backtest", {"dataset": FILE, "engine_settings": {"leverage": 0}, "idempotency_key": key()}),
                ("run_backtest", {"dataset": FILE, "engine_settings": {"lever": 2}, "idempotency_key": key()}),
                ("run_backtest", {"dataset": FILE}),
                ("get_backtest_results", {"backtest_id": "no/such"}),
                ("get_backtest_trades", {"backtest_id": first, "limit": 0}),
                ("compare_backtests", {"backtest_ids": [first]}),
                ("compare_backtests", {"backtest_ids": [first, first]}),
                ("create_task", {"task": {"kind": "nope"}, "idempotency_key": key()}),
                ("get_task_status", {"task_id": "nope:1"}),
                ("get_task_status", {"task_id": first}),
                ("list_tasks", {"kind": "nope"})):
            assert (await client.call_tool(name, arguments)).is_error, (name, arguments)
        assert "not found" in error_text(await client.call_tool("get_backtest_results", {"backtest_id": "x" * 32}))
        assert len(structured(await client.call_tool("list_backtests", {}))["result"]) == 2

    async with mcp_client(url, bob_token) as client:
        for name, arguments in (
                ("get_backtest_results", {"backtest_id": first}),
                ("get_backtest_trades", {"backtest_id": first}),
                ("compare_backtests", {"backtest_ids": [first, second]}),
                ("get_task_status", {"task_id": f"backtest:{first}"}),
                ("get_task_result", {"task_id": f"backtest:{first}"}),
                ("cancel_task", {"task_id": f"backtest:{second}", "idempotency_key": key()})):
            text = error_text(await client.call_tool(name, arguments))
            assert "not found" in text and first not in text, (name, text)
        assert structured(await client.call_tool("list_backtests", {}))["result"] == []
        assert structured(await client.call_tool("list_tasks", {}))["result"] == []
    assert await gw.db.backtest_results.count_documents({"user_id": alice.user_id, "status": "completed"}) == 2

    # An AUTHENTICATED token reads them; starting and cancelling need SENSITIVE (403 before any tool runs).
    reader = await mint_token(gw, alice, "authenticated")
    for name in ("run_backtest", "create_task", "cancel_task"):
        refused = await raw_call(url, reader, name, {})
        assert refused.status_code == 403 and refused.json()["error"] == "insufficient_scope", (name, refused.text)
    async with mcp_client(url, reader) as client:
        assert len(structured(await client.call_tool("list_tasks", {}))["result"]) == 2


async def test_tasks_start_follow_and_cancel_a_running_job_of_the_owner_only(mcp_gateway) -> None:
    gw = mcp_gateway
    await store_candles(gw.db, CANDLES[:STORED], "5m", "test")
    alice, bob = await new_person(gw), await new_person(gw)
    alice_token, bob_token = await mint_token(gw, alice, "sensitive"), await mint_token(gw, bob, "sensitive")
    url = gw.settings.mcp_url

    async with mcp_client(url, alice_token) as client:
        # An analysis task is done when it answers (no xAI key here: the technical consensus stands alone).
        analysis_key = key()
        spec = {"kind": "analysis", "symbol": "BTCUSDT", "interval": "5m"}
        analysis = structured(await client.call_tool("create_task", {"task": spec, "idempotency_key": analysis_key}))
        assert analysis["kind"] == "analysis" and analysis["task_id"].startswith("analysis:")
        assert (analysis["status"], analysis["progress"], analysis["subject"]) == ("completed", 1.0, "BTCUSDT 5m")
        assert structured(await client.call_tool("create_task", {"task": spec, "idempotency_key": analysis_key})) \
            ["task_id"] == analysis["task_id"]
        result = structured(await client.call_tool("get_task_result", {"task_id": analysis["task_id"]}))
        answered = result["analysis"]
        assert answered["symbol"] == "BTCUSDT" and answered["open_time"] == CANDLES[STORED - 1].open_time
        assert answered["source"] == "technical" and answered["grok"]["reason"] == "not_configured"
        assert answered["signal"] == answered["technical"]["direction"]
        assert result["backtest"] is None and result["training"] is None

        # A training task, caught running and cancelled: Bob's cancel finds nothing, Alice's stops it.
        training = structured(await client.call_tool("create_task", {"task": SLOW_TRAINING,
                                                                     "idempotency_key": key()}))
        assert training["kind"] == "training" and training["status"] == "queued" and training["subject"] == \
            "BTCUSDT 5m"
        async with mcp_client(url, bob_token) as other:
            running = await until(client, "get_task_status", {"task_id": training["task_id"]},
                                  lambda t: t["progress"] > 0 or ended(t))
            assert running["status"] == "running", running
            assert "not found" in error_text(await other.call_tool(
                "cancel_task", {"task_id": training["task_id"], "idempotency_key": key()}))
            active = structured(await client.call_tool("list_tasks", {"active_only": True}))["result"]
            assert [(t["task_id"], t["status"]) for t in active] == [(training["task_id"], "running")]

        cancel = {"task_id": training["task_id"], "idempotency_key": key()}
        cancelled = structured(await client.call_tool("cancel_task", cancel))
        assert cancelled["status"] == "cancelled" and cancelled["error"] == "cancelled", cancelled
        assert 0 < cancelled["progress"] < 1
        assert structured(await client.call_tool("cancel_task", cancel)) == cancelled
        job = structured(await client.call_tool("get_task_result", {"task_id": training["task_id"]}))["training"]
        assert job["status"] == "cancelled" and job["folds_done"] < 20 and job["model"] is None

        async with mcp_client(url, bob_token) as other:
            for name, arguments in (("get_task_status", {"task_id": training["task_id"]}),
                                    ("get_task_result", {"task_id": analysis["task_id"]}),
                                    ("cancel_task", {"task_id": analysis["task_id"], "idempotency_key": key()})):
                assert "not found" in error_text(await other.call_tool(name, arguments)), (name, arguments)
            assert structured(await other.call_tool("list_tasks", {}))["result"] == []

        # An analysis that has ended stays as it is.
        kept = structured(await client.call_tool("cancel_task", {"task_id": analysis["task_id"],
                                                                 "idempotency_key": key()}))
        assert kept["status"] == "completed"

        # Temporal lists a new analysis within moments: both tasks, newest first.
        everything = await until(client, "list_tasks", {}, lambda r: len(r["result"]) == 2, within_s=15)
        assert [t["task_id"] for t in everything["result"]] == [training["task_id"], analysis["task_id"]]
        assert [t["status"] for t in everything["result"]] == ["cancelled", "completed"]
        assert structured(await client.call_tool("list_tasks", {"kind": "analysis"}))["result"] == \
            [everything["result"][1]]
        assert structured(await client.call_tool("list_tasks", {"active_only": True}))["result"] == []
        assert "not found" in error_text(await client.call_tool("get_task_status", {"task_id": "analysis:k-nothing"}))
        assert (await client.call_tool("create_task", {"task": {**SLOW_TRAINING, "folds": 1},
                                                       "idempotency_key": key()})).is_error
        assert (await client.call_tool("create_task", {"task": spec})).is_error
    assert await gw.db.training_jobs.count_documents({"user_id": alice.user_id}) == 1
