"""Object-level authorisation over every /api/paper-trading, /api/backtests, /api/tuning,
/api/ai/training-jobs and /api/ai/trade-reviews route and /api/ai/predictions: user B aims each at
user A's session, trades, orders, backtest, tuning proposals, snapshot, training job and price model.

Routes come from the OpenAPI schema, so a new route joins the suite by itself. For a route with an
ID, a success is any 2xx; for every route, a success is any change to A's documents or A's session
state, or a reply that carries A's IDs (B's own session answering B is not a success). A 5xx fails
the suite too. Positive controls: the same ID requests by A succeed.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from activities.market_store import store_candles
from core.contracts import TASK_QUEUE_AI
from core.datafiles import load_candles
from tests.conftest import enrol_two_factor, worker_running
from workflows.trading_session import TradingSessionWorkflow

from .conftest import BTC_ACCOUNT, CANDLES, DATASET, SYMBOL, candles, feed

PATH_PARAM = re.compile(r"\{([^}]+)\}")
PREFIXES = ("/api/paper-trading", "/api/backtests", "/api/tuning", "/api/ai/training-jobs", "/api/ai/predictions",
            "/api/ai/trade-reviews")
T = "/api/tuning/proposals/{number}"
P = "/api/paper-trading"
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("put", f"{P}/settings"): {"basic": {"stop_loss_pct": 3.0}},
    ("post", f"{P}/settings/check"): {"basic": {"stop_loss_pct": 3.0}},
    ("put", f"{P}/basic-settings"): {"stop_loss_pct": 3.0},
    ("put", f"{P}/strategy-settings"): {"min_agree": 2},
    ("put", f"{P}/indicator-settings"): {"rsi": {"length": 12}},
    ("put", f"{P}/symbols"): {"symbols": [SYMBOL]},
    ("post", f"{P}/start"): {"symbols": [SYMBOL], "interval": "5m", "basic": BTC_ACCOUNT},
    ("post", f"{P}/orders"): {"symbol": SYMBOL, "side": "long", "order_type": "market", "quantity": 1.0},
    ("put", f"{P}/signal-interval"): {"interval": "15m"},
    ("post", "/api/backtests"): {"dataset": DATASET, "trade_to": candles(1, 300)[0].open_time},
    ("post", f"{T}/reject"): {"reason": "not mine to reject"},
    ("post", "/api/ai/training-jobs"): {"symbol": SYMBOL, "interval": "5m"},  # B: too few stored candles
}
TRAINED = "LTCBTC"  # A's price model is of this symbol (5m)


@pytest.fixture
async def ai_worker(gateway, temporal_client):
    """The ai worker, which runs A's training job."""
    async with worker_running(temporal_client, gateway.settings, gateway.db, "cross-user-ai", TASK_QUEUE_AI) as worker:
        yield worker


def _url(path: str, ids: dict[str, str]) -> str:
    return PATH_PARAM.sub(lambda m: ids[m.group(1)], path)


def _routes(schema: dict[str, Any]) -> list[tuple[str, str]]:
    routes = [(method, path) for path, ops in schema["paths"].items() if path.startswith(PREFIXES)
              for method in ops if method in ("get", "post", "put", "patch", "delete")]
    # B starts its own session first (so its later writes reach a live session) and resets it last.
    return sorted(routes, key=lambda r: (r[1] != f"{P}/start", r[1] == f"{P}/reset", r))


async def _state_of(gateway, temporal_client, account) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for name in sorted(await gateway.db.list_collection_names()):
        if name in ("audit_logs", "events", "sessions"):
            continue
        docs = [d async for d in gateway.db[name].find({"user_id": account.user_id}, {"_id": 0, "updated_at": 0})
                .sort("created_at", 1)]
        if docs:
            state[name] = docs
    handle = temporal_client.get_workflow_handle_for(TradingSessionWorkflow.run, account.session_id)
    state["workflow"] = await handle.query(TradingSessionWorkflow.snapshot)
    return state


async def _objects_of(gateway, temporal_client, account) -> dict[tuple[str, str], dict[str, str]]:
    http, h = gateway.http, account.headers
    assert (await http.post(f"{P}/start", headers=h, json=BODIES[("post", f"{P}/start")])).status_code == 200
    fed = candles(20)
    await feed(gateway, temporal_client, account, fed)
    order = {"symbol": SYMBOL, "side": "long", "order_type": "market", "quantity": 1.0}
    first = await http.post(f"{P}/orders", headers=h, json=order)
    assert first.status_code == 200, first.text
    (closing,) = (await http.get(f"{P}/trades/open", headers=h)).json()
    assert (await http.post(f"{P}/trades/{closing['trade_id']}/close", headers=h)).status_code == 200
    assert (await http.post(f"{P}/orders", headers=h, json=order)).status_code == 200
    (open_trade,) = (await http.get(f"{P}/trades/open", headers=h)).json()
    resting = await http.post(f"{P}/orders", headers=h, json={**order, "order_type": "limit",
                                                              "limit_price": fed[-1].close / 2})
    assert resting.status_code == 200, resting.text
    backtest = await http.post("/api/backtests", headers=h, json=BODIES[("post", "/api/backtests")])
    assert backtest.status_code == 202, backtest.text
    backtest_id = backtest.json()["backtest_id"]
    for _ in range(300):
        doc = (await http.get(f"/api/backtests/{backtest_id}", headers=h)).json()
        if doc["status"] == "completed":
            break
        await asyncio.sleep(0.2)
    assert doc["status"] == "completed", doc
    # A trained price model (a completed training job): its job and the prediction it serves.
    await store_candles(gateway.db, load_candles(CANDLES / f"{TRAINED}-5m-2018-01.csv.gz")[:200], "5m", "test")
    job = await http.post("/api/ai/training-jobs", headers=h, json={"symbol": TRAINED, "interval": "5m",
                                                                    "candles": 200, "folds": 2, "lookback": 2})
    assert job.status_code == 202, job.text
    for _ in range(300):
        trained = (await http.get(f"/api/ai/training-jobs/{job.json()['job_id']}", headers=h)).json()
        if trained["status"] == "completed":
            break
        await asyncio.sleep(0.2)
    assert trained["status"] == "completed", trained
    # Tuning: a snapshot, and a proposal awaiting A for each approval route (its positive control uses it).
    snapshot = await http.post("/api/tuning/snapshots", headers=h, json={"name": "a"})
    assert snapshot.status_code == 201, snapshot.text
    proposals = {}
    for route, change in (("approve", {"take_profit_pct": 6.0}), ("approve-text", {"risk.risk_per_trade_pct": 2.0}),
                          ("reject", {"fixed_notional": 100.0}), ("token", {"stop_loss_pct": 3.0})):
        made = await http.post("/api/tuning/proposals", headers=h, json={"changes": change})
        assert made.status_code == 201 and made.json()["proposal"]["status"] == "AWAITING", made.text
        proposals[route] = made.json()
    BODIES[("post", f"{T}/approve")] = {"token": proposals["approve"]["approval_token"]}
    BODIES[("post", f"{T}/approve-text")] = {"text": proposals["approve-text"]["proposal"]["approval_text"]}
    ids = {"trade_id": str(open_trade["trade_id"]), "order_id": str(resting.json()["order"]["id"]),
           "backtest_id": backtest_id, "snapshot_id": snapshot.json()["snapshot_id"],
           "number": str(proposals["token"]["proposal"]["number"]), "job_id": trained["job_id"], "symbol": TRAINED}
    return {("get", f"{P}/trade-analyses/{{trade_id}}"): {**ids, "trade_id": str(closing["trade_id"])},
            ("post", "/api/ai/trade-reviews/{trade_id}"): {**ids, "trade_id": str(closing["trade_id"])},
            **{("post", f"{T}/{route}"): {**ids, "number": str(made["proposal"]["number"])}
               for route, made in proposals.items()},
            ("default", ""): ids}


async def test_no_user_can_read_or_change_another_users_paper_trading(gateway, sign_up, temporal_client, ai_worker):
    alice, bob = await sign_up(), await sign_up()
    # Both have two-factor on and are stepped up, so a RED approval by B meets ownership, not step-up.
    totp = await enrol_two_factor(gateway.http, alice.headers)
    await enrol_two_factor(gateway.http, bob.headers)
    objects = await _objects_of(gateway, temporal_client, alice)
    routes = _routes((await gateway.http.get("/openapi.json")).json())
    assert len(routes) >= 45, routes
    secrets = {alice.user_id, alice.session_id, objects[("default", "")]["backtest_id"], alice.email,
               objects[("default", "")]["job_id"]}

    before = await _state_of(gateway, temporal_client, alice)
    outcomes = {}
    for method, path in routes:
        ids = objects.get((method, path), objects[("default", "")])
        unknown = [p for p in PATH_PARAM.findall(path) if p not in ids]
        assert not unknown, f"{method.upper()} {path}: teach this suite which object {unknown} names"
        url = _url(path, ids)
        reply = await gateway.http.request(method, url, headers=bob.headers, json=BODIES.get((method, path)))
        outcomes[f"{method.upper()} {path}"] = reply.status_code
        assert reply.status_code < 500, (method, path, reply.text)
        if PATH_PARAM.search(path):
            assert reply.status_code == 404, (method, path, reply.status_code, reply.text)
        leaked = [s for s in secrets if s in reply.text]
        assert not leaked, (method, path, leaked, reply.text[:500])
        assert await _state_of(gateway, temporal_client, alice) == before, f"{method.upper()} {path} changed A"
    # B's own writes did reach B's own session (the suite exercised live sessions, not just 404s).
    assert outcomes[f"POST {P}/start"] == 200 and outcomes[f"PUT {P}/basic-settings"] == 200, outcomes

    # Positive controls: the ID requests by their owner succeed, so the 404s above were about ownership
    # (deletes last: deleting the backtest would make the reads of it 404).
    stepped = await gateway.http.post("/api/auth/2fa/step-up", headers=alice.headers, json={"code": totp.recovery[0]})
    assert stepped.status_code == 200, stepped.text
    for method, path in sorted(routes, key=lambda r: r[0] == "delete"):
        if not PATH_PARAM.search(path):
            continue
        ids = objects.get((method, path), objects[("default", "")])
        url = _url(path, ids)
        reply = await gateway.http.request(method, url, headers=alice.headers, json=BODIES.get((method, path)))
        assert 200 <= reply.status_code < 300, (method, path, reply.status_code, reply.text)
