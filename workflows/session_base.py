"""State and shared machinery of TradingSessionWorkflow: the fields a session carries across
continue-as-new, the outbox of records it writes to MongoDB, the write wrapper every update goes
through (idempotency, journal, lock), the latest-price read, the queries and the search attributes.
The update handlers live in ``session_control`` and ``session_orders``, the main loop in
``trading_session``, the replay-only paths of older runs in ``session_legacy``; Temporal registers
handlers from every base class of the workflow class.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.session_store import NO_PRICE, SessionStoreActivities
    from core.contracts import (
        SA_MODE,
        SA_STATE,
        SA_SYMBOLS,
        SA_USER,
        CandleClosed,
        JournalEntry,
        LatestPrice,
        LatestPriceInput,
        SessionCommit,
        SessionSettingsRecord,
        SessionState,
        SessionStatus,
        SessionWrite,
    )
    from core.idempotency import body_hash, parse_update_id
    from trading.analysis_settings import AnalysisSettings
    from trading.engine import Engine, StepResult
    from trading.errors import InvalidInput
    from trading.models import Trade
    from trading.running_metrics import RunningMetrics
    from trading.settings import EngineSettings, FillPrice
    from workflows import session_journal as journal
    from workflows.session_queue import DUPLICATE, IGNORED, CandleQueue
    from workflows.session_rules import KEY_REUSED, rejected, rejection_of, session_identity
    from workflows.session_writes import WriteHistory, WriteRecord

READ_TIMEOUT = timedelta(seconds=10)
ANALYSIS_TIMEOUT = timedelta(minutes=2)
COMMIT_TIMEOUT = timedelta(seconds=30)
# Reads inside an update are bounded: an update waits for them under the session's lock, and a
# MongoDB outage must fail that update (503, nothing changed) instead of holding every other write.
BOUNDED = RetryPolicy(initial_interval=timedelta(milliseconds=200), backoff_coefficient=2.0,
                      maximum_interval=timedelta(seconds=2), maximum_attempts=3)
# The range of StartSessionInput.barrier_timeout_s: how long a multi-symbol session waits for a
# silent stream's candle before it reads market_data and, failing that, trades on without it.
BARRIER_TIMEOUT_RANGE_S = (1.0, 3600.0)
# Where the gap-fill activity says its candles come from (see MarketReadActivities).
FILLED_SOURCE = "market_data"
# Runs started before the (open time, symbol) queue took candles in arrival order; their
# histories replay on the old path.
PATCH_CANDLE_BARRIER = "candle-barrier-queue"
# Runs started before it accepted manual entries while stopped.
PATCH_STOPPED_BLOCKS_ENTRIES = "stopped-blocks-manual-entries"
# Runs started before it ran the candle analysis as a regular activity: a task-queue round trip
# and three history events per session and candle, where a local activity needs one marker.
PATCH_LOCAL_ANALYSIS = "analysis-as-local-activity"
# Runs started before it worked off a backlog of candles in a single workflow task.
PATCH_YIELD_BURSTS = "yield-between-candle-bursts"
# Runs started before bursts grew from 10 to 50 candles per workflow task.
PATCH_LONGER_BURSTS = "longer-candle-bursts"
# Runs started before writes went through an outbox (commits and settings records written by their
# own coroutine, so no write waits for MongoDB), with idempotency records, a journal, bounded reads,
# and cursors instead of the candle backlog across continue-as-new. Older runs replay on
# ``session_legacy``.
PATCH_WRITE_OUTBOX = "write-outbox"
# Runs started before sessions with funding_mode "series" asked the exchange for each 8-hour rate
# (they charged the constant rate).
PATCH_FUNDING_RATES = "funding-rates-from-the-exchange"
# Runs started before the feed sent each candle's shared analysis with it (and sessions asked for it
# with a local activity per candle): a session now subscribes with its analysis settings and uses
# what came with the candle when its key is the one the session would ask for.
PATCH_SIGNALLED_ANALYSIS = "analysis-sent-with-the-candle"
# Records one outbox write sends at most.
OUTBOX_BATCH = 20

Result = TypeVar("Result")


def _entry_of(trade: Trade) -> dict:
    """What an open position record says of a trade that opened and closed within one step."""
    return {"trade_id": trade.id, "symbol": trade.symbol, "side": trade.side.value, "quantity": trade.quantity,
            "entry_price": trade.entry_price, "entry_time": trade.entry_time, "leverage": trade.leverage,
            "entry_fee": trade.entry_fee}


class SessionBase:
    def __init__(self, state: SessionState | None) -> None:
        if state is None:
            user_id, mode = session_identity(workflow.info().workflow_id)
            state = SessionState(user_id=user_id, mode=mode)
        self._user_id = state.user_id
        self._mode = state.mode
        self._status = state.status
        self._source = state.source
        self._symbols = tuple(state.symbols)
        self._interval = state.interval
        # A run started without an Engine fills signals at the close, as every run did before fills at
        # the next open: their histories replay unchanged. New sessions are started with an Engine
        # (services.paper_session), and so get the settings' default.
        self._engine = (Engine.from_state(state.engine) if state.engine
                        else Engine(EngineSettings(fill_price=FillPrice.CLOSE)))
        self._analysis = AnalysisSettings.from_dict(state.analysis_settings or {})
        self._last_open = dict(state.last_open_time or {})
        self._read_through = dict(state.read_through or {})
        self._received = dict(state.received_through or {})
        self._anchor = dict(state.analysis_anchor or {})
        self._hashed: tuple[AnalysisSettings, str] | None = None
        self._queue = self._new_queue(self._symbols, self._interval, ())
        self._queue.lagging = set(state.lagging)
        # Signals (and the candles a previous run handed on) land here first; the main loop moves
        # them into the queue (handlers may run before the main loop has picked this run's path).
        self._arrivals: deque[CandleClosed] = deque(state.queue)
        self._sorted = True
        self._local_analysis = True
        self._barrier_timeout_s = state.barrier_timeout_s
        self._settings_version = state.settings_version
        self._processed = state.candles_processed
        self._duplicates = state.duplicates_dropped
        self._filled = state.gap_candles_filled
        self._ignored = state.candles_ignored
        self._rejected = state.candles_rejected
        self._trades_closed = state.trades_closed
        self._commits = state.commits
        self._generation = state.generation
        self._metrics = (RunningMetrics.from_state(state.metrics) if state.metrics
                         else RunningMetrics(self._engine.settings.starting_balance))
        self._outbox: list[SessionWrite] = list(state.outbox)
        self._writes = WriteHistory(state.writes)
        self._journal_seq = state.journal_seq
        self._waiting = dict(state.waiting_decisions or {})
        self._degraded: dict[str, str] = dict(state.degraded or {})
        # Writes that touch the Engine across an await take turns; a candle step takes it briefly.
        self._lock = asyncio.Lock()
        self._unlocked_running: set[str] = set()  # keys of unlocked writes being applied now
        self._search_attributes: tuple[object, ...] = ()

    def _analysis_hash(self) -> str:
        """The current analysis settings' hash, computed once per settings (it names shared analyses)."""
        if self._hashed is None or self._hashed[0] is not self._analysis:
            self._hashed = (self._analysis, self._analysis.settings_hash())
        return self._hashed[1]

    def _outbox_mode(self) -> bool:
        """False only while replaying a run started before the outbox (``session_legacy``)."""
        return workflow.patched(PATCH_WRITE_OUTBOX)

    def _new_queue(self, symbols: tuple[str, ...], interval: str, pending: tuple[CandleClosed, ...]) -> CandleQueue:
        queue = CandleQueue(symbols, interval, self._last_open, self._read_through, self._received)
        for candle in pending:
            if queue.add(candle) == IGNORED:
                self._ignored += 1  # a stream this session no longer follows
        return queue

    # ------------------------------------------------------------------ what the session writes
    async def _commit(self, result: StepResult, analysis_key: str | None, symbol: str | None,
                      day_closed: dict | None = None, signal: dict | None = None,
                      acted_on: dict | None = None, ai_decision: dict | None = None) -> None:
        for trade in result.trades:
            self._metrics.record_trade(trade.net_pnl)
        opened_symbols = {f.symbol for f in result.fills if f.opens}
        positions = self._engine.positions
        opened = tuple(p.to_dict() for s, p in positions.items() if s in opened_symbols)
        # An entry at the open can meet its stop on the same candle: it opened and closed in this step.
        entries = {(f.symbol, f.time) for f in result.fills if f.opens}
        opened += tuple(_entry_of(t) for t in result.trades
                        if (t.symbol, t.entry_time) in entries
                        and not (t.symbol in positions and positions[t.symbol].trade_id == t.id))
        # A reduce-only order closes part of a position: the trade ID stays open with the rest.
        partial = tuple(t.to_dict() for t in result.trades
                        if t.symbol in positions and positions[t.symbol].trade_id == t.id)
        closed = tuple(t.to_dict() for t in result.trades
                       if not (t.symbol in positions and positions[t.symbol].trade_id == t.id))
        self._trades_closed += len(closed)
        commit = SessionCommit(
            session_id=workflow.info().workflow_id, user_id=self._user_id, time=self._engine.now,
            account=self._engine.account().to_dict(), opened=opened, closed=closed, partial_closes=partial,
            analysis_key=analysis_key, status=self._status, symbol=symbol, sequence=self._commits + 1,
            generation=self._generation, metrics=self._metrics.snapshot(), day_closed=day_closed,
            signal=signal, acted_on=acted_on, ai_decision=ai_decision,
        )
        if self._outbox_mode():
            self._commits += 1
            self._outbox.append(SessionWrite(commit=commit))
            return
        await workflow.execute_local_activity_method(
            SessionStoreActivities.commit_session_step, commit, start_to_close_timeout=COMMIT_TIMEOUT
        )
        self._commits += 1
        self._show_details()

    async def _save_settings(self) -> None:
        """Record the settings for the dashboard; records are written in the order they were made."""
        self._settings_version += 1
        record = self.settings()
        if self._outbox_mode():
            self._outbox.append(SessionWrite(settings=record))
            return
        await workflow.execute_local_activity_method(
            SessionStoreActivities.save_session_settings, record, start_to_close_timeout=COMMIT_TIMEOUT
        )

    def _show_details(self) -> None:
        account = self._engine.account()
        degraded = "".join(f" · {what} degraded: {why}" for what, why in sorted(self._degraded.items()))
        workflow.set_current_details(
            f"{self._status} · {', '.join(self._symbols) or 'no symbols'} · equity {account.equity:.2f}"
            f" · {account.open_positions} open position(s){degraded}"
        )

    # ------------------------------------------------------------------ writes
    async def _write(self, kind: str, request: Any, result_type: type[Result] | Any,
                     apply: Callable[[], Awaitable[Result]], locked: bool = True) -> Result:
        """Run one update: a repeat of an applied write (same key, same input) returns its first result
        and changes nothing; the same key with another input is refused. Otherwise ``apply`` runs
        (under the lock when ``locked``), its rejections fail only this update, and its result is
        remembered for 24 hours."""
        key, body = self._write_identity(request)
        known = self._known_write(key, body)
        if known is None and locked:
            async with self._lock:
                # A write with the same key may have been applied while this one waited.
                known = self._known_write(key, body)
                if known is None:
                    result = await self._applied(apply)
        elif known is None:
            # Without the lock, the same key sent twice at once must still apply once: the second
            # waits for the first and answers with its result (or runs alone if the first failed).
            await workflow.wait_condition(lambda: key not in self._unlocked_running)
            known = self._known_write(key, body)
            if known is None:
                self._unlocked_running.add(key)
                try:
                    result = await self._applied(apply)
                finally:
                    self._unlocked_running.discard(key)
        if known is not None:
            payload = Payload(metadata={"encoding": b"json/plain"}, data=known.result.encode())
            return workflow.payload_converter().from_payload(payload, result_type)
        payload = workflow.payload_converter().to_payload(result)
        self._writes.remember(WriteRecord(key, kind, body, self._now_ms(), payload.data.decode()))
        return result

    async def _applied(self, apply: Callable[[], Awaitable[Result]]) -> Result:
        try:
            return await apply()
        except InvalidInput as exc:
            raise rejection_of(exc) from None

    def _known_write(self, key: str, body: str) -> WriteRecord | None:
        """The remembered write of this key; ``ApplicationError`` when its input was another."""
        known = self._writes.find(key)
        if known is not None and known.body != body:
            raise rejected(f"this Idempotency-Key was used for a different {known.kind} request",
                           "Idempotency-Key", KEY_REUSED)
        return known

    def _check_repeat(self, request: Any) -> bool:
        """For validators: True when this update repeats an applied one (its handler will answer with
        the first result, whatever the state is now); raises when the key came with another input."""
        return self._known_write(*self._write_identity(request)) is not None

    @staticmethod
    def _write_identity(request: Any) -> tuple[str, str]:
        """(key, input hash) of the current update: from an update ID made of a client's key
        (``core.idempotency``), else the update ID itself and a hash of the input."""
        update_id = SessionBase._update_id()
        parsed = parse_update_id(update_id)
        if parsed is not None:
            return parsed
        data = workflow.payload_converter().to_payload(request).data if request is not None else b""
        return update_id, body_hash(data)

    @staticmethod
    def _update_id() -> str:
        info = workflow.current_update_info()
        return info.id if info is not None else ""

    @staticmethod
    def _now_ms() -> int:
        return int(workflow.now().timestamp() * 1000)

    def _apply(self, kind: str, change: dict[str, Any]) -> Any:
        """Apply one write to the Engine (``session_journal``) and journal it."""
        self._engine, produced = journal.apply(self._engine, kind, change)
        self._record(kind, change)
        return produced

    def _record(self, kind: str, change: dict[str, Any]) -> None:
        self._journal_seq += 1
        entry = JournalEntry(seq=self._journal_seq, kind=kind, update_id=self._update_id(),
                             applied_at=self._now_ms(), market_time=self._engine.now,
                             candles_processed=self._processed, change=change)
        self._writes.journal.append(entry)
        if self._outbox_mode():
            self._outbox.append(SessionWrite(journal=entry))

    # ------------------------------------------------------------------ reads
    async def _latest_price(self, symbol: str, *, never_blocks: bool = False) -> tuple[float, int]:
        """The freshest price the exchange offers (else the feed's, else the newest stored close),
        stamped with its market time and never before the Engine's clock. A close or reset
        (``never_blocks``) that cannot read one falls back to the Engine's last close."""
        try:
            latest = await workflow.execute_activity_method(
                SessionStoreActivities.latest_price,
                LatestPriceInput(self._source, symbol, self._interval, self._engine.settings.market.value),
                start_to_close_timeout=READ_TIMEOUT, retry_policy=BOUNDED,
            )
        except ActivityError as exc:
            last = self._engine.last_close.get(symbol)
            if never_blocks and last is not None:
                workflow.logger.warning("no fresh price for %s (%s): using the last close", symbol, exc.cause)
                latest = LatestPrice(last, self._engine.now, "last close")
            elif isinstance(exc.cause, ApplicationError) and exc.cause.type == NO_PRICE:
                raise InvalidInput("symbol", f"no price known for {symbol} yet") from None
            else:
                raise
        # A manual fill is stamped with the price's market time, never before the Engine's clock.
        return latest.price, max(latest.time, self._engine.now)

    def _engine_copy(self) -> Engine:
        return Engine.from_state(self._engine.to_state())

    # ------------------------------------------------------------------ queries
    @workflow.query
    def status(self) -> SessionStatus:
        return SessionStatus(
            workflow_id=workflow.info().workflow_id, user_id=self._user_id, mode=self._mode, status=self._status,
            source=self._source, symbols=self._symbols, interval=self._interval, market_time=self._engine.now,
            last_open_time=dict(self._last_open), analysis_anchor=dict(self._anchor),
            queued=self._queued(), candles_processed=self._processed, duplicates_dropped=self._duplicates,
            gap_candles_filled=self._filled, candles_ignored=self._ignored, candles_rejected=self._rejected,
            trades_closed=self._trades_closed, entries_enabled=self._engine.entries_enabled,
            equity=self._engine.equity(), generation=self._generation, metrics=self._metrics.snapshot(),
            lagging=tuple(sorted(self._queue.lagging)), degraded=dict(self._degraded) or None,
            pending_writes=len(self._outbox), journal_seq=self._journal_seq, settings_version=self._settings_version,
            waiting_entries={s: side.value for s, (side, _) in self._engine.pending_signals.items()} or None,
        )

    def _queued(self) -> int:
        """Candles received and not traded yet: those in memory, and those a previous run handed on
        as a cursor (read back from market_data)."""
        return len(self._queue) + len(self._arrivals) + self._queue.unread()

    @workflow.query
    def settings(self) -> SessionSettingsRecord:
        """The settings as they are now (``version`` counts every change)."""
        return SessionSettingsRecord(
            session_id=workflow.info().workflow_id, user_id=self._user_id, status=self._status,
            source=self._source, symbols=self._symbols, interval=self._interval,
            engine_settings=self._engine.settings.to_dict(), analysis_settings=self._analysis.to_dict(),
            analysis_settings_hash=self._analysis.settings_hash(), version=self._settings_version,
            generation=self._generation, entries_enabled=self._engine.entries_enabled,
        )

    @workflow.query
    def portfolio(self) -> dict:
        return self._engine.account().to_dict()

    @workflow.query
    def open_trades(self) -> list[dict]:
        return [p.to_dict() for p in self._engine.positions.values()]

    @workflow.query
    def pending_orders(self) -> list[dict]:
        return [o.to_dict() for o in self._engine.orders.values()]

    @workflow.query
    def journal(self, since: int = 0) -> list[JournalEntry]:
        """The writes applied after sequence number ``since`` (the most recent ones this run keeps;
        every entry is also written to ``session_journal``)."""
        return self._writes.since(since)

    @workflow.query
    def snapshot(self) -> SessionState:
        return SessionState(
            user_id=self._user_id, mode=self._mode, status=self._status, source=self._source,
            symbols=self._symbols, interval=self._interval, engine=self._engine.to_state(),
            analysis_settings=self._analysis.to_dict(), last_open_time=dict(self._last_open),
            analysis_anchor=dict(self._anchor), queue=self._queue.pending() + tuple(self._arrivals),
            candles_processed=self._processed,
            duplicates_dropped=self._duplicates, gap_candles_filled=self._filled, candles_ignored=self._ignored,
            candles_rejected=self._rejected, trades_closed=self._trades_closed, commits=self._commits,
            generation=self._generation, metrics=self._metrics.to_state(), read_through=dict(self._read_through),
            lagging=tuple(sorted(self._queue.lagging)), barrier_timeout_s=self._barrier_timeout_s,
            settings_version=self._settings_version, waiting_decisions=dict(self._waiting),
        )

    def _handover(self) -> SessionState:
        """What continue-as-new carries: the snapshot without the candle backlog (cursors instead,
        the next run reads the candles back from market_data), with the outbox and the write history."""
        self._absorb()
        # Candles read back ahead of trading stay behind with the queue: the next run reads from the
        # last traded candle again, so no read-through cursor goes with the state.
        return replace(self.snapshot(), queue=(), read_through={}, received_through=self._queue.received_through(),
                       outbox=tuple(self._outbox), writes=self._writes.pack(self._now_ms()),
                       journal_seq=self._journal_seq, degraded=dict(self._degraded) or None)

    def _absorb(self) -> None:
        """Move the signalled candles into the queue (on the barrier's path)."""
        while self._sorted and self._arrivals:
            outcome = self._queue.add(self._arrivals.popleft())
            if outcome == DUPLICATE:
                self._duplicates += 1
            elif outcome == IGNORED:
                self._ignored += 1  # a stream this session does not follow (any more)

    def _publish_search_attributes(self) -> None:
        values = (self._user_id, self._mode, self._status, self._symbols)
        if values == self._search_attributes:
            return
        self._search_attributes = values
        workflow.upsert_search_attributes([
            SA_USER.value_set(self._user_id),
            SA_MODE.value_set(self._mode),
            SA_STATE.value_set(self._status),
            SA_SYMBOLS.value_set(list(self._symbols)),
        ])


__all__ = ["ANALYSIS_TIMEOUT", "BARRIER_TIMEOUT_RANGE_S", "BOUNDED", "COMMIT_TIMEOUT", "FILLED_SOURCE",
           "OUTBOX_BATCH", "PATCH_CANDLE_BARRIER", "PATCH_FUNDING_RATES", "PATCH_LOCAL_ANALYSIS", "PATCH_LONGER_BURSTS",
           "PATCH_SIGNALLED_ANALYSIS", "PATCH_STOPPED_BLOCKS_ENTRIES", "PATCH_WRITE_OUTBOX", "PATCH_YIELD_BURSTS",
           "READ_TIMEOUT", "SessionBase"]
