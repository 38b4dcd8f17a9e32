"""/api/paper-trading and /api/backtests end to end: a gateway on a real socket, a trading worker,
real Temporal and SecantusDB, candles fed to the session by signal.

Bad input is a 4xx naming the field, and changes nothing: the status, the portfolio and the pending
orders are compared before and after. Closing a trade that is closed already is a 404 (it is no
open trade of the caller's), like an unknown trade ID.
"""

from __future__ import annotations

import asyncio
from typing import Any

from trading.analysis import AnalysisSettings, warmup_candles

from .conftest import BTC_ACCOUNT, DATASET, SYMBOL, candles, feed

P = "/api/paper-trading"
ENGINE = {"slippage_bps": 1.0, **BTC_ACCOUNT}
STRATEGY = {"min_agree": 2}


async def _state(gateway, account) -> dict[str, Any]:
    out = {}
    for path in ("/status", "/portfolio", "/pending-orders", "/trades/open", "/trades/closed", "/basic-settings",
                 "/strategy-settings", "/indicator-settings"):
        reply = await gateway.http.get(P + path, headers=account.headers)
        assert reply.status_code == 200, (path, reply.text)
        out[path] = reply.json()
    return out


async def _rejected(reply, field: str | None, status: int = 422) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    body = reply.json()
    if field is not None:
        assert body["detail"]["field"] == field, body
        assert body["detail"]["reason"], body
    return body


async def test_a_session_through_the_api(gateway, sign_up, temporal_client):
    alice = await sign_up()
    http, h = gateway.http, alice.headers

    # Before any write: a "new" session that does not exist yet, default settings, a fresh account.
    status = (await http.get(P + "/status", headers=h)).json()
    assert status["status"] == "new" and status["exists"] is False and status["session_id"] == alice.session_id
    portfolio = (await http.get(P + "/portfolio", headers=h)).json()
    assert portfolio["account"]["equity"] == 10_000.0 and portfolio["positions"] == []
    assert (await http.get(P + "/basic-settings", headers=h)).json()["settings"]["leverage"] == 10
    assert (await http.get(P + "/trades/open", headers=h)).json() == []
    await _rejected(await http.post(P + "/trigger-analysis", headers=h), None)
    assert (await http.get(P + "/status", headers=h)).json()["exists"] is False, "a read created the session"

    started = await http.post(P + "/start", headers=h, json={"symbols": [SYMBOL], "interval": "5m", "basic": ENGINE,
                                                             "strategy": STRATEGY})
    assert started.status_code == 200, started.text
    assert started.json()["status"] == "running" and started.json()["symbols"] == [SYMBOL]
    await _rejected(await http.post(P + "/start", headers=h, json={"symbols": [SYMBOL]}), None)

    # Past the warm-up, so the analysis gives signals.
    warm = warmup_candles(AnalysisSettings.from_dict(STRATEGY))
    fed = candles(warm + 15)
    status = await feed(gateway, temporal_client, alice, fed)
    assert status["candles_processed"] == len(fed)
    history = (await http.get(P + "/signals-history", headers=h, params={"limit": 5})).json()
    assert len(history["items"]) == 5 and history["next_before"] == history["items"][-1]["open_time"]
    assert history["items"][0]["open_time"] == fed[-1].open_time and history["items"][0]["verdicts"]
    older = (await http.get(P + "/signals-history", headers=h,
                            params={"limit": 5, "before": history["next_before"]})).json()
    assert older["items"][0]["open_time"] < history["next_before"]
    latest = (await http.get(P + "/latest-signals", headers=h)).json()
    assert [s["open_time"] for s in latest] == [fed[-1].open_time]
    triggered = await http.post(P + "/trigger-analysis", headers=h)
    assert triggered.status_code == 200, triggered.text
    assert [a["open_time"] for a in triggered.json()["analyses"]] == [fed[-1].open_time]
    assert (await http.get(P + "/status", headers=h)).json()["candles_processed"] == len(fed), "analysis traded"
    # Close what the signals opened, so the manual checks below start flat.
    for position in (await http.get(P + "/trades/open", headers=h)).json():
        assert (await http.post(f"{P}/trades/{position['trade_id']}/close", headers=h)).status_code == 200

    # Bad orders and settings: 422 naming the field, nothing changed.
    before = await _state(gateway, alice)
    price = fed[-1].close
    order = {"symbol": SYMBOL, "side": "long", "order_type": "market", "quantity": 1.0}
    for quantity in (0, -1):
        await _rejected(await http.post(P + "/orders", headers=h, json={**order, "quantity": quantity}), "quantity")
    nan_body = '{"symbol": "ETHBTC", "side": "long", "order_type": "market", "quantity": NaN}'
    await _rejected(await http.post(P + "/orders", headers={**h, "Content-Type": "application/json"},
                                    content=nan_body), "quantity")
    await _rejected(await http.post(P + "/orders", headers=h, json={**order, "quantity": 200_000 / price}),
                    "quantity")
    await _rejected(await http.post(P + "/orders", headers=h, json={**order, "symbol": "LTCBTC"}), "symbol")
    await _rejected(await http.post(P + "/orders", headers=h, json={**order, "order_type": "limit"}), "limit_price")
    await _rejected(await http.put(P + "/basic-settings", headers=h, json={"leverage": 0}), "leverage")
    await _rejected(await http.put(P + "/basic-settings", headers=h, json={"risk": {"max_daily_loss_pct": 0}}),
                    "risk.max_daily_loss_pct")
    await _rejected(await http.put(P + "/basic-settings", headers=h, json={"lever": 5}), "lever")
    await _rejected(await http.put(P + "/strategy-settings", headers=h, json={"min_agree": 9}), "min_agree")
    await _rejected(await http.put(P + "/indicator-settings", headers=h, json={"rsi": {"oversold": 90}}),
                    "rsi.oversold")
    await _rejected(await http.put(P + "/settings", headers=h, json={}), None)
    await _rejected(await http.put(P + "/symbols", headers=h, json={"symbols": ["ethbtc"]}), "symbols.0")
    await _rejected(await http.put(P + "/signal-interval", headers=h, json={"interval": "5m"}), "interval")
    await _rejected(await http.post(P + "/trades/999/close", headers=h), None, 404)
    await _rejected(await http.delete(P + "/pending-orders/999", headers=h), None, 404)
    await _rejected(await http.get(P + "/trade-analyses/999", headers=h), None, 404)
    # The settings dry run gives the field and reason the write would, and writes nothing either way.
    for body, field in (({"basic": {"leverage": 0}}, "leverage"),
                        ({"basic": {"risk": {"max_daily_loss_pct": 0}}}, "risk.max_daily_loss_pct"),
                        ({"strategy": {"min_agree": 9}}, "min_agree"),
                        ({"indicators": {"rsi": {"oversold": 90}}}, "rsi.oversold"), ({}, None)):
        put = await http.put(P + "/settings", headers=h, json=body)
        check = await http.post(P + "/settings/check", headers=h, json=body)
        assert put.status_code == 422 and check.status_code == 200, (body, put.text, check.text)
        assert put.json()["detail"]["field"] == field, put.text
        assert check.json() == {"valid": False, "field": field, "reason": put.json()["detail"]["reason"]}
    check = await http.post(P + "/settings/check", headers=h, json={"basic": {"slippage_bps": 2.0}})
    assert check.json() == {"valid": True, "field": None, "reason": None}, check.text
    await _rejected(await http.post(P + "/settings/check", headers=h, json={"basic": {"lever": 5}}), "basic.lever")
    assert await _state(gateway, alice) == before, "a rejected request changed the session"

    # A resting order and its cancel; a second cancel is a 404.
    placed = await http.post(P + "/orders", headers=h, json={**order, "order_type": "limit", "quantity": 2.0,
                                                             "limit_price": price * 0.5})
    assert placed.status_code == 200 and placed.json()["order"] is not None, placed.text
    order_id = placed.json()["order"]["id"]
    assert [o["id"] for o in (await http.get(P + "/pending-orders", headers=h)).json()] == [order_id]
    assert (await http.delete(f"{P}/pending-orders/{order_id}", headers=h)).json()["id"] == order_id
    assert (await http.get(P + "/pending-orders", headers=h)).json() == []
    await _rejected(await http.delete(f"{P}/pending-orders/{order_id}", headers=h), None, 404)

    # Ten quick round trips: fees far above the gross PnL make the fee rule suggest fewer trades.
    for _ in range(10):
        filled = await http.post(P + "/orders", headers=h, json={**order, "quantity": 3.0})
        assert filled.status_code == 200 and len(filled.json()["fills"]) == 1, filled.text
        (position,) = (await http.get(P + "/trades/open", headers=h)).json()
        closed = await http.post(f"{P}/trades/{position['trade_id']}/close", headers=h)
        assert closed.status_code == 200 and closed.json()["close_reason"] == "manual", closed.text
    await _rejected(await http.post(f"{P}/trades/{position['trade_id']}/close", headers=h), None, 404)
    rows = (await http.get(P + "/trades/closed", headers=h, params={"limit": 10})).json()
    assert len(rows) == 10 and rows[0]["trade_id"] == position["trade_id"]
    analyses = (await http.get(P + "/trade-analyses", headers=h, params={"limit": 3})).json()
    assert len(analyses) == 3 and analyses[0]["trade_id"] == position["trade_id"]
    one = (await http.get(f"{P}/trade-analyses/{position['trade_id']}", headers=h)).json()
    assert one["review"]["close_reason"] == "manual" and one["review"]["manual_entry"] is True
    assert one["review"]["verdict"].startswith("closed by hand with a loss")
    suggestions = (await http.get(P + "/config-suggestions", headers=h)).json()
    assert {(s["rule"], s["parameter"], s["tier"]) for s in suggestions} >= {
        ("fees_eat_profit", "min_confidence", "NONE")}, suggestions
    latest_set = (await http.get(P + "/config-suggestions/latest", headers=h)).json()
    assert latest_set["trades_considered"] >= 10 and latest_set["suggestions"] == suggestions
    assert (await http.get(P + "/config-suggestions", headers=h, params={"tier": "RED"})).json() == []

    # Settings round trips; indicator parameters merge into the current ones.
    put = await http.put(P + "/basic-settings", headers=h,
                         json={"stop_loss_pct": 3.0, "risk": {"cooldown_minutes": 30}})
    assert put.status_code == 200, put.text
    basic = (await http.get(P + "/basic-settings", headers=h)).json()["settings"]
    assert basic["stop_loss_pct"] == 3.0 and basic["risk"]["cooldown_minutes"] == 30 and basic["slippage_bps"] == 1.0
    assert (await http.put(P + "/strategy-settings", headers=h, json={"min_agree": 3})).status_code == 200
    assert (await http.get(P + "/strategy-settings", headers=h)).json()["settings"]["min_agree"] == 3
    assert (await http.put(P + "/indicator-settings", headers=h, json={"rsi": {"length": 10}})).status_code == 200
    rsi = (await http.get(P + "/indicator-settings", headers=h)).json()["settings"]["rsi"]
    assert rsi == {"length": 10, "oversold": 30.0, "overbought": 70.0}
    both = await http.put(P + "/settings", headers=h, json={"basic": {"take_profit_pct": 5.0},
                                                            "strategy": {"min_agree": 2},
                                                            "indicators": {"macd": {"fast": 10}}})
    assert both.status_code == 200, both.text
    assert (both.json()["basic"]["take_profit_pct"], both.json()["strategy"]["min_agree"],
            both.json()["indicators"]["macd"]["fast"]) == (5.0, 2, 10)

    # Symbols and interval.
    assert (await http.put(P + "/symbols", headers=h, json={"symbols": [SYMBOL, "LTCBTC"]})).status_code == 200
    assert (await http.get(P + "/symbols", headers=h)).json()["symbols"] == [SYMBOL, "LTCBTC"]
    assert (await http.put(P + "/symbols", headers=h, json={"symbols": [SYMBOL]})).status_code == 200
    moved = await http.put(P + "/signal-interval", headers=h, json={"interval": "15m"})
    assert moved.status_code == 200 and moved.json()["interval"] == "15m", moved.text

    # Stop, then reset: a fresh account; the earlier account's trades stay, under generation 0.
    assert (await http.post(P + "/stop", headers=h)).json()["status"] == "stopped"
    await _rejected(await http.post(P + "/stop", headers=h), None)
    done = await http.post(P + "/reset", headers=h)
    assert done.status_code == 200, done.text
    assert done.json()["status"]["status"] == "new" and done.json()["status"]["generation"] == 1
    portfolio = (await http.get(P + "/portfolio", headers=h)).json()
    assert portfolio["account"]["equity"] == 10_000.0 and portfolio["account"]["open_positions"] == 0
    assert len((await http.get(P + "/trades/closed", headers=h, params={"generation": 0})).json()) >= 10
    assert (await http.get(P + "/trades/closed", headers=h, params={"generation": 1})).json() == []


async def test_backtests_run_and_report(gateway, sign_up):
    alice = await sign_up()
    http, h = gateway.http, alice.headers
    data = candles(400)
    body = {"dataset": DATASET, "analysis_settings": {"min_agree": 2}, "engine_settings": {"leverage": 5},
            "trade_to": data[-1].open_time}
    started = await http.post("/api/backtests", headers=h, json=body)
    assert started.status_code == 202, started.text
    backtest_id = started.json()["backtest_id"]
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        doc = (await http.get(f"/api/backtests/{backtest_id}", headers=h)).json()
        if doc["status"] in ("completed", "failed"):
            break
        assert asyncio.get_running_loop().time() < deadline, doc
        await asyncio.sleep(0.2)
    assert doc["status"] == "completed", doc
    assert doc["progress"] == 1.0 and doc["summary"]["candles_traded"] == len(data) - 1
    assert doc["settings"]["engine"]["leverage"] == 5 and doc["settings"]["analysis"]["min_agree"] == 2
    assert isinstance(doc["trades"], list) and doc["equity_curve"]["equity"]
    listed = (await http.get("/api/backtests", headers=h)).json()
    assert [b["backtest_id"] for b in listed] == [backtest_id] and listed[0]["trades"] is None

    # Bad requests: a 422 naming the field, and nothing recorded.
    for bad, field in (({}, "dataset"),
                       ({"dataset": DATASET, "market_data": {"symbol": SYMBOL, "interval": "5m", "start": 0,
                                                             "end": 1}}, "dataset"),
                       ({"dataset": "nope.csv.gz"}, "dataset"),
                       ({"dataset": "../secrets.csv"}, "dataset"),
                       ({"dataset": DATASET, "trade_from": 10, "trade_to": 5}, "trade_from"),
                       ({"dataset": DATASET, "engine_settings": {"leverage": 500}}, "engine_settings.leverage"),
                       ({"dataset": DATASET, "analysis_settings": {"min_agree": 0}}, "analysis_settings.min_agree"),
                       ({"market_data": {"symbol": SYMBOL, "interval": "5m", "start": 5, "end": 1}}, "market_data")):
        await _rejected(await http.post("/api/backtests", headers=h, json=bad), field)
    assert len((await http.get("/api/backtests", headers=h)).json()) == 1
    await _rejected(await http.get("/api/backtests/nope", headers=h), None, 404)
