"""A user's real futures account as the exchange reports it: balance, positions, open orders, closed
trades, reconciliation against what Durabot expects; closing a position and flattening the account.

Every read decrypts the user's saved key here, signs through the shared rate-limit gate, and drops the
key when done: no key or secret reaches a reply, a log line or an error. An exchange failure is a
502 (``UpstreamFailed``) with the exchange's code and message.

Closing sends a reduce-only MARKET order for the position's full quantity through ``RealOrders`` (an
order workflow, so it is sent once and looked up when its fate is unknown); reducing risk is never
held behind a confirmation, so it goes out at once (SENSITIVE tier for agents).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from activities.binance.futures_account import (
    FuturesAccount,
    FuturesAccountClient,
    OpenAlgoOrder,
    OpenOrder,
    PositionRisk,
    UserTrade,
)
from activities.binance.key_vault import KeyVaultError, MasterKeyring, load_credentials
from activities.binance.shared_gate import GateLimits, SharedRequestGate
from activities.binance.signed import AccountSummary, SignedBinanceClient
from activities.exchange_errors import ExchangeError
from core.order_contracts import (
    CONDITIONAL_TYPES,
    FILLED,
    NOT_PLACED,
    OPEN,
    PARTIALLY_FILLED,
    UNKNOWN,
    OrderView,
)
from core.settings import Settings
from services.errors import Conflict, NotFound, Rejected, UpstreamFailed
from services.exchange_symbols import ExchangeSymbols
from services.idempotency import checked_key
from services.principal import Principal
from services.real_orders import OrderRequest, RealOrders, manual_order_id
from trading.reconciliation import ExpectedAccount, ReconciliationReport, ReportedAccount, reconcile

log = logging.getLogger("durabot.real_account")

# The orders Durabot counts as open on the exchange: live ones, and those whose fate is not proven
# (an order that may exist counts as exposure until the exchange shows otherwise).
EXPECTED_OPEN = (OPEN, PARTIALLY_FILLED, UNKNOWN, NOT_PLACED)
# Closed trades without a symbol cover the symbols of the user's real orders, at most this many
# (``userTrades`` takes one symbol per call, weight 5 each).
MAX_TRADE_SYMBOLS = 10


@dataclass(frozen=True)
class OpenOrders:
    orders: tuple[OpenOrder, ...]
    algo_orders: tuple[OpenAlgoOrder, ...]


@dataclass(frozen=True)
class Reconciliation:
    report: ReconciliationReport
    checked_at_ms: int


class RealAccount:
    def __init__(self, settings: Settings, db: AsyncDatabase, keyring: MasterKeyring, exchange: ExchangeSymbols,
                 orders: RealOrders) -> None:
        self.settings = settings
        self.db = db
        self.keyring = keyring
        self.exchange = exchange
        self.orders = orders

    @asynccontextmanager
    async def _signed(self, principal: Principal, key_id: str | None, url: str) -> AsyncIterator[SignedBinanceClient]:
        key_id = await self.orders.key_id_of(principal, key_id)
        try:
            credentials = await load_credentials(self.db, self.keyring, principal.user_id, key_id)
        except KeyVaultError as exc:
            log.error("stored API key cannot be decrypted", extra={"fields": {"key_id": key_id, "error": str(exc)}})
            raise Conflict("key_id", "the stored key cannot be decrypted; save it again") from None
        async with SignedBinanceClient(url, credentials, timeout_s=self.settings.order_request_timeout_s,
                                       gate=SharedRequestGate(
                                           self.db, url, credentials.api_key,
                                           GateLimits(self.settings.exchange_weight_per_minute))) as signed:
            try:
                yield signed
            except ExchangeError as exc:
                raise UpstreamFailed(f"the exchange could not be read: {exc}") from None

    @asynccontextmanager
    async def _account(self, principal: Principal, key_id: str | None) -> AsyncIterator[FuturesAccountClient]:
        async with self._signed(principal, key_id, self.settings.exchange_futures_url) as signed:
            yield FuturesAccountClient(signed)

    async def spot_balance(self, principal: Principal, key_id: str | None = None) -> AccountSummary:
        """The spot wallet (assets held, free and locked in open orders) and whether the key may trade spot."""
        async with self._signed(principal, key_id, self.settings.exchange_rest_url) as signed:
            return await signed.account()

    # -- reads ----------------------------------------------------------------------------------------
    async def balance(self, principal: Principal, key_id: str | None = None) -> FuturesAccount:
        async with self._account(principal, key_id) as account:
            return await account.account()

    async def positions(self, principal: Principal, key_id: str | None = None) -> list[PositionRisk]:
        """Open positions only (the exchange also lists symbols that merely have open orders)."""
        async with self._account(principal, key_id) as account:
            return [p for p in await account.positions() if p.position_amt != 0]

    async def open_orders(self, principal: Principal, key_id: str | None = None) -> OpenOrders:
        async with self._account(principal, key_id) as account:
            orders, algo_orders = await asyncio.gather(account.open_orders(), account.open_algo_orders())
        return OpenOrders(orders, algo_orders)

    async def closed_trades(self, principal: Principal, symbol: str | None = None, limit: int = 100,
                            key_id: str | None = None) -> list[UserTrade]:
        """The account's fills, newest first: of ``symbol``, or of the symbols of the user's real orders."""
        if symbol is not None:
            symbols = [(await self.exchange.symbol(symbol, "futures")).symbol]
        else:
            symbols = sorted(await self.db.real_orders.distinct("terms.symbol", {"user_id": principal.user_id}))
            symbols = symbols[:MAX_TRADE_SYMBOLS]
        async with self._account(principal, key_id) as account:
            trades = [t for s in symbols for t in await account.user_trades(s, limit=limit)]
        return sorted(trades, key=lambda t: (t.time_ms, t.trade_id), reverse=True)[:limit]

    # -- reconciliation -------------------------------------------------------------------------------
    async def expected(self, principal: Principal) -> ExpectedAccount:
        """What Durabot expects, from the user's real orders as written through to ``real_orders``: open
        orders are those still live or of unproven fate; positions are the net executed quantities.
        Until the real session owns its positions, this is the only record of what Durabot did."""
        positions: dict[str, float] = {}
        open_orders: dict[str, str] = {}
        open_algo_orders: dict[str, str] = {}
        notes: dict[str, str] = {}
        cursor = self.db.real_orders.find({"user_id": principal.user_id},
                                          {"_id": 0, "order_id": 1, "status": 1, "terms": 1, "executed_qty": 1})
        async for doc in cursor:
            symbol, side = doc["terms"]["symbol"], doc["terms"]["side"]
            executed = float(doc.get("executed_qty") or 0)
            if executed:
                positions[symbol] = positions.get(symbol, 0.0) + (executed if side == "BUY" else -executed)
            if doc["status"] in EXPECTED_OPEN:
                # Protective (conditional) orders live on the Algo Order API, under their clientAlgoId.
                expected = open_algo_orders if doc["terms"]["order_type"] in CONDITIONAL_TYPES else open_orders
                expected[doc["order_id"]] = symbol
                notes[doc["order_id"]] = f"status {doc['status']}"
        return ExpectedAccount(positions=positions, open_orders=open_orders, open_algo_orders=open_algo_orders,
                               order_notes=notes)

    async def reconciliation(self, principal: Principal, key_id: str | None = None) -> Reconciliation:
        expected = await self.expected(principal)
        async with self._account(principal, key_id) as account:
            positions, orders, algo_orders, hedge = await asyncio.gather(
                account.positions(), account.open_orders(), account.open_algo_orders(), account.hedge_mode())
        held: dict[str, float] = {}
        for position in positions:
            if position.position_amt:
                held[position.symbol] = held.get(position.symbol, 0.0) + position.position_amt
        reported = ReportedAccount(
            positions=held, open_orders={o.client_order_id: o.symbol for o in orders},
            open_algo_orders={a.client_algo_id: a.symbol for a in algo_orders}, hedge_mode=hedge)
        steps = await self._step_sizes(set(expected.positions) | set(held))
        return Reconciliation(reconcile(expected, reported, steps), int(time.time() * 1000))

    async def _step_sizes(self, symbols: set[str]) -> dict[str, float]:
        steps = {}
        for symbol in symbols:
            try:
                steps[symbol] = (await self.exchange.symbol(symbol, "futures")).step_size
            except NotFound:
                pass  # a delisted symbol: its quantities must match exactly
        return steps

    # -- closing --------------------------------------------------------------------------------------
    async def close_position(self, principal: Principal, symbol: str, key: str | None,
                             key_id: str | None = None) -> OrderView:
        """A reduce-only MARKET order for the whole position, sent at once. A repeat with the same
        Idempotency-Key answers the first close (even once the position is gone)."""
        principal.require("sensitive")
        key = str(checked_key(key, required=True))
        symbol = (await self.exchange.symbol(symbol, "futures")).symbol
        earlier = await self._earlier(principal, manual_order_id(principal.user_id, key))
        if earlier is not None:
            if earlier.terms.symbol != symbol:
                raise Rejected("Idempotency-Key", "this Idempotency-Key was used for another order; use a new key")
            return earlier
        async with self._account(principal, key_id) as account:
            positions = [p for p in await account.positions(symbol) if p.position_amt]
        if not positions:
            raise NotFound(f"no open {symbol} position")
        return await self._close(principal, positions[0], key, key_id)

    async def flatten(self, principal: Principal, key: str | None, key_id: str | None = None) -> list[OrderView]:
        """Close every open position (one reduce-only MARKET order each, sent at once). Each close's
        key derives from the request's, so a repeat never closes a position twice."""
        principal.require("sensitive")
        key = str(checked_key(key, required=True))
        async with self._account(principal, key_id) as account:
            positions = [p for p in await account.positions() if p.position_amt]
        stem = hashlib.sha256(key.encode()).hexdigest()[:40]
        return [await self._close(principal, p, f"flat:{stem}:{p.symbol}", key_id) for p in positions]

    async def _close(self, principal: Principal, position: PositionRisk, key: str, key_id: str | None) -> OrderView:
        request = OrderRequest(symbol=position.symbol, side="SELL" if position.position_amt > 0 else "BUY",
                               order_type="MARKET", quantity=abs(position.position_amt), reduce_only=True,
                               key_id=key_id)
        closed = (await self.orders.request_order(principal, request, key)).order
        if closed.status == FILLED:
            await self._cancel_protection(principal, position.symbol)
        return closed

    async def _cancel_protection(self, principal: Principal, symbol: str) -> None:
        """A flat position's close-position stop or take profit would close the next position in the
        symbol: cancel them once the close filled."""
        cursor = self.db.real_orders.find(
            {"user_id": principal.user_id, "terms.symbol": symbol, "terms.order_type": {"$in": list(CONDITIONAL_TYPES)},
             "status": {"$in": [OPEN, PARTIALLY_FILLED, UNKNOWN]}}, {"order_id": 1})
        for doc in [d async for d in cursor]:
            try:
                await self.orders.cancel(principal, doc["order_id"], "the position was closed", position_closed=True)
            except (NotFound, Rejected):
                pass  # it ended meanwhile (triggered, cancelled elsewhere)

    async def _earlier(self, principal: Principal, order_id: str) -> OrderView | None:
        try:
            return await self.orders.order(principal, order_id)
        except NotFound:
            return None
