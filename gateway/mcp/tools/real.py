"""Real Trading: the real futures account and manual real orders (reads: AUTHENTICATED).

Placing an order is CRITICAL and never acts: it creates the order's 2-step confirmation, which only the
account's owner completes, in the dashboard or Telegram; no tool confirms anything. What lowers risk
(cancel an order, close a position, flatten, a first or tighter stop) acts at once on the SENSITIVE tier,
the tier the services give an agent for it: whoever may see trouble may get out of it. So do stopping
the real session and stopping its entries. Starting it is CRITICAL and only requested: the RED approval
that starts it is the owner's. Resuming its entries and adopting positions are a person's (the services
refuse agents). The real session's settings change through the tuning tools
(``session="real"``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from mcp.server.elicitation import ElicitationResult
from mcp.server.mcpserver import Context, Resolve
from mcp.server.mcpserver.resolve import Elicit
from pydantic import BaseModel, Field

from core.order_contracts import AWAITING_CONFIRMATION, CONFIRM_CHANNELS
from gateway.mcp.registry import IdempotencyKey, current, tool
from gateway.mcp.tools.market import Symbol
from gateway.mcp.tools.tuning import AdjustmentOut, adjustment_out
from gateway.paper.schemas import Interval
from gateway.real.account_schemas import (
    BalanceOut,
    FlattenOut,
    OpenOrdersOut,
    PositionOut,
    ReconciliationOut,
    SpotBalanceOut,
    UserTradeOut,
)
from gateway.real.schemas import OrderOut
from gateway.real.session_schemas import LedgerEntryOut, RealSessionOut, RealSettingsOut
from gateway.routers.real_account import (
    balance,
    close_position,
    closed_trades,
    flatten,
    open_orders,
    positions,
    reconciliation,
    spot_balance,
)
from gateway.routers.real_session import real_status, session_out, trading_settings
from gateway.routers.real_trading import get_order, list_orders, order_out
from services.real_orders import OrderRequest, OrderRequested
from services.real_session import RealStartRequest

OrderId = Annotated[str, Field(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9_-]+$",
                               description="the order's client order ID (also its confirmation ID)")]
Price = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class RealOrderRequestOut(BaseModel):
    """A real order as requested: waiting for its owner's confirmation, or sent at once (it only lowers risk)."""

    confirmation_id: str = Field(description="the order's ID, under which its owner confirms it")
    status: str = Field(description="AWAITING_CONFIRMATION until the owner confirms; then SUBMITTING, OPEN, "
                                    "FILLED…; CANCELED or EXPIRED when never confirmed")
    awaiting_confirmation: bool = Field(description="true: nothing has been sent to the exchange yet")
    confirm_by_ms: int | None = Field(description="the confirmation deadline (epoch ms); unconfirmed, it expires")
    confirm_channels: list[str] = Field(description="where the owner may confirm: the dashboard, or Telegram once "
                                                    "linked")
    where_to_confirm: str = Field(description="what the account's owner does next, for the user to read")
    order: OrderOut


def requested_out(requested: OrderRequested) -> RealOrderRequestOut:
    # An agent is never shown a confirmation secret (its channel has none): only the order goes out.
    order = order_out(requested.order)
    waiting = order.status == AWAITING_CONFIRMATION
    page = f"{current().services.settings.gateway_url}/real-trading"
    where = (f"The account's owner confirms order {order.order_id} in the Durabot dashboard ({page}, orders "
             "awaiting confirmation) or in the linked Telegram chat before the deadline, with a two-factor code "
             "when the notional is large. Until then nothing is sent to the exchange; no tool can confirm it."
             if waiting else f"Not awaiting confirmation: the order is {order.status}.")
    return RealOrderRequestOut(confirmation_id=order.order_id, status=order.status, awaiting_confirmation=waiting,
                               confirm_by_ms=order.confirm_by_ms if waiting else None,
                               confirm_channels=list(CONFIRM_CHANNELS) if waiting else [], where_to_confirm=where,
                               order=order)


# -- reads ------------------------------------------------------------------------------------------

@tool("Real Trading", "authenticated", title="Real futures balance", read_only=True, open_world=True)
async def get_real_balance() -> BalanceOut:
    """The real USDⓈ-M futures wallet as the exchange reports it (with the user's saved API key): wallet
    balance, unrealized profit, margin in use and available, per asset. Rejected naming key_id when the user
    saved no API key."""
    call = current()
    return await balance(call.principal, call.services.real_account)


@tool("Real Trading", "authenticated", title="Real spot balance", read_only=True, open_world=True)
async def get_spot_balance() -> SpotBalanceOut:
    """The real spot wallet: each asset held, free and locked in open orders, and whether the key may trade spot."""
    call = current()
    return await spot_balance(call.principal, call.services.real_account)


@tool("Real Trading", "authenticated", title="Real positions", read_only=True, open_world=True)
async def get_real_positions() -> list[PositionOut]:
    """Open real futures positions on the exchange (non-zero only): signed quantity (negative is short),
    entry, mark and liquidation prices, unrealized profit and margin."""
    call = current()
    return await positions(call.principal, call.services.real_account)


@tool("Real Trading", "authenticated", title="Open orders on the exchange", read_only=True, open_world=True)
async def get_real_open_orders() -> OpenOrdersOut:
    """Every open order on the exchange's futures account, Durabot's or not, and the open conditional (stop,
    take-profit) orders."""
    call = current()
    return await open_orders(call.principal, call.services.real_account)


@tool("Real Trading", "authenticated", title="Real orders", read_only=True)
async def list_real_orders(
    open_only: Annotated[bool, Field(description="only those awaiting confirmation, in flight or open")] = False,
    limit: Annotated[int, Field(ge=1, le=500)] = 100,
) -> list[OrderOut]:
    """The user's real orders placed through Durabot (manual, protective, the real session's), newest first,
    with status, terms, summary and fills."""
    call = current()
    return await list_orders(call.principal, call.services.real_orders, open_only, limit)


@tool("Real Trading", "authenticated", title="One real order", read_only=True)
async def get_real_order(order_id: OrderId) -> OrderOut:
    """One of the user's real orders by its ID: status and history, terms, risk summary, fills (not found when
    the user has no such order)."""
    call = current()
    return await get_order(order_id, call.principal, call.services.real_orders)


@tool("Real Trading", "authenticated", title="Real fills", read_only=True, open_world=True)
async def get_real_closed_trades(
    symbol: Annotated[Symbol | None, Field(description="one symbol; unset: the symbols of the user's real "
                                                       "orders")] = None,
    limit: Annotated[int, Field(ge=1, le=1000)] = 100,
) -> list[UserTradeOut]:
    """The real futures account's fills as the exchange reports them, newest first: price, quantity, realized
    profit and commission."""
    call = current()
    return await closed_trades(call.principal, call.services.real_account, symbol, limit)


@tool("Real Trading", "authenticated", title="Reconciliation report", read_only=True, open_world=True)
async def get_reconciliation_report() -> ReconciliationOut:
    """What Durabot expects (its real orders still open or of unknown fate, and the net of their fills as
    positions) against what the exchange reports now; ok only when nothing differs."""
    call = current()
    return await reconciliation(call.principal, call.services.real_account)


# -- writes -----------------------------------------------------------------------------------------

class OwnerNotice(BaseModel):
    understood: bool = Field(True, description="I will confirm or cancel it in the Durabot dashboard")


def tell_the_owner(ctx: Context, symbol: str, side: str, quantity: float, order_type: str,
                   market: str) -> Elicit[OwnerNotice] | None:
    """Where the client can show its person a question (elicitation, 2026-07-28's multi-round-trip form),
    also show them the request. Whatever they answer is ignored: a confirmation is never an elicitation
    answer, only the dashboard's or Telegram's 2-step."""
    capabilities = ctx.client_capabilities
    if (ctx.protocol_version or "") < MULTI_ROUND_TRIP or capabilities is None or capabilities.elicitation is None:
        return None
    return Elicit(f"An agent asks for a real {market} order: {side} {quantity} {symbol.upper()} {order_type}. "
                  "Nothing is placed until you confirm it in the Durabot dashboard (Real trading) or Telegram; "
                  "answering here confirms nothing.", OwnerNotice)


MULTI_ROUND_TRIP = "2026-07-28"
OwnerTold = Annotated[ElicitationResult[OwnerNotice] | None, Resolve(tell_the_owner)]

@tool("Real Trading", "critical", title="Request a real order (the owner confirms it)", open_world=True)
async def place_real_order(
    symbol: Symbol,
    side: Literal["BUY", "SELL"],
    quantity: Annotated[float, Field(gt=0, allow_inf_nan=False, description="base asset quantity, rounded down "
                                                                            "to the symbol's step")],
    idempotency_key: IdempotencyKey,
    order_type: Literal["MARKET", "LIMIT"] = "MARKET",
    price: Annotated[Price | None, Field(description="LIMIT only, rounded to the symbol's tick")] = None,
    time_in_force: Annotated[Literal["GTC", "IOC", "FOK", "GTX"] | None, Field(description="LIMIT only")] = None,
    leverage: Annotated[int, Field(ge=1, le=125, description="futures: the leverage the summary's liquidation "
                                                             "estimate assumes")] = 1,
    market: Literal["futures", "spot"] = "futures",
    owner_told: OwnerTold = None,
) -> RealOrderRequestOut:
    """Request a real order with real money. It is NOT placed: it waits for the account's owner to confirm it
    in the Durabot dashboard or Telegram (2-step, a two-factor code for large amounts) before its deadline;
    nothing reaches the exchange before that, and no tool can confirm it. Returns the confirmation ID (the
    order ID), its status (AWAITING_CONFIRMATION), the deadline, where to confirm, and the order's summary
    (expected price, notional, fee, liquidation estimate, risk checks). Failed risk checks are refused. To
    close or reduce a position use close_real_position or flatten_real_positions, which act at once."""
    call = current()
    request = OrderRequest(symbol=symbol, side=side, order_type=order_type, quantity=quantity, price=price,
                           time_in_force=time_in_force, leverage=leverage, market=market)
    return requested_out(await call.services.real_orders.request_order(call.principal, request, idempotency_key))


# Cancelling, closing, flattening and a first or tighter stop lower risk: the services let an agent do
# them on the SENSITIVE tier, at once, and so do these tools.
@tool("Real Trading", "sensitive", title="Cancel a real order", destructive=True, idempotent=True, open_world=True)
async def cancel_real_order(
    order_id: OrderId, idempotency_key: IdempotencyKey,
    reason: Annotated[str, Field(max_length=200)] = "",
) -> OrderOut:
    """Cancel one of the user's real orders, at once (it lowers risk, so it needs no confirmation): an order
    awaiting confirmation is dropped with nothing sent; an open one is cancelled on the exchange (a fill that
    wins the race is reported as filled). A repeat answers the order as it ended."""
    call = current()
    return order_out(await call.services.real_orders.cancel(call.principal, order_id, reason, idempotency_key))


@tool("Real Trading", "sensitive", title="Close a real position", destructive=True, idempotent=True,
      open_world=True)
async def close_real_position(symbol: Symbol, idempotency_key: IdempotencyKey) -> OrderOut:
    """Close the whole real futures position in a symbol with a reduce-only MARKET order, sent at once (closing
    lowers risk, so it needs no confirmation); its stop and take-profit orders are cancelled once it filled.
    Not found when there is no open position. A repeat with the same key answers the first close."""
    call = current()
    return await close_position(symbol, call.principal, call.services.real_account, idempotency_key)


@tool("Real Trading", "sensitive", title="Flatten every real position", destructive=True, idempotent=True,
      open_world=True)
async def flatten_real_positions(idempotency_key: IdempotencyKey) -> FlattenOut:
    """Close every open real futures position: one reduce-only MARKET order each, sent at once (it lowers
    risk, so it needs no confirmation). Returns the close orders (none when already flat)."""
    call = current()
    return await flatten(call.principal, call.services.real_account, idempotency_key)


class ProtectionSetOut(BaseModel):
    stop_loss: RealOrderRequestOut | None
    take_profit: RealOrderRequestOut | None


@tool("Real Trading", "sensitive", title="Set a real position's stop loss and take profit", open_world=True)
async def set_real_protection(
    symbol: Symbol, idempotency_key: IdempotencyKey,
    stop_loss: Annotated[Price | None, Field(description="the stop's trigger price")] = None,
    take_profit: Annotated[Price | None, Field(description="the take profit's trigger price")] = None,
) -> ProtectionSetOut:
    """Set or move a real position's exchange-side stop loss and take profit (close-position orders). A first
    stop, a tighter one and any take profit lower risk and are placed at once; the order they replace is
    cancelled once they are on the exchange. A stop moved further from the price raises risk: it needs the
    critical tier and then waits for the owner's confirmation in the dashboard or Telegram, like an order."""
    call = current()
    placed = await call.services.real_protection.set_protection(call.principal, symbol, stop_loss, take_profit,
                                                                idempotency_key)
    return ProtectionSetOut(stop_loss=requested_out(placed.stop_loss) if placed.stop_loss else None,
                            take_profit=requested_out(placed.take_profit) if placed.take_profit else None)


# -- the real session -------------------------------------------------------------------------------

@tool("Real Trading", "authenticated", title="Real session status", read_only=True)
async def get_real_status() -> RealSessionOut:
    """The real trading session: NEW (never started or awaiting its start approval), RUNNING, HALTED (entries
    stopped by the session, see halted_reason) or STOPPED; its symbols, positions with their protective orders,
    orders in flight, alerts and the last reconciliation."""
    call = current()
    return await real_status(call.principal, call.services.real_sessions)


@tool("Real Trading", "authenticated", title="Real session settings", read_only=True)
async def get_real_settings() -> RealSettingsOut:
    """The settings the real session trades (engine and analysis), with their version; not found before a start
    was requested. Change them with the tuning tools and session="real"."""
    call = current()
    return await trading_settings(call.principal, call.services.real_sessions)


@tool("Real Trading", "authenticated", title="Real ledger", read_only=True)
async def get_real_ledger(limit: Annotated[int, Field(ge=1, le=500)] = 100) -> list[LedgerEntryOut]:
    """The exchange's records booked for the real session, newest first: fills (by trade ID) and income (fees,
    funding, realized profit, by transaction ID)."""
    call = current()
    return [LedgerEntryOut.model_validate(e) for e in await call.services.real_sessions.ledger(call.principal, limit)]


# Stopping is never blocked (the session's own rule): SENSITIVE and at once. The services keep no key for
# these; a repeat finds the session stopped already and changes nothing.
@tool("Real Trading", "sensitive", title="Stop the real session", destructive=True, idempotent=True)
async def stop_real_session(
    idempotency_key: IdempotencyKey,
    flatten_positions: Annotated[bool, Field(description="also close every position of the session (reduce-only "
                                                         "MARKET orders, at once)")] = False,
    reason: Annotated[str, Field(max_length=500)] = "",
) -> RealSessionOut:
    """Stop the real trading session at once (it lowers risk, so it is never blocked or confirmed): no new
    entries from now on; with flatten_positions, its positions are closed and their protective orders
    cancelled. Only the account's owner can start it again (a RED approval)."""
    call = current()
    return session_out(await call.services.real_sessions.stop(call.principal, flatten_positions, reason))


@tool("Real Trading", "sensitive", title="Stop the real session's entries", destructive=True, idempotent=True)
async def stop_real_entries(idempotency_key: IdempotencyKey) -> RealSessionOut:
    """Stop the real session from opening new positions, at once (it lowers risk, so it is never blocked); open
    positions keep their stops and exits. Only the account's owner can resume entries, in the dashboard."""
    call = current()
    return session_out(await call.services.real_sessions.set_entries(call.principal, False))


@tool("Real Trading", "sensitive", title="Reconcile the real session now", idempotent=True, open_world=True)
async def reconcile_real_session(idempotency_key: IdempotencyKey) -> RealSessionOut:
    """Compare the real session with the exchange now (positions, orders, position mode, margin, leverage); any
    difference halts its entries until the owner adopts or flattens. Returns the session with the report."""
    call = current()
    return session_out(await call.services.real_sessions.reconcile(call.principal))


class RealStartRequestOut(BaseModel):
    session: RealSessionOut = Field(description="the real session as configured: waiting, not trading")
    approval: AdjustmentOut = Field(description="the RED approval whose approval by the owner starts it")


@tool("Real Trading", "critical", title="Request the start of real trading (the owner approves it)")
async def request_real_trading_start(
    idempotency_key: IdempotencyKey,
    symbols: Annotated[list[Symbol], Field(max_length=20, description="the paper session's when empty")] = [],  # noqa: B006
    interval: Annotated[Interval | None, Field(description="the paper session's when unset")] = None,
    reason: Annotated[str, Field(max_length=500, description="why: the owner reads it")] = "",
) -> RealStartRequestOut:
    """Request that the real session start trading with the paper session's settings. It never starts
    anything itself: it configures the session (waiting) and creates a RED approval, which only the account's
    owner approves in the dashboard by typing its exact text with a fresh two-factor code. Returns the
    approval's ID and where the owner approves it."""
    call = current()
    requested = await call.services.real_sessions.request_start(
        call.principal, RealStartRequest(tuple(s.upper() for s in symbols), interval, None, reason), idempotency_key)
    return RealStartRequestOut(session=session_out(requested.session), approval=adjustment_out(requested.proposal))
