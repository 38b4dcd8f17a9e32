"""A dependency down: the gateway answers 503 quickly, writes nothing, and works again once it is back.

Temporal down: the paper-trading routes answer 503, the reads MongoDB serves alone still work, and
the session is as it was after the restart (its own Temporal dev server, the suite's SecantusDB, the
trading worker in-process). MongoDB down: every route that needs it, authentication included,
answers 503 rather than a 500 or a 401 (its own SecantusDB, the suite's Temporal).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from temporalio.client import Client

from worker.main import ensure_search_attributes

from ..conftest import TemporalServer, trading_worker_running
from .conftest import BTC_ACCOUNT, PASSWORD, SYMBOL, Account, candles, feed

P = "/api/paper-trading"
# The gateway gives up on an unreachable dependency after gateway_dependency_timeout_s (3 s by
# default); the rest is room for a loaded CI machine.
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
            start = {"symbols": [SYMBOL], "interval": "5m", "basic": BTC_ACCOUNT}
            assert (await http.post(P + "/start", headers=h, json=start)).status_code == 200
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
            assert (await http.get(P + "/basic-settings", headers=h)).json()["settings"]["leverage"] == 1
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


async def test_routes_answer_503_while_mongodb_is_down_and_recover(paper_settings, run_gateway, spawn_mongo):
    mongo = spawn_mongo()
    settings = paper_settings.model_copy(update={"mongo_uri": mongo.uri})
    async with run_gateway(settings) as gateway:
        http = gateway.http
        email = f"u{uuid.uuid4().hex[:10]}@example.com"
        credentials = {"email": email, "password": PASSWORD}
        assert (await http.post("/api/auth/register", json=credentials)).status_code == 201
        h = {"Authorization": f"Bearer {(await http.post('/api/auth/login', json=credentials)).json()['access_token']}"}
        assert (await http.get("/api/auth/me", headers=h)).status_code == 200

        mongo.stop()
        for method, path, body, headers in (("get", "/api/auth/me", None, h),
                                            ("post", "/api/auth/login", credentials, {}),
                                            ("get", P + "/trades/closed", None, h),
                                            ("get", P + "/basic-settings", None, h),
                                            ("put", P + "/basic-settings", {"leverage": 3}, h)):
            reply, took = await _timed(http.request(method, path, headers=headers, json=body))
            assert reply.status_code == 503, (method, path, reply.status_code, reply.text)
            assert reply.json() == {"detail": "the database could not answer; try again shortly"}, reply.text
            assert reply.headers["Retry-After"] == "5"
            assert took < ANSWER_WITHIN_S, f"{method.upper()} {path} took {took:.1f} s to give up"
        health = await http.get("/api/health")
        assert health.status_code == 503 and health.json()["dependencies"]["mongodb"]["status"] == "error"

        mongo.start()
        deadline = time.monotonic() + 60
        while (me := await http.get("/api/auth/me", headers=h)).status_code != 200:
            assert time.monotonic() < deadline, me.text
            await asyncio.sleep(0.5)
        assert me.json()["email"] == email
        assert (await http.get(P + "/basic-settings", headers=h)).json()["settings"]["leverage"] == 10
