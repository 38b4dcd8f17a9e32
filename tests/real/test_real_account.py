"""The real futures account through the API, against the sim exchange: balance, positions, open orders and
fills as the exchange reports them; closing a position and flattening with reduce-only orders; and
reconciliation, which stays ok after Durabot's own orders and names what was done behind its back."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from activities.binance.futures_account import (
    ACCOUNT_PATH,
    POSITION_MODE_PATH,
    POSITION_RISK_PATH,
    FuturesAccountClient,
    parse_account,
    parse_list,
    parse_open_order,
    parse_position,
    parse_position_mode,
    parse_reply,
)
from activities.binance.futures_orders import FuturesOrderClient
from activities.binance.key_vault import ApiCredentials
from activities.binance.signed import SignedBinanceClient
from activities.exchange_errors import BadExchangeDataError
from core.order_contracts import OrderTerms
from tests.conftest import with_key
from trading.reconciliation import HEDGE_MODE_REASON

from .conftest import SYMBOL, Trader, sim_call
from .test_order_outcomes import buy, place, settled

R = "/api/real-trading"


async def get(gateway, trader: Trader, path: str, status: int = 200, **params: Any) -> Any:
    reply = await gateway.http.get(f"{R}{path}", headers=trader.headers, params=params)
    assert reply.status_code == status, reply.text
    return reply.json()


async def behind_durabots_back(sim, trader: Trader, params: dict[str, str], path: str = "/fapi/v1/order") -> Any:
    """A signed call straight to the sim with the trader's own key, as someone else using the account would."""
    async with SignedBinanceClient(sim.rest_url, ApiCredentials(trader.api_key, trader.api_secret)) as signed:
        return await signed.signed_request("POST", path, params)


async def sim_positions(sim, trader: Trader) -> list[dict[str, Any]]:
    masked = "****" + trader.api_key[-4:]
    return [p for p in await sim_call(sim, "GET", "/sim/positions") if p["api_key"] == masked]


def kinds(report: dict[str, Any]) -> list[str]:
    return [d["kind"] for d in report["differences"]]


async def test_balance_positions_fills_and_closing_a_position(gateway, sign_up, sim):
    trader = await sign_up()
    assert await get(gateway, trader, "/positions") == []
    filled = await place(gateway, trader, buy(0.02))
    assert filled["status"] == "FILLED"

    [position] = await get(gateway, trader, "/positions")
    assert (position["symbol"], position["position_amt"]) == (SYMBOL, pytest.approx(0.02))
    assert position["entry_price"] == pytest.approx(filled["avg_price"])
    balance = await get(gateway, trader, "/balance")
    assert balance["total_wallet_balance"] < 100_000  # the taker fee was paid
    assert balance["available_balance"] < balance["total_margin_balance"]  # margin is in use
    assert [a["asset"] for a in balance["assets"]] == ["USDT"]
    [fill] = await get(gateway, trader, "/closed-trades")
    assert (fill["side"], fill["qty"]) == ("BUY", pytest.approx(0.02))
    assert fill["price"] == pytest.approx(filled["avg_price"])
    assert await get(gateway, trader, "/closed-trades", symbol=SYMBOL) == [fill]

    below = round(filled["avg_price"] * 0.9, 1)
    resting = await place(gateway, trader, {**buy(), "order_type": "LIMIT", "price": below})
    listed = await get(gateway, trader, "/open-orders")
    assert [o["client_order_id"] for o in listed["orders"]] == [resting["order_id"]] and listed["algo_orders"] == []
    report = await get(gateway, trader, "/reconciliation")
    assert (report["ok"], report["differences"]) == (True, []), report

    key = with_key(trader.headers)
    closed = await gateway.http.post(f"{R}/positions/{SYMBOL.lower()}/close", headers=key)
    assert closed.status_code == 200, closed.text
    assert closed.json()["terms"]["reduce_only"] and closed.json()["terms"]["side"] == "SELL"
    assert closed.json()["terms"]["quantity"] == "0.020" and closed.json()["confirmed_by"] is None
    assert (await settled(gateway, trader, closed.json()["order_id"]))["status"] == "FILLED"
    assert await sim_positions(sim, trader) == [] and await get(gateway, trader, "/positions") == []
    # A repeat answers the first close; without a position and a new key there is nothing to close.
    again = await gateway.http.post(f"{R}/positions/{SYMBOL}/close", headers=key)
    assert again.status_code == 200 and again.json()["order_id"] == closed.json()["order_id"], again.text
    nothing = await gateway.http.post(f"{R}/positions/{SYMBOL}/close", headers=with_key(trader.headers))
    assert nothing.status_code == 404 and "no open BTCUSDT position" in nothing.text
    assert (await get(gateway, trader, "/reconciliation"))["ok"] is True  # the limit order is still expected


async def test_reconciliation_names_what_was_done_behind_durabots_back_and_flatten_closes_it(gateway, sign_up, sim):
    trader = await sign_up()
    mine = await place(gateway, trader, buy(0.01))
    await behind_durabots_back(sim, trader, {"symbol": SYMBOL, "side": "BUY", "type": "MARKET", "quantity": "0.005"})
    await behind_durabots_back(sim, trader, {"symbol": SYMBOL, "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                                             "quantity": "0.010", "price": f"{mine['avg_price'] * 0.9:.1f}",
                                             "newClientOrderId": "someone-else"})
    report = await get(gateway, trader, "/reconciliation")
    assert report["ok"] is False and kinds(report) == ["position_mismatch", "unknown_order"], report
    mismatch, unknown = report["differences"]
    assert (mismatch["expected"], mismatch["actual"]) == (pytest.approx(0.01), pytest.approx(0.015))
    assert (unknown["symbol"], unknown["actual"]) == (SYMBOL, "someone-else")

    # Another user sees only their own account, and cannot close this one's position.
    other = await sign_up()
    assert await get(gateway, other, "/positions") == [] and (await get(gateway, other, "/reconciliation"))["ok"]
    not_theirs = await gateway.http.post(f"{R}/positions/{SYMBOL}/close", headers=with_key(other.headers))
    assert not_theirs.status_code == 404 and len(await sim_positions(sim, trader)) == 1

    flattened = await gateway.http.post(f"{R}/flatten", headers=with_key(trader.headers))
    assert flattened.status_code == 200, flattened.text
    [close] = flattened.json()["orders"]
    assert close["terms"]["reduce_only"] and close["terms"]["quantity"] == "0.015"
    assert (await settled(gateway, trader, close["order_id"]))["status"] == "FILLED"
    assert await sim_positions(sim, trader) == []
    # Durabot now expects its own net (0.01 - 0.015) while the exchange is flat: still not ok.
    assert kinds(await get(gateway, trader, "/reconciliation")) == ["missing_position", "unknown_order"]


async def test_a_position_opened_elsewhere_and_hedge_mode_are_differences(gateway, sign_up, sim):
    trader = await sign_up()
    await behind_durabots_back(sim, trader, {"dualSidePosition": "true"}, "/fapi/v1/positionSide/dual")
    [hedge] = (await get(gateway, trader, "/reconciliation"))["differences"]
    assert (hedge["kind"], hedge["detail"]) == ("hedge_mode", HEDGE_MODE_REASON)

    elsewhere = await sign_up()
    await behind_durabots_back(sim, elsewhere, {"symbol": SYMBOL, "side": "SELL", "type": "MARKET",
                                                "quantity": "0.003"})
    [unknown] = (await get(gateway, elsewhere, "/reconciliation"))["differences"]
    assert (unknown["kind"], unknown["expected"], unknown["actual"]) == ("unknown_position", 0, pytest.approx(-0.003))


async def test_without_a_key_every_read_names_key_id_and_no_key_reaches_a_reply(gateway, sign_up, sim, caplog):
    caplog.set_level(logging.DEBUG)
    keyless = await sign_up(two_factor=False, with_key=False)
    for path in ("/balance", "/positions", "/open-orders", "/closed-trades", "/reconciliation"):
        assert (await get(gateway, keyless, path, 422))["detail"]["field"] == "key_id"
    trader = await sign_up()
    assert (await get(gateway, trader, "/balance", 422, key_id="not-mine"))["detail"]["field"] == "key_id"
    for path in ("/balance", "/positions", "/open-orders", "/reconciliation"):
        reply = await gateway.http.get(f"{R}{path}", headers=trader.headers)
        assert trader.api_key not in reply.text and trader.api_secret not in reply.text
    await sim_call(sim, "POST", "/sim/faults", json={"http_5xx_remaining": 1, "http_5xx_status": 503})
    failed = await get(gateway, trader, "/balance", 502)
    assert "the exchange could not be read" in failed["detail"] and trader.api_key not in str(failed)
    assert "/fapi/v3/account" in caplog.text  # the calls were logged, and without the key
    assert trader.api_key not in caplog.text and trader.api_secret not in caplog.text


def test_replies_of_the_wrong_shape_are_refused_not_read_as_zero():
    row = {"symbol": SYMBOL, "positionSide": "BOTH", "positionAmt": "0.5", "entryPrice": "1", "breakEvenPrice": "1",
           "markPrice": "1", "unRealizedProfit": "0", "liquidationPrice": "0", "notional": "0.5",
           "marginAsset": "USDT", "isolatedMargin": "0", "initialMargin": "0.5", "maintMargin": "0",
           "updateTime": 1}
    assert parse_position(row).position_amt == 0.5
    for broken in ({k: v for k, v in row.items() if k != "positionAmt"}, {**row, "positionAmt": "NaN"},
                   {**row, "positionAmt": "lots"}, {**row, "updateTime": True}):
        with pytest.raises((KeyError, ValueError)):
            parse_position(broken)
    with pytest.raises(ValueError, match="reduceOnly"):
        parse_open_order({"symbol": SYMBOL, "orderId": 1, "clientOrderId": "x", "side": "BUY", "type": "LIMIT",
                          "origType": "LIMIT", "status": "NEW", "price": "1", "stopPrice": "0", "origQty": "1",
                          "executedQty": "0", "avgPrice": "0", "reduceOnly": "false", "closePosition": False,
                          "timeInForce": "GTC", "positionSide": "BOTH", "time": 1, "updateTime": 1})
    with pytest.raises(ValueError, match="assets"):
        parse_account({"totalWalletBalance": "1"})


def test_the_reply_of_an_endpoint_is_bad_exchange_data_when_it_cannot_be_read():
    with pytest.raises(BadExchangeDataError, match=f"{POSITION_RISK_PATH}: expected a list"):
        parse_list(POSITION_RISK_PATH, {"not": "a list"}, parse_position)
    with pytest.raises(BadExchangeDataError, match=f"{POSITION_RISK_PATH}: unexpected reply"):
        parse_list(POSITION_RISK_PATH, [{"symbol": SYMBOL}], parse_position)
    with pytest.raises(BadExchangeDataError, match=f"{ACCOUNT_PATH}: unexpected reply"):
        parse_reply(ACCOUNT_PATH, {"assets": []}, parse_account)
    with pytest.raises(BadExchangeDataError, match=f"{POSITION_MODE_PATH}: unexpected reply"):
        parse_reply(POSITION_MODE_PATH, {"dualSidePosition": "false"}, parse_position_mode)
    assert parse_reply(POSITION_MODE_PATH, {"dualSidePosition": True}, parse_position_mode) is True


async def test_the_account_client_reads_every_endpoint_of_the_sim(sim):
    key = await sim_call(sim, "POST", "/sim/keys", json={"enable_futures": True, "balances": {"USDT": "1000"}})
    async with SignedBinanceClient(sim.rest_url, ApiCredentials(key["api_key"], key["api_secret"])) as signed:
        account = FuturesAccountClient(signed)
        assert await account.positions() == () and await account.hedge_mode() is False
        placed = await FuturesOrderClient(signed).submit("m-acct", OrderTerms("futures", SYMBOL, "BUY", "MARKET",
                                                                              "0.010"))
        assert placed.order is not None and placed.order.status == "FILLED"
        stop = str(round(placed.order.avg_price * 0.9, 1))
        await signed.signed_request("POST", "/fapi/v1/algoOrder", {
            "algoType": "CONDITIONAL", "symbol": SYMBOL, "side": "SELL", "type": "STOP_MARKET", "quantity": "0.010",
            "triggerPrice": stop, "reduceOnly": "true", "clientAlgoId": "sl-acct"})
        [position] = await account.positions(SYMBOL)
        balance = await account.account()
        [algo] = await account.open_algo_orders()
        [trade] = await account.user_trades(SYMBOL)
        income = await account.income(symbol=SYMBOL)
        assert await account.open_orders() == ()
    assert (position.position_amt, position.entry_price) == (0.01, placed.order.avg_price)
    assert balance.total_wallet_balance == pytest.approx(1000 - trade.commission)
    assert [a.asset for a in balance.assets] == ["USDT"] and balance.available_balance < balance.total_margin_balance
    assert (algo.client_algo_id, algo.order_type, algo.status, algo.trigger_price, algo.reduce_only) == \
        ("sl-acct", "STOP_MARKET", "NEW", float(stop), True)
    assert (trade.order_id, trade.qty, trade.side) == (placed.order.exchange_order_id, 0.01, "BUY")
    assert [(e.income_type, e.income, e.trade_id) for e in income] == [("COMMISSION", -trade.commission,
                                                                         str(trade.trade_id))]
