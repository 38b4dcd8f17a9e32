"""Spot orders over signed REST (``/api/v3/order``): submit once, look up by client order ID, cancel.

The outcome rules are the USDⓈ-M client's (``activities.binance.futures_orders``): only replies that
prove the order was not accepted are ``not_accepted``; anything that may have reached the matching
engine is ``unknown`` and resolved by a lookup. A resend would be worse on spot than on futures: spot
accepts a client order ID again once its first order is no longer open, so a second send of a filled
order is a second order.
"""

from __future__ import annotations

import math
from typing import Any

from activities.binance.futures_orders import CANCEL_REJECTED, ORDER_DOES_NOT_EXIST, send_failure
from activities.binance.signed import SignedBinanceClient
from activities.exchange_errors import BadExchangeDataError, ExchangeError, ExecutionUnknownError
from core.order_contracts import (
    ACCEPTED,
    OUTCOME_UNKNOWN,
    ExchangeOrder,
    OrderTerms,
    SubmitOrderResult,
)

SPOT_ORDER_PATH = "/api/v3/order"
# -2010 is every refusal of a new spot order; only this message says our client ID is open already.
NEW_ORDER_REJECTED = -2010
DUPLICATE_MESSAGE = "Duplicate order sent."


def spot_order_params(order_id: str, terms: OrderTerms) -> dict[str, str]:
    params = {"symbol": terms.symbol, "side": terms.side, "type": terms.order_type, "quantity": terms.quantity,
              "newClientOrderId": order_id, "newOrderRespType": "RESULT"}
    if terms.order_type == "LIMIT":
        params.update(price=str(terms.price), timeInForce=terms.time_in_force or "GTC")
    return params


def parse_spot_order(reply: Any) -> ExchangeOrder:
    """An order from ``POST``/``GET``/``DELETE /api/v3/order``: the average price is the quote spent over
    the quantity filled (spot replies carry no average)."""
    try:
        executed = float(reply["executedQty"])
        quote = float(reply.get("cummulativeQuoteQty") or 0)
        order = ExchangeOrder(
            exchange_order_id=int(reply["orderId"]), status=str(reply["status"]),
            orig_qty=float(reply["origQty"]), executed_qty=executed,
            avg_price=quote / executed if executed > 0 else 0.0, price=float(reply.get("price") or 0),
            update_time_ms=int(reply.get("updateTime") or reply.get("transactTime") or reply.get("time") or 0))
    except (KeyError, TypeError, ValueError, AttributeError, ZeroDivisionError) as exc:
        raise BadExchangeDataError(
            f"{SPOT_ORDER_PATH}: unexpected order reply ({type(exc).__name__}: {exc})") from None
    if not all(math.isfinite(v) for v in (order.orig_qty, order.executed_qty, order.avg_price, order.price)):
        raise BadExchangeDataError(f"{SPOT_ORDER_PATH}: an order reply with a non-finite number")
    return order


class SpotOrderClient:
    def __init__(self, signed: SignedBinanceClient) -> None:
        self._signed = signed

    async def submit(self, order_id: str, terms: OrderTerms) -> SubmitOrderResult:
        try:
            reply = await self._signed.signed_request("POST", SPOT_ORDER_PATH, spot_order_params(order_id, terms),
                                                      weight=0, order=True)
        except ExchangeError as exc:
            return send_failure(exc, duplicate=exc.code == NEW_ORDER_REJECTED and exc.message == DUPLICATE_MESSAGE)
        try:
            return SubmitOrderResult(ACCEPTED, order=parse_spot_order(reply))
        except BadExchangeDataError as exc:
            return SubmitOrderResult(OUTCOME_UNKNOWN, message=str(exc))

    async def lookup(self, symbol: str, order_id: str) -> ExchangeOrder | None:
        """The order by client order ID; None when the exchange says it does not exist (for a fresh
        order, perhaps not yet true). Temporary failures raise for the caller to retry."""
        try:
            reply = await self._signed.signed_request("GET", SPOT_ORDER_PATH,
                                                      {"symbol": symbol, "origClientOrderId": order_id})
        except ExchangeError as exc:
            if exc.code == ORDER_DOES_NOT_EXIST:
                return None
            raise
        return parse_spot_order(reply)

    async def cancel(self, symbol: str, order_id: str) -> tuple[ExchangeOrder | None, str]:
        """Cancel by client order ID; a cancel that lost the race to a fill reads the order back."""
        try:
            reply = await self._signed.signed_request("DELETE", SPOT_ORDER_PATH,
                                                      {"symbol": symbol, "origClientOrderId": order_id}, priority=True)
        except ExchangeError as exc:
            if exc.code not in (CANCEL_REJECTED, ORDER_DOES_NOT_EXIST) and not isinstance(exc, ExecutionUnknownError):
                raise
            return await self.lookup(symbol, order_id), f"cancel not applied ({exc.message}); read back"
        return parse_spot_order(reply), ""
