"""Paper Trading: the caller's paper session ``session:{user}:paper`` — its status, account, trades and
orders (AUTHENTICATED reads), and starting, stopping, resetting and trading it (SENSITIVE writes, each
with an idempotency key). Settings, signals and reviews are read in ``paper_reads``.

No tool here writes settings: an agent changes a setting through the Tuning tools, one parameter per
proposal, so that the change's GREEN/YELLOW/RED tier applies. Money is simulated: nothing reaches an
exchange. Trade and order IDs are the caller's own session's; another user's are not found.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from core.contracts import ManualOrderInput
from gateway.mcp.registry import IdempotencyKey, current, tool
from gateway.paper.schemas import (
    AccountOut,
    Interval,
    SignalIntervalIn,
    StartIn,
    StatusOut,
    SymbolsIn,
    SymbolsOut,
    TriggerOut,
)
from gateway.routers.paper_trading import _status_out as status_out
from gateway.routers.paper_trading import (
    get_status,
    get_symbols,
    put_signal_interval,
    put_symbols,
    start,
    stop,
    trigger_analysis,
)

MAX_ID = 2**53
Symbol = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{2,20}$", description="e.g. BTCUSDT (case does not matter)")]
TradeId = Annotated[int, Field(ge=1, le=MAX_ID, description="a trade ID of your paper session")]
OrderId = Annotated[int, Field(ge=1, le=MAX_ID, description="a pending order ID of your paper session")]
Price = Annotated[float | None, Field(gt=0, allow_inf_nan=False)]
Side = Literal["long", "short"]


# -- the Engine's records as tools return them ---------------------------------------------------------
class PositionOut(BaseModel):
    """An open position of the paper account (one per symbol, isolated margin, one-way)."""

    trade_id: int
    symbol: str
    side: Side
    quantity: float
    entry_price: float
    entry_time: int = Field(description="market time (ms)")
    leverage: int
    margin: float = Field(description="isolated margin; funding is settled against it")
    liquidation_price: float = Field(description="0 when it cannot be liquidated (spot, or a long at 1x)")
    stop_loss: float | None
    take_profit: float | None
    trailing_pct: float | None
    trail_extreme: float = Field(description="the best price since entry, for the trailing stop")
    entry_fee: float
    funding: float = Field(description="funding paid (>0) or received (<0) so far")
    max_favorable: float = Field(description="MFE so far, quote currency (>= 0)")
    max_adverse: float = Field(description="MAE so far, quote currency (<= 0)")


class OrderOut(BaseModel):
    """A resting (limit or stop-limit) order of the paper account."""

    id: int
    symbol: str
    side: Side
    type: Literal["market", "limit", "stop_limit"]
    quantity: float
    created_time: int = Field(description="market time (ms)")
    limit_price: float | None
    stop_price: float | None
    reduce_only: bool
    triggered: bool = Field(description="a stop-limit whose stop was touched, now resting as a limit")
    filled_quantity: float
    stop_loss: float | None = Field(description="the stop of the position this order opens")
    take_profit: float | None
    reserved_margin: float


class FillOut(BaseModel):
    order_id: int | None = Field(description="null for fills the engine made (signals, stops, liquidation)")
    symbol: str
    side: Side = Field(description="the direction of the position this fill opens or reduces")
    opens: bool = Field(description="true: opens or adds to a position; false: reduces or closes it")
    quantity: float
    price: float
    fee: float
    liquidity: Literal["maker", "taker"]
    time: int = Field(description="market time (ms)")


class TradeOut(BaseModel):
    """A closed trade (or the closed part of a position) of the paper account."""

    id: int = Field(description="the trade ID")
    symbol: str
    side: Side
    quantity: float
    leverage: int
    entry_time: int
    entry_price: float
    exit_time: int
    exit_price: float
    entry_fee: float
    exit_fee: float
    funding: float
    gross_pnl: float
    net_pnl: float = Field(description="gross PnL less fees and funding")
    max_favorable: float
    max_adverse: float
    close_reason: Literal["signal", "stop_loss", "take_profit", "trailing_stop", "liquidation", "manual"]


class PaperPortfolioOut(BaseModel):
    session_id: str
    status: str
    account: AccountOut
    positions: list[PositionOut]


class PaperClosedTradeOut(BaseModel):
    trade_id: int
    generation: int = Field(description="the account it belongs to (every reset starts one)")
    symbol: str
    trade: TradeOut
    partial_closes: list[TradeOut] = Field(description="parts closed earlier by reduce-only orders")


class PaperOrderResultOut(BaseModel):
    order: OrderOut | None = Field(description="the resting order (limit / stop_limit); null for a market order")
    fills: list[FillOut]
    trades: list[TradeOut] = Field(description="trades a reduce-only order closed")


class PaperResetOut(BaseModel):
    cancelled_orders: list[OrderOut]
    closed_trades: list[TradeOut]
    status: StatusOut


def _trades(rows: Any) -> list[TradeOut]:
    return [TradeOut.model_validate(row) for row in rows]


# -- status and account (AUTHENTICATED) -----------------------------------------------------------------
@tool("Paper Trading", "authenticated", title="Paper session status", read_only=True)
async def get_paper_status() -> StatusOut:
    """The paper session's live status: new/running/stopped, symbols and interval, market time, candles
    processed, equity, running metrics, settings version and anything degraded. `exists` is false (status new)
    until the first write created the session."""
    call = current()
    return await get_status(call.principal, call.services.paper)


@tool("Paper Trading", "authenticated", title="Paper portfolio", read_only=True)
async def get_paper_portfolio() -> PaperPortfolioOut:
    """The paper account (cash, equity, unrealised PnL, margin in use, available, fees and funding paid,
    counts of open positions and pending orders) with its open positions."""
    call = current()
    found = await call.services.paper.portfolio(call.principal)
    return PaperPortfolioOut(session_id=found.session_id, status=found.status,
                             account=AccountOut.model_validate(found.account),
                             positions=[PositionOut.model_validate(p) for p in found.positions])


@tool("Paper Trading", "authenticated", title="Open paper trades", read_only=True)
async def list_paper_open_trades() -> list[PositionOut]:
    """The paper session's open positions (one per symbol), each with its trade ID (for close_paper_trade),
    stop, take profit and MFE/MAE so far."""
    call = current()
    return [PositionOut.model_validate(p) for p in await call.services.paper.open_trades(call.principal)]


@tool("Paper Trading", "authenticated", title="Closed paper trades", read_only=True)
async def list_paper_closed_trades(
    limit: Annotated[int, Field(ge=1, le=500)] = 50,
    offset: Annotated[int, Field(ge=0, le=100_000)] = 0,
    generation: Annotated[int | None, Field(ge=0, le=MAX_ID, description=(
        "only this account (every reset starts the next); default: every account"))] = None,
) -> list[PaperClosedTradeOut]:
    """Closed paper trades, newest exit first, a page of `limit` after skipping `offset`."""
    call = current()
    rows = await call.services.paper.closed_trades(call.principal, limit, offset, generation)
    return [PaperClosedTradeOut(trade_id=r["trade_id"], generation=r.get("generation", 0), symbol=r["symbol"],
                                trade=TradeOut.model_validate(r["trade"]),
                                partial_closes=_trades(r.get("partial_closes") or [])) for r in rows]


@tool("Paper Trading", "authenticated", title="Pending paper orders", read_only=True)
async def list_paper_pending_orders() -> list[OrderOut]:
    """The paper session's resting limit and stop-limit orders, each with its order ID (for cancel_paper_order)."""
    call = current()
    return [OrderOut.model_validate(o) for o in await call.services.paper.pending_orders(call.principal)]


@tool("Paper Trading", "authenticated", title="Paper symbols", read_only=True)
async def get_paper_symbols() -> SymbolsOut:
    """The symbols the paper session trades, its interval (timeframe) and the feed it follows."""
    call = current()
    return await get_symbols(call.principal, call.services.paper)


# -- lifecycle (SENSITIVE) ------------------------------------------------------------------------------
@tool("Paper Trading", "sensitive", title="Start paper trading", idempotent=True)
async def start_paper_trading(
    idempotency_key: IdempotencyKey,
    symbols: Annotated[list[Symbol] | None, Field(min_length=1, max_length=20, description=(
        "default: the session's symbols, else the feed's first stream"))] = None,
    interval: Annotated[Interval | None, Field(description="default: the session's, else the feed's")] = None,
) -> StatusOut:
    """Start the paper session trading on the market feed with its current settings (simulated money). Refused
    while it runs already. Returns the session's status."""
    call = current()
    body = StartIn(symbols=[s.upper() for s in symbols] if symbols else None, interval=interval)
    return await start(call.principal, call.services.paper, body, idempotency_key)


@tool("Paper Trading", "sensitive", title="Stop paper trading", destructive=True, idempotent=True)
async def stop_paper_trading(idempotency_key: IdempotencyKey) -> StatusOut:
    """Stop the paper session: no new entries; open positions keep their stops and take profits and resting
    orders stay until closed or cancelled. Refused when it is not running. Returns the session's status."""
    call = current()
    return await stop(call.principal, call.services.paper, idempotency_key)


@tool("Paper Trading", "sensitive", title="Reset the paper account", destructive=True)
async def reset_paper_account(idempotency_key: IdempotencyKey) -> PaperResetOut:
    """Start a fresh paper account at the starting balance: pending orders are cancelled, open positions closed
    at the latest price, the session stops following the feed (status new); settings stay. Earlier trades are
    kept under the previous generation. Returns what was cancelled and closed, and the new status."""
    call = current()
    done = await call.services.paper.reset(call.principal, idempotency_key)
    return PaperResetOut(cancelled_orders=[OrderOut.model_validate(o) for o in done.cancelled_orders],
                         closed_trades=_trades(done.closed_trades), status=status_out(done.status, exists=True))


@tool("Paper Trading", "sensitive", title="Set the paper symbols", idempotent=True)
async def set_paper_symbols(
    symbols: Annotated[list[Symbol], Field(min_length=1, max_length=20)], idempotency_key: IdempotencyKey,
) -> SymbolsOut:
    """Trade exactly these symbols from now on (the session must have been started; each must be listed by the
    exchange and quoted in the account's currency; a symbol dropped must have no open position or order)."""
    call = current()
    return await put_symbols(SymbolsIn(symbols=[s.upper() for s in symbols]), call.principal, call.services.paper,
                             idempotency_key)


@tool("Paper Trading", "sensitive", title="Set the paper signal interval", idempotent=True)
async def set_paper_signal_interval(interval: Interval, idempotency_key: IdempotencyKey) -> StatusOut:
    """Trade on this timeframe from now on (the session must have been started; the same interval is refused).
    Returns the session's status."""
    call = current()
    return await put_signal_interval(SignalIntervalIn(interval=interval), call.principal, call.services.paper,
                                     idempotency_key)


@tool("Paper Trading", "sensitive", title="Run the paper analysis now", idempotent=True)
async def trigger_paper_analysis(idempotency_key: IdempotencyKey) -> TriggerOut:
    """Run the technical analysis of each symbol's last processed candle now and return it (direction,
    confidence, each strategy's verdict, indicator values). It never trades; refused before the session
    processed a candle."""
    call = current()
    return await trigger_analysis(call.principal, call.services.paper, idempotency_key)


# -- orders and trades (SENSITIVE) ----------------------------------------------------------------------
@tool("Paper Trading", "sensitive", title="Place a paper order")
async def place_paper_order(
    symbol: Symbol,
    side: Side,
    quantity: Annotated[float, Field(gt=0, allow_inf_nan=False, description="in the base asset, e.g. BTC")],
    idempotency_key: IdempotencyKey,
    order_type: Literal["market", "limit", "stop_limit"] = "market",
    limit_price: Annotated[Price, Field(description="required for limit and stop_limit")] = None,
    stop_price: Annotated[Price, Field(description="required for stop_limit: the price that arms the limit")] = None,
    reduce_only: Annotated[bool, Field(description="only reduce the open position; allowed while stopped")] = False,
    stop_loss: Annotated[Price, Field(description=(
        "the stop of the position it opens; with neither bracket given, the settings' stop_loss_pct applies"))] = None,
    take_profit: Annotated[Price, Field(description=(
        "the take profit of the position it opens; likewise from take_profit_pct"))] = None,
) -> PaperOrderResultOut:
    """Place a manual order in the paper session (simulated money; the session must be running unless
    reduce_only). A market order fills at once at the latest price ± slippage; limit and stop_limit orders rest
    until a candle fills them. The size is checked against the account's available margin and the symbol's
    filters. Returns the resting order, or the fills and any trade a reduce-only order closed."""
    call = current()
    order = ManualOrderInput(symbol=symbol.upper(), side=side, order_type=order_type, quantity=quantity,
                             limit_price=limit_price, stop_price=stop_price, reduce_only=reduce_only,
                             stop_loss=stop_loss, take_profit=take_profit)
    result = await call.services.paper.place_order(call.principal, order, idempotency_key)
    return PaperOrderResultOut(order=OrderOut.model_validate(result.order) if result.order else None,
                               fills=[FillOut.model_validate(f) for f in result.fills], trades=_trades(result.trades))


@tool("Paper Trading", "sensitive", title="Cancel a pending paper order", destructive=True, idempotent=True)
async def cancel_paper_order(order_id: OrderId, idempotency_key: IdempotencyKey) -> OrderOut:
    """Cancel a resting paper order (its reserved margin is released). An unknown order ID is not found.
    Returns the cancelled order."""
    call = current()
    return OrderOut.model_validate(await call.services.paper.cancel_order(call.principal, order_id, idempotency_key))


@tool("Paper Trading", "sensitive", title="Close a paper trade", destructive=True, idempotent=True)
async def close_paper_trade(trade_id: TradeId, idempotency_key: IdempotencyKey) -> TradeOut:
    """Close an open paper trade at the latest price. A closed or unknown trade ID is not found. Returns the
    closed trade with its PnL."""
    call = current()
    return TradeOut.model_validate(await call.services.paper.close_trade(call.principal, trade_id, idempotency_key))
