"""State and shared machinery of TradingSessionWorkflow: the fields a session carries across
continue-as-new, the commit and settings local activities, the Engine rebuild rules, the latest-price
read, the queries and the search attributes. The update handlers live in ``session_control`` and
``session_orders``, the main loop in ``trading_session``; Temporal registers handlers from every
base class of the workflow class.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.session_store import SessionStoreActivities
    from trading.analysis_settings import AnalysisSettings
    from trading.engine import Engine, StepResult
    from trading.running_metrics import RunningMetrics
    from trading.settings import EngineSettings
    from workflows.contracts import (
        SA_MODE,
        SA_STATE,
        SA_SYMBOLS,
        SA_USER,
        SESSION_NEW,
        CandleClosed,
        LatestPriceInput,
        SessionCommit,
        SessionSettingsRecord,
        SessionState,
        SessionStatus,
    )
    from workflows.session_queue import IGNORED, CandleQueue
    from workflows.session_rules import (
        session_identity,
    )

READ_TIMEOUT = timedelta(seconds=10)
ANALYSIS_TIMEOUT = timedelta(minutes=2)
COMMIT_TIMEOUT = timedelta(seconds=30)
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
        self._engine = Engine.from_state(state.engine) if state.engine else Engine(EngineSettings())
        self._analysis = AnalysisSettings.from_dict(state.analysis_settings or {})
        self._last_open = dict(state.last_open_time or {})
        self._read_through = dict(state.read_through or {})
        self._anchor = dict(state.analysis_anchor or {})
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
        # Candle steps and updates that touch the Engine across an await take turns.
        self._lock = asyncio.Lock()
        self._search_attributes: tuple[object, ...] = ()

    def _new_queue(self, symbols: tuple[str, ...], interval: str, pending: tuple[CandleClosed, ...]) -> CandleQueue:
        queue = CandleQueue(symbols, interval, self._last_open, self._read_through)
        for candle in pending:
            if queue.add(candle) == IGNORED:
                self._ignored += 1  # a stream this session no longer follows
        return queue

    async def _commit(self, result: StepResult, analysis_key: str | None, symbol: str | None,
                      day_closed: dict | None = None, signal: dict | None = None) -> None:
        for trade in result.trades:
            self._metrics.record_trade(trade.net_pnl)
        opened_symbols = {f.symbol for f in result.fills if f.opens}
        opened = tuple(p.to_dict() for s, p in self._engine.positions.items() if s in opened_symbols)
        positions = self._engine.positions
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
            signal=signal,
        )
        await workflow.execute_local_activity_method(
            SessionStoreActivities.commit_session_step, commit, start_to_close_timeout=COMMIT_TIMEOUT
        )
        self._commits += 1
        account = self._engine.account()
        workflow.set_current_details(
            f"{self._status} · {', '.join(self._symbols) or 'no symbols'} · equity {account.equity:.2f}"
            f" · {account.open_positions} open position(s)"
        )

    async def _save_settings(self) -> None:
        """Record the settings for the dashboard; callers hold the lock, so records land in order."""
        self._settings_version += 1
        record = SessionSettingsRecord(
            session_id=workflow.info().workflow_id, user_id=self._user_id, status=self._status,
            source=self._source, symbols=self._symbols, interval=self._interval,
            engine_settings=self._engine.settings.to_dict(), analysis_settings=self._analysis.to_dict(),
            analysis_settings_hash=self._analysis.settings_hash(), version=self._settings_version,
            generation=self._generation, entries_enabled=self._engine.entries_enabled,
        )
        await workflow.execute_local_activity_method(
            SessionStoreActivities.save_session_settings, record, start_to_close_timeout=COMMIT_TIMEOUT
        )

    def _rebuilt_engine(self, settings: EngineSettings) -> Engine:
        """The Engine under new settings. Before a start (first use or after a reset) a fresh account,
        so the starting balance applies, that keeps the market clock and the ID counters; else the
        same account, positions and orders."""
        state = self._engine.to_state()
        if self._status == SESSION_NEW:
            fresh = Engine(settings).to_state()
            for kept in ("now", "last_close", "last_open_time", "next_trade_id", "next_order_id", "fill_counter"):
                fresh[kept] = state[kept]
            return Engine.from_state(fresh)
        state["settings"] = settings.to_dict()
        return Engine.from_state(state)

    def _set_analysis(self, analysis: AnalysisSettings) -> None:
        if analysis.settings_hash() != self._analysis.settings_hash():
            self._anchor.clear()  # other settings, other shared analysis: its own anchor
        self._analysis = analysis

    async def _latest_price(self, symbol: str) -> tuple[float, int]:
        latest = await workflow.execute_activity_method(
            SessionStoreActivities.latest_price, LatestPriceInput(self._source, symbol, self._interval),
            start_to_close_timeout=READ_TIMEOUT,
        )
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
            queued=len(self._queue) + len(self._arrivals),
            candles_processed=self._processed, duplicates_dropped=self._duplicates,
            gap_candles_filled=self._filled, candles_ignored=self._ignored, candles_rejected=self._rejected,
            trades_closed=self._trades_closed, entries_enabled=self._engine.entries_enabled,
            equity=self._engine.equity(), generation=self._generation, metrics=self._metrics.snapshot(),
            lagging=tuple(sorted(self._queue.lagging)),
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
            settings_version=self._settings_version,
        )

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

