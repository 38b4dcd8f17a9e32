"""USDⓈ-M account reads over signed REST: positions, balances, open (algo) orders, the position mode,
user trades and income, each parsed into frozen records.

A reply of the wrong shape raises ``BadExchangeDataError`` naming the endpoint: reconciliation must
fail closed, so a field we cannot read is never taken as zero or absent. Weights are Binance's, so
the shared gate counts them before anything is sent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from activities.binance.signed import SignedBinanceClient
from activities.exchange_errors import BadExchangeDataError, ExchangeError

POSITION_RISK_PATH = "/fapi/v3/positionRisk"
ACCOUNT_PATH = "/fapi/v3/account"
OPEN_ORDERS_PATH = "/fapi/v1/openOrders"
OPEN_ALGO_ORDERS_PATH = "/fapi/v1/openAlgoOrders"
POSITION_MODE_PATH = "/fapi/v1/positionSide/dual"
USER_TRADES_PATH = "/fapi/v1/userTrades"
INCOME_PATH = "/fapi/v1/income"
SYMBOL_CONFIG_PATH = "/fapi/v1/symbolConfig"

# Binance's request weights (USDⓈ-M): open orders weigh 1 for one symbol and 40 for all of them.
WEIGHTS = {POSITION_RISK_PATH: 5, ACCOUNT_PATH: 5, POSITION_MODE_PATH: 30, USER_TRADES_PATH: 5, INCOME_PATH: 30,
           SYMBOL_CONFIG_PATH: 5}
LEVERAGE_PATH = "/fapi/v1/leverage"
MARGIN_TYPE_PATH = "/fapi/v1/marginType"
NO_NEED_TO_CHANGE_MARGIN_TYPE = -4046
MARGIN_TYPE_LOCKED = (-4047, -4048)
OPEN_ORDERS_WEIGHT_ONE_SYMBOL = 1
OPEN_ORDERS_WEIGHT_ALL = 40

@dataclass(frozen=True)
class PositionRisk:
    symbol: str
    position_side: str  # BOTH in one-way mode; LONG/SHORT in hedge mode
    position_amt: float  # signed: negative is short
    entry_price: float
    break_even_price: float
    mark_price: float
    unrealized_profit: float
    liquidation_price: float
    notional: float
    margin_asset: str
    isolated_margin: float
    initial_margin: float
    maint_margin: float
    update_time_ms: int


@dataclass(frozen=True)
class AssetBalance:
    asset: str
    wallet_balance: float
    unrealized_profit: float
    margin_balance: float
    available_balance: float
    max_withdraw_amount: float
    initial_margin: float
    maint_margin: float


@dataclass(frozen=True)
class FuturesAccount:
    total_wallet_balance: float
    total_unrealized_profit: float
    total_margin_balance: float
    total_initial_margin: float
    total_maint_margin: float
    available_balance: float
    max_withdraw_amount: float
    assets: tuple[AssetBalance, ...]


@dataclass(frozen=True)
class OpenOrder:
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    order_type: str
    orig_type: str
    status: str
    price: float
    stop_price: float
    orig_qty: float
    executed_qty: float
    avg_price: float
    reduce_only: bool
    close_position: bool
    time_in_force: str
    position_side: str
    time_ms: int
    update_time_ms: int


@dataclass(frozen=True)
class OpenAlgoOrder:
    symbol: str
    algo_id: int
    client_algo_id: str
    side: str
    order_type: str
    status: str
    quantity: float
    trigger_price: float
    price: float
    reduce_only: bool
    close_position: bool
    working_type: str
    position_side: str
    create_time_ms: int
    update_time_ms: int


@dataclass(frozen=True)
class UserTrade:
    symbol: str
    trade_id: int
    order_id: int
    side: str
    price: float
    qty: float
    quote_qty: float
    realized_pnl: float
    commission: float
    commission_asset: str
    maker: bool
    position_side: str
    time_ms: int


@dataclass(frozen=True)
class IncomeEntry:
    symbol: str
    income_type: str
    income: float
    asset: str
    info: str
    tran_id: int
    trade_id: str  # "" when the entry is not tied to a trade (funding, transfers)
    time_ms: int


@dataclass(frozen=True)
class SymbolConfig:
    symbol: str
    margin_type: str  # ISOLATED | CROSSED
    leverage: int


# -- field readers: a missing or malformed field is an error, never a default --------------------------
def _num(row: Any, name: str) -> float:
    value = float(row[name])
    if not math.isfinite(value):
        raise ValueError(f"{name} is not a finite number")
    return value


def _int(row: Any, name: str) -> int:
    value = row[name]
    if isinstance(value, bool):
        raise ValueError(f"{name} is not an integer")
    return int(value)


def _text(row: Any, name: str) -> str:
    value = row[name]
    if not isinstance(value, str):
        raise ValueError(f"{name} is not a string")
    return value


def _flag(row: Any, name: str) -> bool:
    value = row[name]
    if not isinstance(value, bool):
        raise ValueError(f"{name} is not a boolean")
    return value


def parse_reply[T](path: str, reply: Any, parse: Callable[[Any], T]) -> T:
    """``parse(reply)``, any shape it cannot read raised as ``BadExchangeDataError`` naming ``path``."""
    try:
        return parse(reply)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadExchangeDataError(f"{path}: unexpected reply ({type(exc).__name__}: {exc})") from None


def parse_list[T](path: str, reply: Any, parse: Callable[[Any], T]) -> tuple[T, ...]:
    if not isinstance(reply, list):
        raise BadExchangeDataError(f"{path}: expected a list, got {type(reply).__name__}")
    return tuple(parse_reply(path, row, parse) for row in reply)


def parse_position(row: Any) -> PositionRisk:
    return PositionRisk(
        symbol=_text(row, "symbol"), position_side=_text(row, "positionSide"), position_amt=_num(row, "positionAmt"),
        entry_price=_num(row, "entryPrice"), break_even_price=_num(row, "breakEvenPrice"),
        mark_price=_num(row, "markPrice"), unrealized_profit=_num(row, "unRealizedProfit"),
        liquidation_price=_num(row, "liquidationPrice"), notional=_num(row, "notional"),
        margin_asset=_text(row, "marginAsset"), isolated_margin=_num(row, "isolatedMargin"),
        initial_margin=_num(row, "initialMargin"), maint_margin=_num(row, "maintMargin"),
        update_time_ms=_int(row, "updateTime"))


def parse_asset(row: Any) -> AssetBalance:
    return AssetBalance(
        asset=_text(row, "asset"), wallet_balance=_num(row, "walletBalance"),
        unrealized_profit=_num(row, "unrealizedProfit"), margin_balance=_num(row, "marginBalance"),
        available_balance=_num(row, "availableBalance"), max_withdraw_amount=_num(row, "maxWithdrawAmount"),
        initial_margin=_num(row, "initialMargin"), maint_margin=_num(row, "maintMargin"))


def parse_account(reply: Any) -> FuturesAccount:
    if not isinstance(reply.get("assets"), list):
        raise ValueError("assets is not a list")
    return FuturesAccount(
        total_wallet_balance=_num(reply, "totalWalletBalance"),
        total_unrealized_profit=_num(reply, "totalUnrealizedProfit"),
        total_margin_balance=_num(reply, "totalMarginBalance"), total_initial_margin=_num(reply, "totalInitialMargin"),
        total_maint_margin=_num(reply, "totalMaintMargin"), available_balance=_num(reply, "availableBalance"),
        max_withdraw_amount=_num(reply, "maxWithdrawAmount"),
        assets=tuple(parse_asset(row) for row in reply["assets"]))


def parse_open_order(row: Any) -> OpenOrder:
    return OpenOrder(
        symbol=_text(row, "symbol"), order_id=_int(row, "orderId"), client_order_id=_text(row, "clientOrderId"),
        side=_text(row, "side"), order_type=_text(row, "type"), orig_type=_text(row, "origType"),
        status=_text(row, "status"), price=_num(row, "price"), stop_price=_num(row, "stopPrice"),
        orig_qty=_num(row, "origQty"), executed_qty=_num(row, "executedQty"), avg_price=_num(row, "avgPrice"),
        reduce_only=_flag(row, "reduceOnly"), close_position=_flag(row, "closePosition"),
        time_in_force=_text(row, "timeInForce"), position_side=_text(row, "positionSide"),
        time_ms=_int(row, "time"), update_time_ms=_int(row, "updateTime"))


def parse_open_algo_order(row: Any) -> OpenAlgoOrder:
    return OpenAlgoOrder(
        symbol=_text(row, "symbol"), algo_id=_int(row, "algoId"), client_algo_id=_text(row, "clientAlgoId"),
        side=_text(row, "side"), order_type=_text(row, "orderType"), status=_text(row, "algoStatus"),
        quantity=_num(row, "quantity"), trigger_price=_num(row, "triggerPrice"), price=_num(row, "price"),
        reduce_only=_flag(row, "reduceOnly"), close_position=_flag(row, "closePosition"),
        working_type=_text(row, "workingType"), position_side=_text(row, "positionSide"),
        create_time_ms=_int(row, "createTime"), update_time_ms=_int(row, "updateTime"))


def parse_user_trade(row: Any) -> UserTrade:
    return UserTrade(
        symbol=_text(row, "symbol"), trade_id=_int(row, "id"), order_id=_int(row, "orderId"), side=_text(row, "side"),
        price=_num(row, "price"), qty=_num(row, "qty"), quote_qty=_num(row, "quoteQty"),
        realized_pnl=_num(row, "realizedPnl"), commission=_num(row, "commission"),
        commission_asset=_text(row, "commissionAsset"), maker=_flag(row, "maker"),
        position_side=_text(row, "positionSide"), time_ms=_int(row, "time"))


def parse_income(row: Any) -> IncomeEntry:
    return IncomeEntry(
        symbol=_text(row, "symbol"), income_type=_text(row, "incomeType"), income=_num(row, "income"),
        asset=_text(row, "asset"), info=_text(row, "info"), tran_id=_int(row, "tranId"),
        trade_id=str(row.get("tradeId") or ""), time_ms=_int(row, "time"))


def parse_symbol_config(row: Any) -> SymbolConfig:
    return SymbolConfig(symbol=_text(row, "symbol"), margin_type=_text(row, "marginType").upper(),
                        leverage=_int(row, "leverage"))


def parse_position_mode(reply: Any) -> bool:
    """True: hedge mode (dual side positions); False: one-way mode."""
    return _flag(reply, "dualSidePosition")


class FuturesAccountClient:
    def __init__(self, signed: SignedBinanceClient) -> None:
        self._signed = signed

    async def _get(self, path: str, params: dict[str, str], weight: int) -> Any:
        return await self._signed.signed_request("GET", path, params, weight=weight)

    async def positions(self, symbol: str | None = None) -> tuple[PositionRisk, ...]:
        """The account's positions (v3 lists only symbols with a position or open orders)."""
        params = {"symbol": symbol} if symbol else {}
        return parse_list(POSITION_RISK_PATH, await self._get(POSITION_RISK_PATH, params, WEIGHTS[POSITION_RISK_PATH]),
                     parse_position)

    async def account(self) -> FuturesAccount:
        reply = await self._get(ACCOUNT_PATH, {}, WEIGHTS[ACCOUNT_PATH])
        return parse_reply(ACCOUNT_PATH, reply, parse_account)

    async def open_orders(self, symbol: str | None = None) -> tuple[OpenOrder, ...]:
        return parse_list(OPEN_ORDERS_PATH, await self._get(OPEN_ORDERS_PATH, *_by_symbol(symbol)), parse_open_order)

    async def open_algo_orders(self, symbol: str | None = None) -> tuple[OpenAlgoOrder, ...]:
        return parse_list(OPEN_ALGO_ORDERS_PATH, await self._get(OPEN_ALGO_ORDERS_PATH, *_by_symbol(symbol)),
                     parse_open_algo_order)

    async def hedge_mode(self) -> bool:
        reply = await self._get(POSITION_MODE_PATH, {}, WEIGHTS[POSITION_MODE_PATH])
        return parse_reply(POSITION_MODE_PATH, reply, parse_position_mode)

    async def user_trades(self, symbol: str, *, limit: int = 500, from_id: int | None = None) -> tuple[UserTrade, ...]:
        params = {"symbol": symbol, "limit": str(limit)}
        if from_id is not None:
            params["fromId"] = str(from_id)
        return parse_list(USER_TRADES_PATH, await self._get(USER_TRADES_PATH, params, WEIGHTS[USER_TRADES_PATH]),
                     parse_user_trade)

    async def income(self, *, symbol: str | None = None, income_type: str | None = None,
                     start_time_ms: int | None = None, limit: int = 100) -> tuple[IncomeEntry, ...]:
        params = {"limit": str(limit)}
        for name, value in (("symbol", symbol), ("incomeType", income_type), ("startTime", start_time_ms)):
            if value is not None:
                params[name] = str(value)
        return parse_list(INCOME_PATH, await self._get(INCOME_PATH, params, WEIGHTS[INCOME_PATH]), parse_income)


    async def symbol_config(self, symbol: str) -> SymbolConfig:
        """The symbol's leverage and margin type as the exchange has them now."""
        rows = parse_list(SYMBOL_CONFIG_PATH, await self._get(SYMBOL_CONFIG_PATH, {"symbol": symbol},
                                                              WEIGHTS[SYMBOL_CONFIG_PATH]), parse_symbol_config)
        found = next((r for r in rows if r.symbol == symbol), None)
        if found is None:
            raise BadExchangeDataError(f"{SYMBOL_CONFIG_PATH}: no configuration of {symbol} in the reply")
        return found

    async def set_leverage(self, symbol: str, leverage: int) -> int:
        """Set the symbol's leverage; the leverage the exchange confirms."""
        reply = await self._signed.signed_request("POST", LEVERAGE_PATH, {"symbol": symbol, "leverage": str(leverage)},
                                                  weight=1)
        return parse_reply(LEVERAGE_PATH, reply, lambda r: _int(r, "leverage"))

    async def set_margin_type(self, symbol: str, margin_type: str) -> str | None:
        """Set ISOLATED or CROSSED margin; "No need to change" (-4046) confirms it too. None: it cannot
        change while the symbol has a position or open orders (-4048, -4047); the margin stays unconfirmed."""
        try:
            await self._signed.signed_request("POST", MARGIN_TYPE_PATH, {"symbol": symbol, "marginType": margin_type},
                                              weight=1)
        except ExchangeError as exc:
            if exc.code in MARGIN_TYPE_LOCKED:
                return None
            if exc.code != NO_NEED_TO_CHANGE_MARGIN_TYPE:
                raise
        return margin_type


def _by_symbol(symbol: str | None) -> tuple[dict[str, str], int]:
    if symbol:
        return {"symbol": symbol}, OPEN_ORDERS_WEIGHT_ONE_SYMBOL
    return {}, OPEN_ORDERS_WEIGHT_ALL
