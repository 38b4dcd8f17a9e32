"""Signed USDⓈ-M order endpoints: ``/fapi/v1/order`` (MARKET, LIMIT), open/all orders, cancel-all,
and the Algo Order API (``/fapi/v1/algoOrder`` and friends) for conditional orders."""

from __future__ import annotations

import re
import secrets
from decimal import Decimal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sim.exchange.errors import BinanceApiError
from sim.exchange.futures_book import D0, AlgoOrder, Order
from sim.exchange.futures_engine import OrderRequest, check_quantity
from sim.exchange.futures_venue import FuturesVenue, bool_param, decimal_param, enum_param
from sim.exchange.order_faults import OrderFault
from sim.exchange.params import limit_param, optional_int
from sim.exchange.rest_common import binance_endpoint

CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
CONDITIONAL = ("STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET")
ALGO_ENDPOINT_ONLY = BinanceApiError(
    -4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead."
)
NO_SUCH_ORDER = BinanceApiError(-2013, "Order does not exist.")
UNKNOWN_ORDER = BinanceApiError(-2011, "Unknown order sent.")


def _client_id(value: str | None) -> str:
    if value is None or value == "":
        return "sim" + secrets.token_hex(10)
    if not CLIENT_ID.match(value):
        raise BinanceApiError(-4015, "Client order id is not valid.")
    return value


def _position_side(venue: FuturesVenue, params, dual: bool) -> None:
    side = params.get("positionSide") or "BOTH"
    if side not in ("BOTH", "LONG", "SHORT"):
        raise BinanceApiError(-1130, "Data sent for parameter 'positionSide' is not valid.")
    if dual or side != "BOTH":
        # Hedge-mode trading is not modelled: only one-way (BOTH) orders are accepted.
        raise BinanceApiError(-4061, "Order's position side does not match user's setting.")


def futures_trading_routes(venue: FuturesVenue) -> list[Route]:
    book, engine, faults = venue.book, venue.engine, venue.faults

    def find_order(api_key: str, symbol: str, params, *, hide: bool) -> Order:
        order_id, client_id = optional_int(params, "orderId"), params.get("origClientOrderId")
        if order_id is None and not client_id:
            raise BinanceApiError(-1102, "Either orderId or origClientOrderId must be sent.")
        mine = [o for o in book.orders.values() if o.api_key == api_key and o.symbol == symbol]
        found = next(
            (
                o
                for o in reversed(mine)
                if (o.order_id == order_id if order_id is not None else o.client_order_id == client_id)
            ),
            None,
        )
        if found is None or (hide and faults.hidden(found.client_order_id)):
            raise NO_SUCH_ORDER
        return found

    def find_algo(api_key: str, params) -> AlgoOrder:
        algo_id, client_id = optional_int(params, "algoId"), params.get("clientAlgoId")
        if algo_id is None and not client_id:
            raise BinanceApiError(-1102, "Either algoId or clientAlgoId must be sent.")
        mine = [a for a in book.algos.values() if a.api_key == api_key]
        found = next(
            (
                a
                for a in reversed(mine)
                if (a.algo_id == algo_id if algo_id is not None else a.client_algo_id == client_id)
            ),
            None,
        )
        if found is None or faults.hidden(found.client_algo_id):
            raise NO_SUCH_ORDER
        return found

    async def submit(
        request: Request, path: str, symbol: str, reduce_only: bool, client_id: str, place, view
    ) -> Response:
        def lose(booked: object, fault: OrderFault) -> None:
            if isinstance(booked, AlgoOrder):
                venue.lose_later(booked, fault.seconds, fault.status)

        return await faults.submit(request, (path, symbol, reduce_only, client_id), place, venue.commit, view, lose)

    @binance_endpoint
    async def order(request: Request) -> Response:
        key, account, params = await venue.signed(request)
        symbol = venue.symbol(params)
        assert symbol is not None
        if request.method == "GET":
            def answer() -> Response:
                return JSONResponse(find_order(key.api_key, symbol, params, hide=True).view())

            return await faults.answer_lookup(request.url.path, symbol, answer)
        if request.method == "DELETE":
            try:
                found = find_order(key.api_key, symbol, params, hide=False)
            except BinanceApiError as error:
                raise UNKNOWN_ORDER if error.code == -2013 else error from None
            if not found.is_open:
                raise UNKNOWN_ORDER
            engine.cancel(found, venue.now_ms)
            await venue.commit()
            return JSONResponse(found.view())
        headers = venue.count_order(key.api_key)
        side = enum_param(params, "side", ("BUY", "SELL"), BinanceApiError(-1117, "Invalid side."))
        kind = params.get("type") or ""
        if kind in CONDITIONAL:
            raise ALGO_ENDPOINT_ONLY
        kind = enum_param(params, "type", ("MARKET", "LIMIT"), BinanceApiError(-1116, "Invalid orderType."))
        _position_side(venue, params, account.dual_side)
        quantity = decimal_param(params, "quantity", required=True)
        price = decimal_param(params, "price", required=kind == "LIMIT") if kind == "LIMIT" else None
        if kind == "MARKET" and params.get("price"):
            raise BinanceApiError(-1106, "Parameter 'price' sent when not required.")
        tif = enum_param(
            params,
            "timeInForce",
            ("GTC", "IOC", "FOK", "GTX"),
            BinanceApiError(-1115, "Invalid timeInForce."),
            default="GTC" if kind == "MARKET" else None,
        )
        reduce_only = bool_param(params, "reduceOnly")
        if bool_param(params, "closePosition"):
            raise BinanceApiError(-1106, "Parameter 'closePosition' sent when not required.")
        response_type = enum_param(
            params,
            "newOrderRespType",
            ("ACK", "RESULT"),
            BinanceApiError(-1130, "Data sent for parameter 'newOrderRespType' is not valid."),
            default="ACK",
        )
        client_id = _client_id(params.get("newClientOrderId"))
        if any(o.client_order_id == client_id for o in book.open_orders(key.api_key)):
            raise BinanceApiError(-4116, "ClientOrderId is duplicated.")
        assert quantity is not None
        request_ = OrderRequest(symbol, side, kind, quantity, price, tif, client_id, reduce_only)
        acked: dict[int, dict] = {}

        def place() -> Order:
            placed = engine.place(account, request_, venue.now_ms)
            acked[0] = {
                **placed.view(),
                "status": "NEW",
                "executedQty": "0",
                "cumQty": "0",
                "cumQuote": "0",
                "avgPrice": "0",
            }
            return placed

        def view(placed: Order) -> dict:
            shown = placed.view() if response_type == "RESULT" else acked[0]
            return {k: v for k, v in shown.items() if k != "time"}

        reply = await submit(request, "/fapi/v1/order", symbol, reduce_only, client_id, place, view)
        reply.headers.update(headers)
        return reply

    @binance_endpoint
    async def algo_order(request: Request) -> Response:
        key, account, params = await venue.signed(request)
        if request.method == "GET":
            return JSONResponse(find_algo(key.api_key, params).view())
        if request.method == "DELETE":
            try:
                found = find_algo(key.api_key, params)
            except BinanceApiError as error:
                raise UNKNOWN_ORDER if error.code == -2013 else error from None
            if not found.is_open:
                raise UNKNOWN_ORDER
            book.set_algo_status(found, "CANCELED", venue.now_ms)
            await venue.commit()
            return JSONResponse(
                {"algoId": found.algo_id, "clientAlgoId": found.client_algo_id, "code": "200", "msg": "success"}
            )
        headers = venue.count_order(key.api_key)
        symbol = venue.symbol(params)
        assert symbol is not None
        enum_param(
            params,
            "algoType",
            ("CONDITIONAL",),
            BinanceApiError(-1130, "Data sent for parameter 'algoType' is not valid."),
        )
        side = enum_param(params, "side", ("BUY", "SELL"), BinanceApiError(-1117, "Invalid side."))
        kind = enum_param(params, "type", CONDITIONAL, BinanceApiError(-1116, "Invalid orderType."))
        _position_side(venue, params, account.dual_side)
        close_position = bool_param(params, "closePosition")
        reduce_only = bool_param(params, "reduceOnly")
        if close_position and kind not in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
            raise BinanceApiError(-1106, "Parameter 'closePosition' sent when not required.")
        if close_position and params.get("quantity"):
            raise BinanceApiError(-1106, "Parameter 'quantity' sent when not required.")
        if close_position and reduce_only:
            raise BinanceApiError(-1106, "Parameter 'reduceOnly' sent when not required.")
        quantity = D0 if close_position else decimal_param(params, "quantity", required=True)
        trailing = kind == "TRAILING_STOP_MARKET"
        trigger = D0 if trailing else decimal_param(params, "triggerPrice", required=True)
        price = decimal_param(params, "price", required=kind in ("STOP", "TAKE_PROFIT")) or D0
        callback = decimal_param(params, "callbackRate", required=trailing) or D0
        if trailing and not Decimal("0.1") <= callback <= 10:
            raise BinanceApiError(-2007, "Invalid callBack rate.")
        activate = decimal_param(params, "activatePrice", required=False) or D0
        working = enum_param(
            params,
            "workingType",
            ("CONTRACT_PRICE", "MARK_PRICE"),
            BinanceApiError(-1130, "Data sent for parameter 'workingType' is not valid."),
            default="CONTRACT_PRICE",
        )
        tif = enum_param(
            params,
            "timeInForce",
            ("GTC", "IOC", "FOK", "GTX", "GTE_GTC"),
            BinanceApiError(-1115, "Invalid timeInForce."),
            default="GTC",
        )
        client_id = _client_id(params.get("clientAlgoId"))
        if any(a.client_algo_id == client_id for a in book.open_algos(key.api_key)):
            raise BinanceApiError(-4116, "ClientOrderId is duplicated.")
        assert quantity is not None and trigger is not None
        rules = engine.rules(symbol)
        for value in (trigger, price, activate):
            if value % rules.tick:
                raise BinanceApiError(-4014, "Price not increased by tick size.")
        if not close_position:
            check_quantity(quantity, rules)
        now = venue.now_ms
        algo = AlgoOrder(
            0,
            key.api_key,
            symbol,
            client_id,
            side,
            kind,
            quantity,
            price,
            trigger,
            reduce_only,
            close_position,
            working,
            tif,
            bool_param(params, "priceProtect"),
            activate,
            callback,
            create_ms=now,
            update_ms=now,
        )
        engine.check_algo_trigger(algo)

        def place() -> AlgoOrder:
            algo.algo_id = book.new_algo_id()
            book.add_algo(algo)
            return algo

        reply = await submit(
            request,
            "/fapi/v1/algoOrder",
            symbol,
            reduce_only or close_position,
            client_id,
            place,
            lambda a: {k: v for k, v in a.view().items() if k not in ("actualOrderId", "actualPrice")},
        )
        reply.headers.update(headers)
        return reply

    @binance_endpoint
    async def open_orders(request: Request) -> Response:
        key, _, params = await venue.signed(request)
        symbol = venue.symbol(params, required=False)
        return JSONResponse([o.view() for o in book.open_orders(key.api_key, symbol)])

    @binance_endpoint
    async def all_orders(request: Request) -> Response:
        key, _, params = await venue.signed(request)
        symbol = venue.symbol(params)
        start, end, from_id = (
            optional_int(params, "startTime"),
            optional_int(params, "endTime"),
            optional_int(params, "orderId"),
        )
        limit = limit_param(params, default=500, maximum=1000)
        rows = [
            o
            for o in book.orders.values()
            if o.api_key == key.api_key
            and o.symbol == symbol
            and (from_id is None or o.order_id >= from_id)
            and (start is None or o.time_ms >= start)
            and (end is None or o.time_ms <= end)
        ]
        rows = rows[:limit] if from_id is not None or start is not None else rows[-limit:]
        return JSONResponse([o.view() for o in rows])

    @binance_endpoint
    async def cancel_all(request: Request) -> Response:
        key, _, params = await venue.signed(request)
        symbol = venue.symbol(params)
        for found in book.open_orders(key.api_key, symbol):
            engine.cancel(found, venue.now_ms)
        await venue.commit()
        return JSONResponse({"code": 200, "msg": "The operation of cancel all open order is done."})

    @binance_endpoint
    async def open_algos(request: Request) -> Response:
        key, _, params = await venue.signed(request)
        symbol = venue.symbol(params, required=False)
        return JSONResponse([a.view() for a in book.open_algos(key.api_key, symbol)])

    @binance_endpoint
    async def all_algos(request: Request) -> Response:
        key, _, params = await venue.signed(request)
        symbol = venue.symbol(params)
        limit = limit_param(params, default=500, maximum=1000)
        rows = [a for a in book.algos.values() if a.api_key == key.api_key and a.symbol == symbol]
        return JSONResponse([a.view() for a in rows[-limit:]])

    @binance_endpoint
    async def cancel_all_algos(request: Request) -> Response:
        key, _, params = await venue.signed(request)
        symbol = venue.symbol(params)
        for found in book.open_algos(key.api_key, symbol):
            book.set_algo_status(found, "CANCELED", venue.now_ms)
        await venue.commit()
        return JSONResponse({"code": 200, "msg": "The operation of cancel all open order is done."})

    return [
        Route("/fapi/v1/order", venue.lockstep.tracked(order), methods=["GET", "POST", "DELETE"]),
        Route("/fapi/v1/openOrders", open_orders),
        Route("/fapi/v1/allOrders", all_orders),
        Route("/fapi/v1/allOpenOrders", cancel_all, methods=["DELETE"]),
        Route("/fapi/v1/algoOrder", venue.lockstep.tracked(algo_order), methods=["GET", "POST", "DELETE"]),
        Route("/fapi/v1/openAlgoOrders", open_algos),
        Route("/fapi/v1/allAlgoOrders", all_algos),
        Route("/fapi/v1/algoOpenOrders", cancel_all_algos, methods=["DELETE"]),
    ]
