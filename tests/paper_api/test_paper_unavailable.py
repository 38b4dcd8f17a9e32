"""Temporal down: the paper-trading routes answer 503 quickly, write nothing, and work again once it
is back, with the session as it was.

Its own Temporal dev server (the suite's shared one must stay up), the suite's SecantusDB, the gateway
on a real socket and the trading worker in-process.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from temporalio.client import Client

from worker.main import ensure_search_attributes

from ..conftest import TemporalServer, trading_worker_running
from .conftest import PASSWORD, SYMBOL, Account, candles, feed

P = "/api/paper-trading"
# The gateway gives up on an unreachable Temporal after gateway_temporal_retry_s (3 s by default);
# the rest is room for a loaded CI machine.
ANSWER_WITHIN_S = 6.0


async def _documents(db, account: Account) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for name in ("paper_trading_trades", "paper_trading_settings", "paper_trading_accounts", "portfolio_history"):
        found[name] = [d async for d in db[name].find({"user_id": account.user_id}, {"_id": 0}).sort("_id", 1)]
    return found


async def _timed(request) -> tuple[Any, float]:
    started = time.monotonic()
    reply = await request
    return reply, time.monotonic() - started


async def test_routes_answer_503_while_temporal_is_down_and_recover(tmp_path, paper_settings, run_gateway,
                                                                    mongo_client):
    temporal = TemporalServer(tmp_path / "temporal")
    temporal.start()
    try:
        client = await Client.connect(temporal.address)
        await ensure_search_attributes(client, "default")
        settings = paper_settings.model_copy(update={"temporal_address": temporal.address})
        db = mongo_client[settings.mongo_database]
        async with trading_worker_running(client, settings, db, "outage-test"), run_gateway(settings) as gateway:
            http = gateway.http
            email = f"u{uuid.uuid4().hex[:10]}@example.com"
            registered = await http.post("/api/auth/register", json={"email": email, "password": PASSWORD})
            login = await http.post("/api/auth/login", json={"email": email, "password": PASSWORD})
            account = Account(registered.json()["user_id"], email, login.json()["access_token"])
            h = account.headers
            assert (await http.post(P + "/start", headers=h, json={"symbols": [SYMBOL], "interval": "5m"})
                    ).status_code == 200
            before_status = await feed(gateway, client, account, candles(30))
            before = await _documents(db, account)

            temporal.stop()
            order = {"symbol": SYMBOL, "side": "long", "order_type": "market", "quantity": 1.0}
            for method, path, body in (("get", "/status", None), ("get", "/portfolio", None),
                                       ("get", "/trades/open", None), ("post", "/orders", order),
                                       ("put", "/basic-settings", {"leverage": 3}), ("post", "/stop", None)):
                reply, took = await _timed(http.request(method, P + path, headers=h, json=body))
                assert reply.status_code == 503, (method, path, reply.status_code, reply.text)
                assert reply.json()["detail"].startswith("the session could not answer"), reply.text
                assert took < ANSWER_WITHIN_S, f"{method.upper()} {path} took {took:.1f} s to give up"
            # Reads that MongoDB answers alone still work; nothing was written.
            assert (await http.get(P + "/trades/closed", headers=h)).status_code == 200
            assert (await http.get(P + "/basic-settings", headers=h)).json()["settings"]["leverage"] == 10
            health = await http.get("/api/health")
            assert health.status_code == 503, health.text
            assert health.json()["dependencies"]["temporal"]["status"] == "error", health.text
            assert await _documents(db, account) == before

            temporal.start()
            deadline = time.monotonic() + 60
            while (status := await http.get(P + "/status", headers=h)).status_code != 200:
                assert time.monotonic() < deadline, status.text
                await asyncio.sleep(0.5)
            again = status.json()
            assert (again["status"], again["last_open_time"], again["equity"]) == (
                before_status["status"], before_status["last_open_time"], before_status["equity"])
            placed = await http.post(P + "/orders", headers=h, json=order)
            assert placed.status_code == 200 and len(placed.json()["fills"]) == 1, placed.text
    finally:
        temporal.stop()
