"""The activities of the real session: read the exchange's view of the account, book its fills and
income from REST records, write the session's status through, and check the approval that starts it.

Keys are decrypted here from the key ID the workflow passed and never leave. Every read goes through
the shared rate-limit gate. The ledger is written from the exchange's records (user trades by trade
ID, income by transaction ID), each under a unique key, so a repeated sync books nothing twice and a
sync after a gap (a dropped user-data stream, a worker down) fills it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities import events
from activities.binance.futures_account import FuturesAccountClient
from activities.binance.key_vault import MasterKeyring
from activities.binance.rest import BinanceRestClient
from activities.binance.signed import SignedBinanceClient
from activities.binance.user_stream import UserDataStream, UserStreamConnected
from activities.real_orders import signed_client
from core.event_types import BOT_STATUS_UPDATE
from core.real_session_contracts import (
    HINT_CONNECTED,
    NOT_APPROVED,
    SIGNAL_LEDGER_HINT,
    ExchangePosition,
    ExchangeView,
    FollowUserStreamInput,
    LedgerHint,
    PrepareAccountInput,
    PrepareAccountResult,
    ReadExchangeInput,
    RecordRealSessionInput,
    StartRealSessionInput,
    SyncLedgerInput,
    SyncLedgerResult,
)
from core.settings import Settings
from core.tuning_contracts import APPLIED, APPROVED

log = logging.getLogger(__name__)

# Income entries one sync reads per call (Binance's maximum is 1000).
INCOME_PAGE = 1000
TRADES_PAGE = 1000
# Stream events this close together become one hint (a fill brings an order, a trade and a balance event).
HINT_COALESCE_S = 0.25
STREAM_HEARTBEAT_S = 5.0
SIGNAL_RETRY_S = 1.0
# Reconnects are cheap (Binance allows 300 connections per 5 minutes per IP); a short gap is worth it.
STREAM_BACKOFF_MAX_S = 5.0


class RealSessionActivities:
    def __init__(self, db: AsyncDatabase, settings: Settings, keyring: MasterKeyring,
                 temporal: Client | None = None) -> None:
        self.db = db
        self.settings = settings
        self.keyring = keyring
        self.temporal = temporal  # to hint the session (follow_user_stream)

    async def _signed(self, user_id: str, key_id: str) -> SignedBinanceClient:
        return await signed_client(self.db, self.settings, self.keyring, user_id, key_id)

    @activity.defn
    async def read_exchange(self, request: ReadExchangeInput) -> ExchangeView:
        """Positions, and open plain and algo orders of the session's symbols (each by symbol: weight 1
        instead of 40), the book's prices; with ``full`` the position mode, the wallet and each symbol's
        leverage and margin type too."""
        hedge: bool | None = None
        wallet = None
        async with await self._signed(request.user_id, request.key_id) as signed:
            account = FuturesAccountClient(signed)
            positions = await account.positions()
            orders = [o for s in request.symbols for o in await account.open_orders(s)]
            algo_orders = [a for s in request.symbols for a in await account.open_algo_orders(s)]
            configs = []
            if request.full:
                hedge, wallet = await account.hedge_mode(), await account.account()
                configs = [await account.symbol_config(s) for s in request.symbols]
        prices: dict[str, float] = {}
        async with BinanceRestClient(self.settings.exchange_rest_url,
                                     futures_base_url=self.settings.exchange_futures_url) as rest:
            for symbol in request.symbols:
                book = await rest.book_ticker(symbol, market="usdm")
                prices[symbol] = (book.bid_price + book.ask_price) / 2
        return ExchangeView(
            positions=tuple(ExchangePosition(p.symbol, p.position_amt, p.entry_price)
                            for p in positions if p.position_amt),
            open_orders={o.client_order_id: o.symbol for o in orders},
            open_algo_orders={a.client_algo_id: a.symbol for a in algo_orders},
            prices=prices, read_at_ms=int(time.time() * 1000), hedge_mode=hedge,
            wallet_balance=wallet.total_wallet_balance if wallet else None,
            equity=wallet.total_margin_balance if wallet else None,
            leverage={c.symbol: c.leverage for c in configs}, margin_types={c.symbol: c.margin_type for c in configs})

    @activity.defn
    async def prepare_account(self, request: PrepareAccountInput) -> PrepareAccountResult:
        """Leverage and isolated margin per symbol (the model's; a margin type cannot change while a
        position or order is open: the exchange's refusal fails the start, with its reason)."""
        leverage: dict[str, int] = {}
        margin: dict[str, str] = {}
        async with await self._signed(request.user_id, request.key_id) as signed:
            account = FuturesAccountClient(signed)
            for symbol in request.symbols:
                confirmed = await account.set_margin_type(symbol, "ISOLATED")
                if confirmed is not None:  # else a position or order holds it: reconciliation shows that
                    margin[symbol] = confirmed
                leverage[symbol] = await account.set_leverage(symbol, request.leverage)
        return PrepareAccountResult(leverage, margin)

    @activity.defn
    async def sync_ledger(self, request: SyncLedgerInput) -> SyncLedgerResult:
        """Book every income entry and fill the exchange has that the ledger has not, from the last one
        booked on (the cursors are the ledger itself: its newest income time, its newest trade ID per
        symbol). Fills are fetched for the session's symbols and for every symbol the income names with a
        fee (``userTrades`` needs a symbol): a fill made by hand on another symbol is booked too."""
        fills = income = 0
        async with await self._signed(request.user_id, request.key_id) as signed:
            account = FuturesAccountClient(signed)
            if request.income:
                newest_income = await self.db.real_ledger.find_one(
                    {"user_id": request.user_id, "kind": "income"}, {"time_ms": 1}, sort=[("time_ms", -1)])
                start = int(newest_income["time_ms"]) if newest_income else 0
                while True:
                    entries = await account.income(start_time_ms=start, limit=INCOME_PAGE)
                    income += await self._book(request, [{"kind": "income", "entry_id": f"income:{e.tran_id}",
                                                          **asdict(e)} for e in entries])
                    if len(entries) < INCOME_PAGE:
                        break
                    start = entries[-1].time_ms  # entries of that millisecond again: their keys book them once
            traded = await self.db.real_ledger.distinct(
                "symbol", {"user_id": request.user_id, "kind": "income", "income_type": "COMMISSION"})
            for symbol in sorted(set(request.symbols) | {s for s in traded if s}):
                newest = await self.db.real_ledger.find_one(
                    {"user_id": request.user_id, "kind": "fill", "symbol": symbol}, {"trade_id": 1},
                    sort=[("trade_id", -1)])
                from_id = int(newest["trade_id"]) + 1 if newest else 0
                while True:
                    page = await account.user_trades(symbol, limit=TRADES_PAGE, from_id=from_id)
                    fills += await self._book(request, [{"kind": "fill", "entry_id": f"fill:{t.symbol}:{t.trade_id}",
                                                         **asdict(t)} for t in page])
                    if len(page) < TRADES_PAGE:
                        break
                    from_id = page[-1].trade_id + 1
        return SyncLedgerResult(fills, income)

    async def _book(self, request: SyncLedgerInput, entries: list[dict[str, Any]]) -> int:
        if not entries:
            return 0
        now = datetime.now(UTC)
        result = await self.db.real_ledger.bulk_write([
            UpdateOne({"user_id": request.user_id, "entry_id": e["entry_id"]},
                      {"$setOnInsert": {**e, "user_id": request.user_id, "session_id": request.session_id,
                                        "booked_at": now}}, upsert=True)
            for e in entries], ordered=False)
        return result.upserted_count

    @activity.defn
    async def follow_user_stream(self, request: FollowUserStreamInput) -> None:
        """Until cancelled or the session is gone: follow the key's user-data stream and hint the session
        (``SIGNAL_LEDGER_HINT``) after every (re)connection and every fill or balance change, so it
        fetches the REST records. Nothing is booked from the stream itself."""
        if self.temporal is None:
            raise ApplicationError("no Temporal client to hint the session with", non_retryable=True)
        session = self.temporal.get_workflow_handle(request.session_id)
        due: list[LedgerHint] = []
        wake = asyncio.Event()

        async def hint_session() -> None:
            while True:
                await wake.wait()
                await asyncio.sleep(HINT_COALESCE_S)
                batch, due[:] = list(due), []
                wake.clear()
                connected = [h for h in batch if h.reason == HINT_CONNECTED]
                try:
                    for hint in connected or batch[-1:]:
                        await session.signal(SIGNAL_LEDGER_HINT, hint)
                except RPCError as exc:
                    if exc.status == RPCStatusCode.NOT_FOUND:
                        return  # the session is over: so is its stream
                    log.warning("could not hint the real session", extra={"fields": {
                        "session_id": request.session_id, "error": exc.message}})
                    due[:0] = batch  # sent again with whatever comes next
                    await asyncio.sleep(SIGNAL_RETRY_S)
                    wake.set()

        async def follow() -> None:
            async with await self._signed(request.user_id, request.key_id) as signed:
                stream = UserDataStream(signed, self.settings.exchange_futures_ws_url,
                                        backoff_max_s=STREAM_BACKOFF_MAX_S)
                async for event in stream.events():
                    if isinstance(event, UserStreamConnected):
                        due.append(LedgerHint(HINT_CONNECTED))
                    else:
                        due.append(LedgerHint(event.kind, event.event_time_ms))
                    wake.set()

        async def heartbeat() -> None:
            while True:
                activity.heartbeat()
                await asyncio.sleep(STREAM_HEARTBEAT_S)

        async def worker_stops() -> None:
            await activity.wait_for_worker_shutdown()
            # Failed, not finished: the retry follows the stream on another worker (a gap-fill).
            raise ApplicationError("the worker is shutting down")

        tasks = [asyncio.create_task(t()) for t in (hint_session, follow, heartbeat, worker_stops)]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # a failure of the stream (a key without the right) fails the activity
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    @activity.defn
    async def record_real_session(self, request: RecordRealSessionInput) -> None:
        """Write the status through (newer revisions only), raise its alert, publish the event."""
        status = request.status
        doc = {**asdict(status), "session_id": status.workflow_id, "updated_at": datetime.now(UTC)}
        await self.db.real_sessions.update_one(
            {"session_id": status.workflow_id, "revision": {"$lt": status.revision}}, {"$set": doc})
        if await self.db.real_sessions.count_documents({"session_id": status.workflow_id}, limit=1) == 0:
            await self.db.real_sessions.update_one({"session_id": status.workflow_id}, {"$setOnInsert": doc},
                                                   upsert=True)
        if request.alert is not None:
            alert = request.alert
            await self.db.monitoring_alerts.update_one(
                {"alert_id": f"real-session:{status.workflow_id}:{alert.at_ms}:{alert.kind}"},
                {"$setOnInsert": {"kind": f"real_{alert.kind}", "severity": "critical", "message": alert.message,
                                  "user_id": status.user_id, "session_id": status.workflow_id,
                                  "created_at": datetime.now(UTC)}}, upsert=True)
        data = {"mode": "real", "event": request.event, "status": status.status,
                "entries_enabled": status.entries_enabled, "halted_reason": status.halted_reason,
                "alert": asdict(request.alert) if request.alert else None}
        await events.publish(self.db, [events.event_doc(
            BOT_STATUS_UPDATE, f"{status.workflow_id}:{status.revision}", data, user_id=status.user_id)])

    @activity.defn
    async def check_approval(self, request: StartRealSessionInput) -> None:
        """The approval named to start a real session must be the user's RED real-trading proposal, approved."""
        found = await self.db.tuning_proposals.find_one(
            {"proposal_id": request.approval_id, "user_id": request.user_id}, {"status": 1, "mode": 1, "tier": 1})
        if found is None or found.get("mode") != "real" or found.get("tier") != "RED" or found["status"] not in (
                APPROVED, APPLIED):
            raise ApplicationError(f"proposal {request.approval_id} is no approved start of real trading",
                                   type=NOT_APPROVED, non_retryable=True)
