"""USDⓈ-M futures orders over signed REST: submit once, look up by client order ID, cancel.

``submit`` never raises for what the exchange answered: it reports an outcome, because what to do
next depends on whether the order may exist. Only replies that prove the order was not accepted
are ``not_accepted`` (and only throttling, rate limits and unreachable hosts are worth sending
again); anything that may have reached the matching engine is ``unknown`` and is resolved by a
lookup, never by a resend (Binance: a 5xx "unknown error", -1006/-1007, a timeout after sending).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from activities.binance.signed import SignedBinanceClient
from activities.exchange_errors import (
    BadExchangeDataError,
    ExchangeError,
    ExecutionUnknownError,
    RateLimitedError,
    TemporaryExchangeError,
)
from core.order_contracts import (
    ACCEPTED,
    NOT_ACCEPTED,
    OUTCOME_UNKNOWN,
    ExchangeOrder,
    OrderTerms,
    SubmitOrderResult,
)

ORDER_PATH = "/fapi/v1/order"
ALGO_PATH = "/fapi/v1/algoOrder"
# An algo order's status as the plain order status it stands for; TRIGGERED and FINISHED are read from
# the plain order the trigger created (``actualOrderId``).
ALGO_STATES = {"NEW": "NEW", "TRIGGERING": "NEW", "TRIGGERED": "NEW", "FINISHED": "FILLED",
               "CANCELED": "CANCELED", "CANCELLED": "CANCELED", "EXPIRED": "EXPIRED", "REJECTED": "REJECTED"}
# "Order does not exist." (lookups) and "Unknown order sent." (cancels).
ORDER_DOES_NOT_EXIST = -2013
CANCEL_REJECTED = -2011
# A client order ID already used by an open order: ours was accepted by an earlier send.
DUPLICATE_CLIENT_ID = -4116


def order_params(order_id: str, terms: OrderTerms) -> dict[str, str]:
    params = {"symbol": terms.symbol, "side": terms.side, "type": terms.order_type, "quantity": terms.quantity,
              "newClientOrderId": order_id, "newOrderRespType": "RESULT"}
    if terms.order_type == "LIMIT":
        params.update(price=str(terms.price), timeInForce=terms.time_in_force or "GTC")
    if terms.reduce_only:
        params["reduceOnly"] = "true"
    return params


def algo_params(order_id: str, terms: OrderTerms) -> dict[str, str]:
    params = {"algoType": "CONDITIONAL", "symbol": terms.symbol, "side": terms.side, "type": terms.order_type,
              "triggerPrice": str(terms.trigger_price), "clientAlgoId": order_id}
    if terms.close_position:
        params["closePosition"] = "true"
    else:
        params["quantity"] = terms.quantity
        if terms.reduce_only:
            params["reduceOnly"] = "true"
    return params


def parse_algo_order(reply: Any) -> tuple[ExchangeOrder, int | None]:
    """An algo order and the ID of the plain order its trigger created (None before it triggered)."""
    try:
        status = ALGO_STATES[str(reply["algoStatus"])]
        actual = str(reply.get("actualOrderId") or "")
        order = ExchangeOrder(
            exchange_order_id=int(reply["algoId"]), status=status, orig_qty=float(reply.get("quantity") or 0),
            executed_qty=0.0, avg_price=0.0, price=float(reply.get("triggerPrice") or 0),
            update_time_ms=int(reply.get("updateTime") or reply.get("createTime") or 0),
            reduce_only=bool(reply.get("reduceOnly", False)) or bool(reply.get("closePosition", False)))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadExchangeDataError(f"{ALGO_PATH}: unexpected algo order reply ({type(exc).__name__}: {exc})") from None
    return order, int(actual) if actual.isdigit() else None


def parse_order(reply: Any) -> ExchangeOrder:
    """An order from ``POST``/``GET``/``DELETE /fapi/v1/order``; a bad shape raises ``BadExchangeDataError``."""
    try:
        avg = float(reply.get("avgPrice") or 0)
        order = ExchangeOrder(
            exchange_order_id=int(reply["orderId"]), status=str(reply["status"]),
            orig_qty=float(reply["origQty"]), executed_qty=float(reply["executedQty"]),
            avg_price=avg, price=float(reply.get("price") or 0),
            update_time_ms=int(reply.get("updateTime") or reply.get("time") or 0),
            reduce_only=bool(reply.get("reduceOnly", False)))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadExchangeDataError(f"{ORDER_PATH}: unexpected order reply ({type(exc).__name__}: {exc})") from None
    if not all(math.isfinite(v) for v in (order.orig_qty, order.executed_qty, order.avg_price, order.price)):
        raise BadExchangeDataError(f"{ORDER_PATH}: an order reply with a non-finite number")
    return order


def send_failure(exc: ExchangeError, *, duplicate: bool) -> SubmitOrderResult:
    """The outcome of a send the exchange did not answer with an order (both markets): ``unknown`` when
    it may have been accepted (a timeout or 5xx "unknown", a 2xx we cannot read, our client ID open
    already: ``duplicate``), retryable ``not_accepted`` for throttling and unreachable hosts, else a
    refusal."""
    if isinstance(exc, (ExecutionUnknownError, BadExchangeDataError)) or duplicate:
        return SubmitOrderResult(OUTCOME_UNKNOWN, code=exc.code, message=str(exc))
    if isinstance(exc, RateLimitedError):
        return SubmitOrderResult(NOT_ACCEPTED, code=exc.code, message=str(exc), retryable=True,
                                 retry_after_s=exc.retry_after_s)
    if isinstance(exc, TemporaryExchangeError):
        return SubmitOrderResult(NOT_ACCEPTED, code=exc.code, message=str(exc), retryable=True)
    return SubmitOrderResult(NOT_ACCEPTED, code=exc.code, message=str(exc))


class FuturesOrderClient:
    def __init__(self, signed: SignedBinanceClient) -> None:
        self._signed = signed

    async def submit(self, order_id: str, terms: OrderTerms) -> SubmitOrderResult:
        path, params = ((ALGO_PATH, algo_params(order_id, terms)) if terms.conditional
                        else (ORDER_PATH, order_params(order_id, terms)))
        try:
            reply = await self._signed.signed_request("POST", path, params, weight=0, order=True,
                                                      priority=terms.reduce_only or terms.close_position)
        except ExchangeError as exc:
            return send_failure(exc, duplicate=exc.code == DUPLICATE_CLIENT_ID)
        try:
            order = (await self._algo_state(terms.symbol, reply)) if terms.conditional else parse_order(reply)
        except BadExchangeDataError as exc:
            return SubmitOrderResult(OUTCOME_UNKNOWN, message=str(exc))
        return SubmitOrderResult(ACCEPTED, order=order)

    async def lookup(self, symbol: str, order_id: str, conditional: bool = False) -> ExchangeOrder | None:
        """The order by client order ID (``clientAlgoId`` for a conditional one); None when the exchange
        says it does not exist (which, for a fresh order, may not be true yet). Temporary failures raise
        for the caller to retry."""
        path, id_field = (ALGO_PATH, "clientAlgoId") if conditional else (ORDER_PATH, "origClientOrderId")
        try:
            reply = await self._signed.signed_request("GET", path, {"symbol": symbol, id_field: order_id})
        except ExchangeError as exc:
            if exc.code == ORDER_DOES_NOT_EXIST:
                return None
            raise
        return await self._algo_state(symbol, reply) if conditional else parse_order(reply)

    async def _algo_state(self, symbol: str, reply: Any) -> ExchangeOrder:
        """A triggered algo order takes the state of the plain order it created (its fill, or not yet)."""
        algo, actual_id = parse_algo_order(reply)
        if actual_id is None:
            return algo
        plain = parse_order(await self._signed.signed_request("GET", ORDER_PATH,
                                                              {"symbol": symbol, "orderId": str(actual_id)}))
        return replace(plain, exchange_order_id=algo.exchange_order_id)

    async def cancel(self, symbol: str, order_id: str, conditional: bool = False) -> tuple[ExchangeOrder | None, str]:
        """Cancel by client order ID. A cancel that lost the race to a fill (-2011) is not a failure:
        the order is read back and reported as it is."""
        path, id_field = (ALGO_PATH, "clientAlgoId") if conditional else (ORDER_PATH, "origClientOrderId")
        try:
            reply = await self._signed.signed_request("DELETE", path, {"symbol": symbol, id_field: order_id},
                                                      priority=True)
        except ExchangeError as exc:
            if exc.code not in (CANCEL_REJECTED, ORDER_DOES_NOT_EXIST) and not isinstance(exc, ExecutionUnknownError):
                raise
            return await self.lookup(symbol, order_id, conditional), f"cancel not applied ({exc.message}); read back"
        if conditional:  # the algo cancel answers only its IDs
            return await self.lookup(symbol, order_id, conditional), ""
        return parse_order(reply), ""
