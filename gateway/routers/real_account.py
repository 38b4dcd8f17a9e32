"""``/api/real-trading``: the real futures account as the exchange reports it, reconciliation, and
closing positions. An adapter over ``services.real_account``.

Reads sign with your saved API key (``key_id``; unset: your first one); without one they answer 422
naming ``key_id``. An exchange that cannot be read is a 502. Closing a position (or all of them) sends a
reduce-only MARKET order at once, without a confirmation step.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path, Query

from gateway.auth.deps import AUTH_ERRORS, CurrentUser, Responses
from gateway.deps import IdempotencyKey, RealAccountDep, RealProtectionDep
from gateway.paper.schemas import ErrorOut
from gateway.real.account_schemas import (
    BalanceOut,
    DifferenceOut,
    FlattenOut,
    OpenOrdersOut,
    PositionOut,
    ProtectionIn,
    ProtectionOut,
    ReconciliationOut,
    SpotBalanceOut,
    UserTradeOut,
)
from gateway.real.schemas import OrderOut
from gateway.routers.real_trading import REJECTED, order_out, requested_out

router = APIRouter(prefix="/api/real-trading", tags=["real-trading"])

UPSTREAM: Responses = {502: {"model": ErrorOut, "description": "The exchange could not be read or refused the call"}}
NO_POSITION: Responses = {404: {"model": ErrorOut, "description": "No open position in this symbol, or an unlisted "
                                                                  "symbol"}}
READ = {**AUTH_ERRORS, **REJECTED, **UPSTREAM}
KeyId = Annotated[str | None, Query(max_length=64, description="Which saved API key; unset = your first one.")]
Symbol = Annotated[str, Path(min_length=5, max_length=20, pattern=r"^[A-Za-z0-9]+$", examples=["BTCUSDT"])]


@router.get("/balance", response_model=BalanceOut, responses=READ)
async def balance(user: CurrentUser, account: RealAccountDep, key_id: KeyId = None) -> BalanceOut:
    """The futures wallet: balances, unrealized profit, margin in use and available."""
    return BalanceOut.model_validate(await account.balance(user, key_id))


@router.get("/spot/balance", response_model=SpotBalanceOut, responses=READ)
async def spot_balance(user: CurrentUser, account: RealAccountDep, key_id: KeyId = None) -> SpotBalanceOut:
    """The spot wallet: each asset held, free and locked in open orders (what spot orders trade)."""
    return SpotBalanceOut.model_validate(await account.spot_balance(user, key_id))


@router.get("/positions", response_model=list[PositionOut], responses=READ)
async def positions(user: CurrentUser, account: RealAccountDep, key_id: KeyId = None) -> list[PositionOut]:
    """Open positions (non-zero quantities only)."""
    return [PositionOut.model_validate(p) for p in await account.positions(user, key_id)]


@router.post("/positions/{symbol}/close", response_model=OrderOut, responses={**READ, **NO_POSITION})
async def close_position(symbol: Symbol, user: CurrentUser, account: RealAccountDep, key: IdempotencyKey = None,
                         key_id: KeyId = None) -> OrderOut:
    """Close the whole position with a reduce-only MARKET order, sent at once (no confirmation; an
    Idempotency-Key is required, and a repeat answers the first close)."""
    return order_out(await account.close_position(user, symbol, key, key_id))


@router.put("/positions/{symbol}/sltp", response_model=ProtectionOut, responses={**READ, **NO_POSITION, **REJECTED})
async def set_protection(symbol: Symbol, body: ProtectionIn, user: CurrentUser, protection: RealProtectionDep,
                         key: IdempotencyKey = None) -> ProtectionOut:
    """Set or move the position's stop loss and take profit: exchange-side close-position orders. A first or
    tighter stop acts at once; a stop moved away from the price waits for your confirmation (its
    ``confirmation_token``). The old order is cancelled once the new one is on the exchange."""
    placed = await protection.set_protection(user, symbol, body.stop_loss, body.take_profit, key)
    return ProtectionOut(stop_loss=requested_out(placed.stop_loss) if placed.stop_loss else None,
                         take_profit=requested_out(placed.take_profit) if placed.take_profit else None)


@router.post("/flatten", response_model=FlattenOut, responses=READ)
async def flatten(user: CurrentUser, account: RealAccountDep, key: IdempotencyKey = None,
                  key_id: KeyId = None) -> FlattenOut:
    """Close every open position (one reduce-only MARKET order each, sent at once; Idempotency-Key required)."""
    return FlattenOut(orders=[order_out(v) for v in await account.flatten(user, key, key_id)])


@router.get("/open-orders", response_model=OpenOrdersOut, responses=READ)
async def open_orders(user: CurrentUser, account: RealAccountDep, key_id: KeyId = None) -> OpenOrdersOut:
    """Every open order on the exchange, Durabot's or not, and the open conditional (algo) orders."""
    return OpenOrdersOut.model_validate(await account.open_orders(user, key_id))


@router.get("/closed-trades", response_model=list[UserTradeOut], responses={**READ, **NO_POSITION})
async def closed_trades(user: CurrentUser, account: RealAccountDep,
                        symbol: Annotated[str | None, Query(min_length=5, max_length=20,
                                                            pattern=r"^[A-Za-z0-9]+$")] = None,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100, key_id: KeyId = None) -> list[UserTradeOut]:
    """The account's fills, newest first: of ``symbol``, or of the symbols of your real orders."""
    return [UserTradeOut.model_validate(t) for t in await account.closed_trades(user, symbol, limit, key_id)]


@router.get("/reconciliation", response_model=ReconciliationOut, responses=READ)
async def reconciliation(user: CurrentUser, account: RealAccountDep, key_id: KeyId = None) -> ReconciliationOut:
    """What Durabot expects (your real orders: those open or of unproven fate, and the net of their
    fills as positions) against what the exchange reports. Not ok on any difference, including hedge mode."""
    checked = await account.reconciliation(user, key_id)
    return ReconciliationOut(ok=checked.report.ok, checked_at_ms=checked.checked_at_ms,
                             differences=[DifferenceOut.model_validate(asdict(d)) for d in checked.report.differences])
