"""Signed USDⓈ-M account endpoints: trades, income, account and positions (v2 and v3), position
mode, leverage and margin type."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sim.exchange.errors import BinanceApiError, invalid_value
from sim.exchange.futures_book import D0, MARGIN_ASSET, Account, text
from sim.exchange.futures_engine import MAINTENANCE_RATE
from sim.exchange.futures_venue import FuturesVenue, enum_param
from sim.exchange.params import limit_param, optional_int, required_text
from sim.exchange.rest_common import binance_endpoint

INCOME_TYPES = ("TRANSFER", "WELCOME_BONUS", "REALIZED_PNL", "FUNDING_FEE", "COMMISSION", "INSURANCE_CLEAR")
# (max leverage, max notional) brackets, BTCUSDT-like.
_BRACKETS = (
    (125, 50_000),
    (100, 600_000),
    (50, 3_000_000),
    (20, 12_000_000),
    (10, 70_000_000),
    (5, 100_000_000),
    (4, 230_000_000),
    (3, 480_000_000),
    (2, 600_000_000),
    (1, 800_000_000),
)


def max_notional(leverage: int) -> int:
    return next(notional for top, notional in reversed(_BRACKETS) if leverage <= top)


def futures_account_routes(venue: FuturesVenue) -> list[Route]:
    book, engine = venue.book, venue.engine

    def position_row(account: Account, symbol: str, v3: bool) -> dict[str, Any]:
        position = account.position(symbol)
        mark = engine.mark_now(symbol)
        notional = position.amount * mark
        leverage = account.leverage_of(symbol)
        row: dict[str, Any] = {
            "symbol": symbol,
            "positionSide": "BOTH",
            "positionAmt": text(position.amount),
            "entryPrice": text(position.entry_price),
            "breakEvenPrice": text(position.entry_price),
            "markPrice": text(mark),
            "unRealizedProfit": text(engine.unrealized(account, symbol)),
            "liquidationPrice": text(engine.liquidation_price(account, symbol).quantize(Decimal("0.00000001"))),
            "notional": text(notional),
            "marginAsset": MARGIN_ASSET,
            "isolatedMargin": "0",
            "isolatedWallet": "0",
            "initialMargin": text(abs(notional) / leverage),
            "maintMargin": text(abs(notional) * MAINTENANCE_RATE),
            "adl": 0,
            "updateTime": position.update_ms,
        }
        if not v3:
            row.update(
                {
                    "leverage": str(leverage),
                    "maxNotionalValue": str(max_notional(leverage)),
                    "marginType": "isolated" if account.isolated(symbol) else "cross",
                    "isAutoAddMargin": "false",
                }
            )
        return row

    def held_symbols(account: Account) -> list[str]:
        return sorted(s for s, p in account.positions.items() if p.amount)

    @binance_endpoint
    async def position_risk(request: Request) -> Response:
        _, account, params = await venue.signed(request)
        symbol = venue.symbol(params, required=False)
        v3 = request.url.path.startswith("/fapi/v3")
        symbols = [symbol] if symbol else (held_symbols(account) if v3 else engine.market.catalog.futures_symbols)
        return JSONResponse([position_row(account, s, v3) for s in symbols])

    @binance_endpoint
    async def account_info(request: Request) -> Response:
        _, account, _ = await venue.signed(request)
        unrealized = sum((engine.unrealized(account, s) for s in held_symbols(account)), D0)
        available = engine.available_balance(account)
        margin = account.wallet + unrealized
        used = margin - available
        totals = {
            "totalInitialMargin": text(used),
            "totalMaintMargin": text(
                sum(
                    (
                        abs(account.position(s).amount) * engine.mark_now(s) * MAINTENANCE_RATE
                        for s in held_symbols(account)
                    ),
                    D0,
                )
            ),
            "totalWalletBalance": text(account.wallet),
            "totalUnrealizedProfit": text(unrealized),
            "totalMarginBalance": text(margin),
            "totalPositionInitialMargin": text(used),
            "totalOpenOrderInitialMargin": "0",
            "totalCrossWalletBalance": text(account.wallet),
            "totalCrossUnPnl": text(unrealized),
            "availableBalance": text(available),
            "maxWithdrawAmount": text(max(available, D0)),
        }
        asset = {
            "asset": MARGIN_ASSET,
            "walletBalance": text(account.wallet),
            "unrealizedProfit": text(unrealized),
            "marginBalance": text(margin),
            "maintMargin": totals["totalMaintMargin"],
            "initialMargin": text(used),
            "positionInitialMargin": text(used),
            "openOrderInitialMargin": "0",
            "crossWalletBalance": text(account.wallet),
            "crossUnPnl": text(unrealized),
            "availableBalance": text(available),
            "maxWithdrawAmount": text(max(available, D0)),
            "marginAvailable": True,
            "updateTime": venue.now_ms,
        }
        v3 = request.url.path.startswith("/fapi/v3")
        positions = [position_row(account, s, v3) for s in held_symbols(account)]
        extra = (
            {}
            if v3
            else {
                "feeTier": 0,
                "canTrade": True,
                "canDeposit": True,
                "canWithdraw": True,
                "updateTime": 0,
                "multiAssetsMargin": False,
                "tradeGroupId": -1,
            }
        )
        return JSONResponse({**extra, **totals, "assets": [asset], "positions": positions})

    @binance_endpoint
    async def user_trades(request: Request) -> Response:
        _, account, params = await venue.signed(request)
        symbol = venue.symbol(params)
        start, end, from_id = (optional_int(params, n) for n in ("startTime", "endTime", "fromId"))
        order_id = optional_int(params, "orderId")
        if start is not None and end is not None and (start > end or end - start > 7 * 86_400_000):
            raise invalid_value("startTime")
        limit = limit_param(params, default=500, maximum=1000)
        rows = [
            t
            for t in account.trades
            if t["symbol"] == symbol
            and (from_id is None or t["id"] >= from_id)
            and (order_id is None or t["orderId"] == order_id)
            and (start is None or t["time"] >= start)
            and (end is None or t["time"] <= end)
        ]
        return JSONResponse(rows[:limit] if from_id is not None or start is not None else rows[-limit:])

    @binance_endpoint
    async def income(request: Request) -> Response:
        _, account, params = await venue.signed(request)
        symbol = venue.symbol(params, required=False)
        kind = params.get("incomeType")
        if kind is not None and kind not in INCOME_TYPES:
            raise invalid_value("incomeType")
        start, end = optional_int(params, "startTime"), optional_int(params, "endTime")
        limit = limit_param(params, default=100, maximum=1000)
        rows = [
            r
            for r in account.income
            if (symbol is None or r["symbol"] == symbol)
            and (kind is None or r["incomeType"] == kind)
            and (start is None or r["time"] >= start)
            and (end is None or r["time"] <= end)
        ]
        return JSONResponse(rows[:limit] if start is not None else rows[-limit:])

    @binance_endpoint
    async def position_mode(request: Request) -> Response:
        key, account, params = await venue.signed(request)
        if request.method == "GET":
            return JSONResponse({"dualSidePosition": account.dual_side})
        wanted = required_text(params, "dualSidePosition").lower()
        if wanted not in ("true", "false"):
            raise invalid_value("dualSidePosition")
        if (wanted == "true") == account.dual_side:
            raise BinanceApiError(-4059, "No need to change position side.")
        if held_symbols(account):
            raise BinanceApiError(-4068, "Position side cannot be changed if there exists position.")
        if book.open_orders(key.api_key) or book.open_algos(key.api_key):
            raise BinanceApiError(-4067, "Position side cannot be changed if there exists open orders.")
        account.dual_side = wanted == "true"
        await venue.commit()
        return JSONResponse({"code": 200, "msg": "success"})

    @binance_endpoint
    async def leverage(request: Request) -> Response:
        _, account, params = await venue.signed(request)
        symbol = venue.symbol(params)
        assert symbol is not None
        value = optional_int(params, "leverage")
        if value is None:
            required_text(params, "leverage")
        assert value is not None
        if not 1 <= value <= 125:
            raise BinanceApiError(-4028, f"Leverage {value} is not valid")
        account.leverage[symbol] = value
        await venue.commit()
        return JSONResponse({"leverage": value, "maxNotionalValue": str(max_notional(value)), "symbol": symbol})

    @binance_endpoint
    async def margin_type(request: Request) -> Response:
        key, account, params = await venue.signed(request)
        symbol = venue.symbol(params)
        assert symbol is not None
        wanted = enum_param(params, "marginType", ("ISOLATED", "CROSSED"), invalid_value("marginType"))
        if account.margin_type.get(symbol, "CROSSED") == wanted:
            raise BinanceApiError(-4046, "No need to change margin type.")
        if account.position(symbol).amount:
            raise BinanceApiError(-4048, "Margin type cannot be changed if there exists position.")
        if book.open_orders(key.api_key, symbol):
            raise BinanceApiError(-4047, "Margin type cannot be changed if there exists open orders.")
        account.margin_type[symbol] = wanted
        await venue.commit()
        return JSONResponse({"code": 200, "msg": "success"})

    @binance_endpoint
    async def symbol_config(request: Request) -> Response:
        _, account, params = await venue.signed(request)
        symbol = venue.symbol(params, required=False)
        symbols = [symbol] if symbol else engine.market.catalog.futures_symbols
        return JSONResponse([{
            "symbol": s, "marginType": "ISOLATED" if account.isolated(s) else "CROSSED", "isAutoAddMargin": "false",
            "leverage": account.leverage_of(s), "maxNotionalValue": str(max_notional(account.leverage_of(s))),
        } for s in symbols])

    return [
        Route("/fapi/v1/symbolConfig", symbol_config),
        Route("/fapi/v2/positionRisk", position_risk),
        Route("/fapi/v3/positionRisk", position_risk),
        Route("/fapi/v2/account", account_info),
        Route("/fapi/v3/account", account_info),
        Route("/fapi/v1/userTrades", user_trades),
        Route("/fapi/v1/income", income),
        Route("/fapi/v1/positionSide/dual", position_mode, methods=["GET", "POST"]),
        Route("/fapi/v1/leverage", leverage, methods=["POST"]),
        Route("/fapi/v1/marginType", margin_type, methods=["POST"]),
    ]
