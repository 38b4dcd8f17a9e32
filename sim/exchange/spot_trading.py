"""Signed spot order endpoints (``/api/v3``): order (new, query, cancel), open orders (query, cancel
all), all orders, my trades; the retired ``/api/v3/userDataStream``. Shapes and codes as Binance
spot (README "Spot trading")."""

from __future__ import annotations

import re
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sim.exchange.account import SimApiKey, SimKeyStore, authenticate, request_params
from sim.exchange.errors import BinanceApiError, illegal_chars, invalid_symbol
from sim.exchange.futures_venue import decimal_param, enum_param
from sim.exchange.lockstep import Lockstep
from sim.exchange.order_faults import OrderFaults
from sim.exchange.params import limit_param, optional_int, symbol_param
from sim.exchange.rest_common import binance_endpoint
from sim.exchange.spot_book import STOP_TYPES, SpotBook, SpotOrder, SpotWallet
from sim.exchange.spot_engine import SpotEngine, SpotRequest

CLIENT_ID_RANGE = "^[a-zA-Z0-9-_]{1,36}$"
CLIENT_ID = re.compile(CLIENT_ID_RANGE)
ORDER_TYPES = ("MARKET", "LIMIT", "LIMIT_MAKER", *STOP_TYPES)
WITH_PRICE = ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
WITH_TIME_IN_FORCE = ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT")
NO_SUCH_ORDER = BinanceApiError(-2013, "Order does not exist.")
UNKNOWN_ORDER = BinanceApiError(-2011, "Unknown order sent.")
REJECTED_KEY = BinanceApiError(-2015, "Invalid API-key, IP, or permissions for action.", http_status=401)
RETIRED = (
    "Spot listenKey user-data streams were retired on 2026-02-20; subscribe with "
    "userDataStream.subscribe.signature on the WebSocket API (/ws-api/v3)."
)


def not_required(name: str) -> BinanceApiError:
    return BinanceApiError(-1106, f"Parameter '{name}' sent when not required.")


def client_id_param(params: QueryParams, name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        return "sim" + secrets.token_hex(10)
    if not CLIENT_ID.match(value):
        raise illegal_chars(name, CLIENT_ID_RANGE)
    return value


def spot_trading_routes(
    keys: SimKeyStore,
    engine: SpotEngine,
    faults: OrderFaults,
    lockstep: Lockstep,
    commit: Callable[[], Awaitable[None]],
) -> list[Route]:
    book: SpotBook = engine.book
    symbols = engine.market.catalog.spot_symbols

    async def signed(request: Request, trading: bool) -> tuple[SimApiKey, SpotWallet, QueryParams]:
        body = (await request.body()).decode() if request.method != "GET" else ""
        key = authenticate(request, keys, body)
        if not (key.enable_spot_and_margin_trading if trading else key.enable_reading):
            raise REJECTED_KEY
        params = request_params(request.scope.get("query_string", b"").decode(), body)
        return key, book.wallet(key.api_key, key.balances), params

    def symbol_of(params: QueryParams, required: bool = True) -> str | None:
        symbol = symbol_param(params, required=required)
        if symbol is not None and symbol not in symbols:
            raise invalid_symbol()
        return symbol

    def find(api_key: str, symbol: str, params: QueryParams, *, hide: bool) -> SpotOrder:
        order_id, client_id = optional_int(params, "orderId"), params.get("origClientOrderId")
        if order_id is None and not client_id:
            raise BinanceApiError(
                -1102, "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            )
        found = next(
            (
                o
                for o in reversed(book.orders.values())
                if o.api_key == api_key
                and o.symbol == symbol
                and (o.order_id == order_id if order_id is not None else o.client_order_id == client_id)
            ),
            None,
        )
        if found is None or (hide and faults.hidden(found.client_order_id)):
            raise NO_SUCH_ORDER
        return found

    def parse_new_order(params: QueryParams, symbol: str) -> tuple[SpotRequest, str]:
        side = enum_param(params, "side", ("BUY", "SELL"), BinanceApiError(-1117, "Invalid side."))
        kind = enum_param(params, "type", ORDER_TYPES, BinanceApiError(-1116, "Invalid orderType."))
        quantity = decimal_param(params, "quantity", required=False)
        quote_qty = decimal_param(params, "quoteOrderQty", required=False)
        if kind == "MARKET" and quantity is None and quote_qty is None:
            raise BinanceApiError(-1102, "Param 'quantity' or 'quoteOrderQty' must be sent, but both were empty/null!")
        if quote_qty is not None and (kind != "MARKET" or quantity is not None):
            raise not_required("quoteOrderQty")
        if kind != "MARKET" and quantity is None:
            decimal_param(params, "quantity", required=True)
        price = decimal_param(params, "price", required=kind in WITH_PRICE)
        if price is not None and kind not in WITH_PRICE:
            raise not_required("price")
        stop_price = decimal_param(params, "stopPrice", required=kind in STOP_TYPES)
        if stop_price is not None and kind not in STOP_TYPES:
            raise not_required("stopPrice")
        if kind in WITH_TIME_IN_FORCE:
            invalid = BinanceApiError(-1115, "Invalid timeInForce.")
            tif = enum_param(params, "timeInForce", ("GTC", "IOC", "FOK"), invalid)
        elif params.get("timeInForce"):
            raise not_required("timeInForce")
        else:
            tif = "GTC"
        response_type = enum_param(
            params,
            "newOrderRespType",
            ("ACK", "RESULT", "FULL"),
            BinanceApiError(-1130, "Data sent for parameter 'newOrderRespType' is not valid."),
            default="FULL" if kind in ("MARKET", "LIMIT") else "ACK",
        )
        client_id = client_id_param(params, "newClientOrderId")
        request = SpotRequest(symbol, side, kind, quantity, quote_qty, price, stop_price, tif, client_id)
        return request, response_type

    def reply_view(order: SpotOrder, response_type: str) -> dict[str, Any]:
        if response_type == "ACK":
            return order.ack_view()
        if response_type == "RESULT":
            return order.result_view()
        fills = [
            {k: t[k] for k in ("price", "qty", "commission", "commissionAsset")} | {"tradeId": t["id"]}
            for t in book.wallets[order.api_key].trades
            if t["orderId"] == order.order_id
        ]
        return {**order.result_view(), "fills": fills}

    @binance_endpoint
    async def order(request: Request) -> Response:
        key, wallet, params = await signed(request, trading=request.method != "GET")
        symbol = symbol_of(params)
        assert symbol is not None
        now = engine.market.now_ms
        if request.method == "GET":
            return JSONResponse(find(key.api_key, symbol, params, hide=True).view())
        if request.method == "DELETE":
            try:
                found = find(key.api_key, symbol, params, hide=False)
            except BinanceApiError as error:
                raise UNKNOWN_ORDER if error.code == -2013 else error from None
            if not found.is_open:
                raise UNKNOWN_ORDER
            cancel_id = client_id_param(params, "newClientOrderId")
            book.finish(found, "CANCELED", now, cancel_id)
            await commit()
            return JSONResponse(found.cancel_view(cancel_id, now))
        new_order, response_type = parse_new_order(params, symbol)
        if any(o.client_order_id == new_order.client_order_id for o in book.open_orders(key.api_key)):
            raise BinanceApiError(-2010, "Duplicate order sent.")
        target = ("/api/v3/order", symbol, False, new_order.client_order_id)
        return await faults.submit(
            request,
            target,
            lambda: engine.place(wallet, new_order, now),
            commit,
            lambda placed: reply_view(placed, response_type),
        )

    @binance_endpoint
    async def open_orders(request: Request) -> Response:
        key, _, params = await signed(request, trading=request.method == "DELETE")
        symbol = symbol_of(params, required=request.method == "DELETE")
        found = book.open_orders(key.api_key, symbol)
        if request.method == "GET":
            return JSONResponse([o.view() for o in found])
        now, views = engine.market.now_ms, []
        for order in found:
            cancel_id = client_id_param(params, "newClientOrderId")
            book.finish(order, "CANCELED", now, cancel_id)
            views.append(order.cancel_view(cancel_id, now))
        await commit()
        return JSONResponse(views)

    def window(params: QueryParams, rows: list[Any], id_name: str, time_name: str) -> list[Any]:
        start, end = optional_int(params, "startTime"), optional_int(params, "endTime")
        from_id = optional_int(params, "orderId" if id_name == "orderId" else "fromId")
        limit = limit_param(params, default=500, maximum=1000)
        rows = [
            r
            for r in rows
            if (from_id is None or r[id_name] >= from_id)
            and (start is None or r[time_name] >= start)
            and (end is None or r[time_name] <= end)
        ]
        return rows[:limit] if from_id is not None or start is not None else rows[-limit:]

    @binance_endpoint
    async def all_orders(request: Request) -> Response:
        key, _, params = await signed(request, trading=False)
        symbol = symbol_of(params)
        mine = [o.view() for o in book.orders.values() if o.api_key == key.api_key and o.symbol == symbol]
        return JSONResponse(window(params, mine, "orderId", "time"))

    @binance_endpoint
    async def my_trades(request: Request) -> Response:
        _, wallet, params = await signed(request, trading=False)
        symbol = symbol_of(params)
        order_id = optional_int(params, "orderId")
        if order_id is not None and params.get("fromId"):
            raise BinanceApiError(-1106, "Parameter 'fromId' sent when not required.")
        rows = [t for t in wallet.trades if t["symbol"] == symbol and (order_id is None or t["orderId"] == order_id)]
        if order_id is not None:
            return JSONResponse(rows[: limit_param(params, default=500, maximum=1000)])
        return JSONResponse(window(params, rows, "id", "time"))

    async def retired_user_stream(request: Request) -> Response:
        return JSONResponse({"code": -1099, "msg": RETIRED}, status_code=410)

    return [
        Route("/api/v3/order", lockstep.tracked(order), methods=["GET", "POST", "DELETE"]),
        Route("/api/v3/openOrders", open_orders, methods=["GET", "DELETE"]),
        Route("/api/v3/allOrders", all_orders),
        Route("/api/v3/myTrades", my_trades),
        Route("/api/v3/userDataStream", retired_user_stream, methods=["POST", "PUT", "DELETE"]),
    ]
