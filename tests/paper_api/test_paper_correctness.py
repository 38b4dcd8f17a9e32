"""Paper trading books the right money and refuses what an exchange would refuse.

Symbols are checked against the exchange (the sim exchange here, as Binance in production): a futures
account trades only USDⓈ-M perpetuals in its currency, a spot account only symbols quoted in its
currency; the market type and the currency change only on a fresh account. Every refusal names the
field and the reason, and changes nothing.
"""

from __future__ import annotations

from typing import Any

import httpx

from .conftest import BTC_ACCOUNT, SYMBOL, candles, feed

P = "/api/paper-trading"


async def _rejected(reply, field: str | None, *words: str, status: int = 422) -> str:
    assert reply.status_code == status, reply.text
    detail = reply.json()["detail"]
    assert detail["field"] == field, detail
    for word in words:
        assert word in detail["reason"], detail
    return detail["reason"]


async def _snapshot(http, headers) -> dict[str, Any]:
    out = {}
    for path in ("/status", "/portfolio", "/pending-orders", "/trades/open", "/basic-settings", "/symbols"):
        reply = await http.get(P + path, headers=headers)
        assert reply.status_code == 200, (path, reply.text)
        out[path] = reply.json()
    return out


async def test_the_exchange_lists_symbols_with_their_filters(gateway):
    http = gateway.http
    futures = {s["symbol"]: s for s in (await http.get("/api/market/symbols")).json()}
    assert "BTCUSDT" in futures and SYMBOL not in futures, "USDⓈ-M lists no BTC-quoted contract"
    btc = futures["BTCUSDT"]
    assert btc["market"] == "futures" and btc["quote_asset"] == "USDT" and btc["tick_size"] > 0
    assert btc["price_decimals"] == round(-__import__("math").log10(btc["tick_size"]))
    spot = {s["symbol"]: s for s in (await http.get("/api/market/symbols", params={"market": "spot"})).json()}
    assert spot[SYMBOL]["quote_asset"] == "BTC" and spot[SYMBOL]["min_notional"] > 0
    only_btc = (await http.get("/api/market/symbols", params={"market": "spot", "quote_asset": "BTC"})).json()
    assert {s["symbol"] for s in only_btc} == {SYMBOL, "LTCBTC"}
    one = await http.get(f"/api/market/symbols/{SYMBOL}", params={"market": "spot"})
    assert one.status_code == 200 and one.json() == spot[SYMBOL]
    missing = await http.get("/api/market/symbols/FOOBAR")
    assert missing.status_code == 404 and "FOOBAR is not listed" in missing.json()["detail"]
    await _rejected(await http.get("/api/market/symbols", params={"market": "margin"}), "market")


async def test_symbols_are_checked_against_the_exchange_and_the_account_currency(gateway, sign_up):
    alice = await sign_up()
    http, h = gateway.http, alice.headers
    before = await _snapshot(http, h)
    # The default account: USDT, USDⓈ-M perpetuals.
    await _rejected(await http.post(P + "/start", headers=h, json={"symbols": ["BTCUSDT", "FOOBAR"]}),
                    "symbols", "FOOBAR is not listed")
    await _rejected(await http.post(P + "/start", headers=h, json={"symbols": [SYMBOL]}),
                    "symbols", f"{SYMBOL} is not listed on the exchange's USDⓈ-M perpetuals")
    # A spot account in USDT: ETHBTC is listed there, but quoted in BTC.
    await _rejected(await http.post(P + "/start", headers=h, json={"symbols": [SYMBOL], "basic": {
        "market": "spot", "leverage": 1}}), "symbols", "quoted in BTC", "this account is in USDT")
    assert await _snapshot(http, h) == before, "a refused start changed the session"

    # A BTC account trades the alt/BTC set, with the exchange's filters.
    started = await http.post(P + "/start", headers=h, json={"symbols": [SYMBOL], "interval": "5m",
                                                             "basic": BTC_ACCOUNT})
    assert started.status_code == 200, started.text
    basic = (await http.get(P + "/basic-settings", headers=h)).json()["settings"]
    assert basic["account_currency"] == "BTC" and basic["market"] == "spot"
    [spec] = basic["symbols"]
    listed = (await http.get(f"/api/market/symbols/{SYMBOL}", params={"market": "spot"})).json()
    assert (spec["symbol"], spec["tick_size"], spec["step_size"], spec["min_notional"], spec["quote_asset"]) == (
        SYMBOL, listed["tick_size"], listed["step_size"], listed["min_notional"], "BTC")

    running = await _snapshot(http, h)
    await _rejected(await http.put(P + "/symbols", headers=h, json={"symbols": [SYMBOL, "FOOBAR"]}),
                    "symbols", "FOOBAR is not listed on the exchange's spot market")
    await _rejected(await http.put(P + "/symbols", headers=h, json={"symbols": [SYMBOL, "BTCUSDT"]}),
                    "symbols", "BTCUSDT is quoted in USDT", "this account is in BTC")
    # Market type and currency are what the balance is in: they change only with a reset.
    await _rejected(await http.put(P + "/basic-settings", headers=h, json={"market": "futures", "leverage": 5}),
                    "market", "changes only with a reset")
    await _rejected(await http.put(P + "/basic-settings", headers=h, json={"account_currency": "USDT"}),
                    "account_currency", "changes only with a reset")
    check = (await http.post(P + "/settings/check", headers=h, json={"basic": {"account_currency": "USDT"}})).json()
    assert check["valid"] is False and check["field"] == "account_currency", check
    assert await _snapshot(http, h) == running, "a refused write changed the session"

    # A second symbol of the same currency comes with its own filters.
    added = await http.put(P + "/symbols", headers=h, json={"symbols": [SYMBOL, "LTCBTC"]})
    assert added.status_code == 200, added.text
    basic = (await http.get(P + "/basic-settings", headers=h)).json()["settings"]
    assert sorted(s["symbol"] for s in basic["symbols"]) == sorted([SYMBOL, "LTCBTC"])

    # After a reset the account may become a USDT futures account, and trade BTCUSDT there.
    assert (await http.post(P + "/stop", headers=h)).status_code == 200
    assert (await http.post(P + "/reset", headers=h)).status_code == 200
    usdt = await http.post(P + "/start", headers=h, json={"symbols": ["BTCUSDT"], "basic": {
        "market": "futures", "account_currency": "USDT", "leverage": 5}})
    assert usdt.status_code == 200, usdt.text
    basic = (await http.get(P + "/basic-settings", headers=h)).json()["settings"]
    assert (basic["market"], basic["account_currency"], [s["symbol"] for s in basic["symbols"]]) == (
        "futures", "USDT", ["BTCUSDT"])


async def _exchange_price(sim, symbol: str) -> float:
    """The price a market order fills at: the exchange's last price (24-hour ticker) right now."""
    async with httpx.AsyncClient() as client:
        reply = await client.get(f"{sim.rest_url}/api/v3/ticker/24hr", params={"symbol": symbol})
    return float(reply.json()["lastPrice"])


async def test_orders_pass_the_exchange_filters_and_keep_their_brackets(gateway, sign_up, temporal_client,
                                                                        exchange_sim):
    alice = await sign_up()
    http, h = gateway.http, alice.headers
    started = await http.post(P + "/start", headers=h, json={"symbols": [SYMBOL], "interval": "5m",
                                                             "basic": {**BTC_ACCOUNT, "starting_balance": 10.0}})
    assert started.status_code == 200, started.text
    fed = candles(5)
    await feed(gateway, temporal_client, alice, fed)
    spec = (await http.get(P + "/basic-settings", headers=h)).json()["settings"]["symbols"][0]
    price = await _exchange_price(exchange_sim, SYMBOL)
    before = await _snapshot(http, h)
    order = {"symbol": SYMBOL, "side": "long", "order_type": "market", "quantity": 1.0}

    await _rejected(await http.post(P + "/orders", headers=h, json={**order, "quantity": 1e-9}),
                    "quantity", "below the minimum")
    tiny = spec["min_notional"] / price / 4
    await _rejected(await http.post(P + "/orders", headers=h, json={**order, "quantity": round(tiny, 3) or 0.001}),
                    "quantity", "notional")
    # Stops on the wrong side of the price, and absurd prices.
    await _rejected(await http.post(P + "/orders", headers=h, json={**order, "stop_loss": price * 1.05}),
                    "stop_loss", "below")
    await _rejected(await http.post(P + "/orders", headers=h, json={**order, "stop_loss": 1e300}),
                    "stop_loss")
    await _rejected(await http.post(P + "/orders", headers=h, json={**order, "take_profit": price * 0.95}),
                    "take_profit", "above")
    limit = {**order, "order_type": "limit", "limit_price": price * 0.9}
    await _rejected(await http.post(P + "/orders", headers=h, json={**limit, "stop_loss": price * 0.95}),
                    "stop_loss", "below")
    # A margin problem is named as one.
    await _rejected(await http.post(P + "/orders", headers=h, json={**order, "quantity": 1_000_000}),
                    "quantity", "insufficient balance")
    assert await _snapshot(http, h) == before, "a refused order changed the session"

    # An order that adds to a position applies its brackets to the whole position, and says so.
    opened = await http.post(P + "/orders", headers=h, json={**order, "stop_loss": round(price * 0.9, 6)})
    assert opened.status_code == 200, opened.text
    [position] = (await http.get(P + "/trades/open", headers=h)).json()
    added = await http.post(P + "/orders", headers=h, json={**order, "stop_loss": round(price * 0.8, 6),
                                                            "take_profit": round(price * 1.3, 6)})
    assert added.status_code == 200, added.text
    [position] = (await http.get(P + "/trades/open", headers=h)).json()
    assert position["quantity"] == 2.0
    assert (position["stop_loss"], position["take_profit"]) == (round(price * 0.8, 6), round(price * 1.3, 6))
    # Quantities keep to the step size.
    odd = await http.post(P + "/orders", headers=h, json={**order, "quantity": 1.0004})
    assert odd.status_code == 200, odd.text
    [position] = (await http.get(P + "/trades/open", headers=h)).json()
    steps = position["quantity"] / spec["step_size"]
    assert abs(steps - round(steps)) < 1e-6, position


async def test_every_setting_has_a_documented_range_named_as_users_see_it(gateway, sign_up):
    alice = await sign_up()
    http, h = gateway.http, alice.headers
    catalog = (await http.get(P + "/settings/schema", headers=h)).json()
    by_path = {s["path"]: s for s in catalog}
    assert by_path["rsi.length"] == {**by_path["rsi.length"], "label": "RSI length", "section": "indicators",
                                     "kind": "integer", "minimum": 2, "maximum": 100, "unit": "candles"}
    assert by_path["market"]["choices"] == ["futures", "spot"] and by_path["leverage"]["maximum"] == 125
    assert all(s["label"] and s["section"] in ("basic", "strategy", "indicators") for s in catalog)
    before = await _snapshot(http, h)
    for body, field, reason in (
        ({"indicators": {"rsi": {"length": 100_000}}}, "rsi.length",
         "RSI length must be a whole number from 2 to 100 candles, got 100000"),
        ({"strategy": {"weights": {"rsi": 1e308}}}, "weights", "Strategy weight must be a number above 0"),
        ({"basic": {"starting_balance": 1e308}}, "starting_balance", "Starting balance must be a number above 0"),
        ({"basic": {"risk": {"cooldown_minutes": 1e9}}}, "risk.cooldown_minutes", "Pause after a losing streak"),
        ({"indicators": {"macd": {"fast": 30}}}, "macd.fast", "MACD fast length (30) must be below"),
    ):
        put = await http.put(P + "/settings", headers=h, json=body)
        await _rejected(put, field, reason)
        assert "Params" not in put.text and "Settings." not in put.text, put.text
        check = (await http.post(P + "/settings/check", headers=h, json=body)).json()
        assert check == {"valid": False, "field": field, "reason": put.json()["detail"]["reason"]}
    assert await _snapshot(http, h) == before, "a refused settings change created or changed the session"
