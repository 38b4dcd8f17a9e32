"""Issue 7 end to end: the real `durabot up`, one user's default paper session on the real replay,
and REST and `/ws` telling the same story of its trades and its account.

The stack is `durabot up` as a subprocess (as in tests/foundation/test_up.py), on free ports and a
fresh var dir, with the sim replaying at ``SIM_SPEED`` times real time (a 5-minute candle every
0.1 s) so a few trades happen within a minute or two of market data.

Settings: the product's default consensus (3 of 5 strategies) trades about once every 300 candles on
the replayed BTCUSDT data, too rarely for a test of minutes, so the test sets ``min_agree`` 2 through
``PUT /strategy-settings`` before the start (about one trade every 50 candles; stops, take profits and
every other setting stay the defaults). ``POST /start`` goes without a body: symbols, interval and
source are the defaults (the first stream of ``DURABOT_FEED_STREAMS``).

Why the portfolio comparison holds: ``PositionUpdate`` is published only by steps that open or close
something, so while a position is open the account moves (unrealised PnL, funding) with no event.
Once the session is stopped and its positions are closed (by the test, over REST), nothing moves the
account any more (no position, no funding, no entries), so the last ``PositionUpdate`` must equal
what REST reports, and the status query's equity too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import httpx
import pytest
import websockets

from ..conftest import with_key
from .conftest import ACCOUNT_CHANNELS, AccountFeed, Up, poll, sign_up

MIN_TRADES = 3
TRADES_TIMEOUT_S = 150.0
QUIET_S = 3.0

pytestmark = pytest.mark.timeout(420)


def ws_trades(feed: AccountFeed) -> tuple[dict[int, dict], dict[int, dict], dict[int, list[dict]]]:
    """(opened positions, closed trades, partial closes) by trade ID, as /ws told them."""
    opened: dict[int, dict] = {}
    closed: dict[int, dict] = {}
    parts: dict[int, list[dict]] = {}
    for frame in feed.events("TradeExecuted"):
        data = frame["data"]
        if data["action"] == "open":
            assert data["position"]["trade_id"] not in opened, f"trade opened twice: {frame}"
            opened[data["position"]["trade_id"]] = data["position"]
        elif data["action"] == "close":
            assert data["trade"]["id"] not in closed, f"trade closed twice: {frame}"
            closed[data["trade"]["id"]] = data["trade"]
        else:
            parts.setdefault(data["trade"]["id"], []).append(data["trade"])
    return opened, closed, parts


async def test_default_paper_session_rest_and_ws_agree(tmp_path, stack_env):
    env, ports = stack_env
    gateway_port = ports["GATEWAY_PORT"]
    base = f"http://127.0.0.1:{gateway_port}"
    up = Up(env, tmp_path)
    reader: asyncio.Task | None = None
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            await up.wait_healthy(http)
            user_id, token = await sign_up(http)
            http.headers["Authorization"] = f"Bearer {token}"
            session_id = f"session:{user_id}:paper"
            changed = await http.put("/api/paper-trading/strategy-settings", json={"min_agree": 2})
            assert changed.status_code == 200 and changed.json()["settings"]["min_agree"] == 2, changed.text

            async with websockets.connect(f"ws://127.0.0.1:{gateway_port}/ws?token={token}") as sock:
                feed = AccountFeed(sock)
                reader = asyncio.create_task(feed.read())
                await sock.send(json.dumps({"type": "Subscribe", "channels": ACCOUNT_CHANNELS}))
                subscribed = await feed.wait_for(lambda f: f["type"] in ("Subscribed", "Error"))
                assert subscribed["type"] == "Subscribed", subscribed

                started = await http.post("/api/paper-trading/start")
                assert started.status_code == 200, started.text
                status = started.json()
                assert (status["session_id"], status["status"], status["symbols"], status["interval"]) == (
                    session_id, "running", ["BTCUSDT"], "5m"), status

                async def enough_trades() -> list[dict] | None:
                    rows = (await http.get("/api/paper-trading/trades/closed", params={"limit": 500})).json()
                    return rows if len(rows) >= MIN_TRADES else None

                await poll(enough_trades, TRADES_TIMEOUT_S, f"{MIN_TRADES} closed trades", up)
                stopped = await http.post("/api/paper-trading/stop")
                assert stopped.status_code == 200 and stopped.json()["status"] == "stopped", stopped.text
                await feed.wait_for(lambda f: f["type"] == "BotStatusUpdate" and f["data"]["status"] == "stopped")

                # Open positions agree before they are closed: what REST holds, /ws opened and not closed.
                async def open_ids_agree() -> bool:
                    rest = {p["trade_id"] for p in (await http.get("/api/paper-trading/trades/open")).json()}
                    opened, closed, _ = ws_trades(feed)
                    return rest == set(opened) - set(closed)

                await poll(open_ids_agree, 30, "open positions on REST and /ws to agree", up, interval=0.5)

                # Stopped sessions keep managing exits; close what is left so the account stops moving.
                for position in (await http.get("/api/paper-trading/trades/open")).json():
                    closing = await http.post(f"/api/paper-trading/trades/{position['trade_id']}/close",
                                              headers=with_key())
                    # 404: its stop or take profit closed it in between, which is as good.
                    assert closing.status_code in (200, 404), closing.text

                async def settled() -> dict | None:
                    rest_open = (await http.get("/api/paper-trading/trades/open")).json()
                    rows = (await http.get("/api/paper-trading/trades/closed", params={"limit": 500})).json()
                    opened, closed, _ = ws_trades(feed)
                    if rest_open or set(closed) != {r["trade_id"] for r in rows} or set(opened) != set(closed):
                        return None
                    count = len(feed.account_events())
                    await asyncio.sleep(QUIET_S)
                    return {"rows": rows} if len(feed.account_events()) == count else None

                settled_state = await poll(settled, 60, "the stopped session to go quiet", up, interval=0.5)
                rows = settled_state["rows"]
                portfolio = (await http.get("/api/paper-trading/portfolio")).json()
                final_status = (await http.get("/api/paper-trading/status")).json()
                reader.cancel()
    finally:
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await reader
        up.stop()

    opened, closed, parts = ws_trades(feed)
    assert len(rows) >= MIN_TRADES
    rest_closed = {r["trade_id"]: r["trade"] for r in rows}
    assert rest_closed == closed, "closed trades differ between REST and /ws"
    assert all(r["symbol"] == "BTCUSDT" and r["trade"]["symbol"] == "BTCUSDT" for r in rows)
    assert {r["trade_id"]: r["partial_closes"] for r in rows if r["partial_closes"]} == parts
    for trade_id, position in opened.items():
        trade = closed[trade_id]
        assert (position["side"], position["entry_time"], position["entry_price"]) == (
            trade["side"], trade["entry_time"], trade["entry_price"]), trade_id
    for frame in feed.events("TradeExecuted"):
        data = frame["data"]
        key = f"{data['position']['trade_id']}:open" if data["action"] == "open" else (
            f"{data['trade']['id']}:" + ("close" if data["action"] == "close" else "part:"))
        assert frame["event_key"].startswith(f"TradeExecuted:{session_id}:{key}"), frame

    updates = feed.events("PositionUpdate")
    assert updates and all(u["data"]["session_id"] == session_id for u in updates)
    assert portfolio["positions"] == [] and portfolio["status"] == "stopped"
    assert portfolio["account"] == updates[-1]["data"]["account"], "REST portfolio != last PositionUpdate"
    assert portfolio["account"]["open_positions"] == 0
    assert final_status["equity"] == portfolio["account"]["equity"] == portfolio["account"]["cash"]
    assert final_status["trades_closed"] == len(rows) and not final_status["entries_enabled"]
    statuses = [f["data"]["status"] for f in feed.events("BotStatusUpdate")]
    assert statuses[-1] == "stopped" and "running" in statuses, statuses
