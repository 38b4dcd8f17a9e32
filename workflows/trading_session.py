"""TradingSessionWorkflow ``session:{user}:{mode}``: one paper account trading on the feed.

Created on first use with update-with-start (``USE_EXISTING``) and kept for good. The signal
``candle_closed`` only enqueues; one main loop takes candles in order, drops any not newer than
the last processed of its stream, fills gaps from ``market_data``, and per candle runs the
analysis activity, steps the Engine here (market time only, no I/O) and commits the outcome in
one local activity. Updates change the session between candles: each is checked by its validator
against a copy of the Engine first, so a rejected update changes nothing. Continue-as-new when
Temporal suggests it, once every handler has finished, carrying the state and the queue.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.market_reads import MarketReadActivities
    from activities.session_analysis import SessionAnalysisActivities
    from activities.session_store import SessionStoreActivities
    from trading.analysis_settings import AnalysisSettings
    from trading.candle import INTERVAL_MS, Candle, candle_problem
    from trading.engine import CandleRejected, Engine, OrderError, StepResult
    from trading.settings import EngineSettings
    from trading.signals import Direction, Signal
    from workflows.contracts import (
        SA_MODE,
        SA_STATE,
        SA_SYMBOLS,
        SA_USER,
        SESSION_NEW,
        SESSION_RUNNING,
        SESSION_STOPPED,
        SIGNAL_CANDLE_CLOSED,
        AnalyzeCandleInput,
        AnalyzeCandleResult,
        CancelOrderInput,
        CandleClosed,
        CloseTradeInput,
        FeedSubscription,
        LatestPriceInput,
        ManualOrderInput,
        ManualOrderResult,
        ReadCandlesInput,
        SessionCommit,
        SessionSettingsRecord,
        SessionState,
        SessionStatus,
        StartSessionInput,
        UpdateSettingsInput,
        stream_key,
    )

READ_TIMEOUT = timedelta(seconds=30)
ANALYSIS_TIMEOUT = timedelta(minutes=2)
COMMIT_TIMEOUT = timedelta(seconds=30)


def rejected(reason: str) -> ApplicationError:
    """An update failure the caller sees as the reason; never retried."""
    return ApplicationError(reason, type="UpdateRejected", non_retryable=True)


def merged_engine_settings(current: EngineSettings, changes: dict[str, Any] | None) -> EngineSettings:
    """``current`` with the given fields replaced (``risk`` merged field by field); validated."""
    if not changes:
        return current
    if not isinstance(changes, dict):
        raise ValueError(f"engine settings must be an object, got {changes!r}")
    data = current.to_dict()
    for name, value in changes.items():
        if name == "risk" and isinstance(value, dict):
            data["risk"] = {**data["risk"], **value}
        else:
            data[name] = value
    return EngineSettings.from_dict(data)


def merged_analysis_settings(current: AnalysisSettings, changes: dict[str, Any] | None) -> AnalysisSettings:
    if not changes:
        return current
    if not isinstance(changes, dict):
        raise ValueError(f"analysis settings must be an object, got {changes!r}")
    return AnalysisSettings.from_dict({**current.to_dict(), **changes})


def session_identity(workflow_id: str) -> tuple[str, str]:
    """(user, mode) from ``session:{user}:{mode}``."""
    parts = workflow_id.split(":")
    if len(parts) != 3 or parts[0] != "session" or not parts[1]:
        raise ValueError(f"a session's workflow ID is session:{{user}}:{{mode}}, got {workflow_id!r}")
    return parts[1], parts[2]


@workflow.defn
class TradingSessionWorkflow:
    @workflow.init
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
        self._anchor = dict(state.analysis_anchor or {})
        self._queue: deque[CandleClosed] = deque(state.queue)
        self._processed = state.candles_processed
        self._duplicates = state.duplicates_dropped
        self._filled = state.gap_candles_filled
        self._ignored = state.candles_ignored
        self._rejected = state.candles_rejected
        self._trades_closed = state.trades_closed
        self._commits = state.commits
        # Candle steps and updates that touch the Engine across an await take turns.
        self._lock = asyncio.Lock()
        self._search_attributes: tuple[object, ...] = ()

    # ------------------------------------------------------------------ main loop
    @workflow.run
    async def run(self, state: SessionState | None) -> None:
        self._publish_search_attributes()
        while True:
            await workflow.wait_condition(
                lambda: bool(self._queue) or workflow.info().is_continue_as_new_suggested()
            )
            if self._queue:
                async with self._lock:
                    await self._take(self._queue.popleft())
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._lock.locked())
                workflow.continue_as_new(self.snapshot())

    async def _take(self, candle: CandleClosed) -> None:
        """Dedupe, fill the gap before it from market_data, then trade it."""
        if candle.symbol not in self._symbols or candle.interval != self._interval:
            self._ignored += 1  # a stream this session does not follow (any more)
            return
        key = stream_key(candle.symbol, candle.interval)
        last = self._last_open.get(key)
        if last is not None and candle.open_time <= last:
            self._duplicates += 1
            return
        step = INTERVAL_MS[candle.interval]
        after = last
        while after is not None and candle.open_time > after + step:
            # Reads are capped per call: read on from the last candle filled until the gap is closed.
            gap = await workflow.execute_activity_method(
                MarketReadActivities.read_market_candles,
                ReadCandlesInput(candle.symbol, candle.interval, after + step, candle.open_time - step),
                start_to_close_timeout=READ_TIMEOUT,
            )
            if not gap.candles:
                break  # market_data lacks them too: the series has a hole, trade on
            for missing in gap.candles:
                await self._trade(missing)
                self._filled += 1
            after = gap.candles[-1].open_time
        await self._trade(candle)

    async def _trade(self, closed: CandleClosed) -> None:
        key = stream_key(closed.symbol, closed.interval)
        candle = Candle(closed.open_time, closed.open, closed.high, closed.low, closed.close, closed.volume,
                        INTERVAL_MS[closed.interval], closed.symbol)
        problem = candle_problem(candle)
        if problem:
            # Bad data is never analysed or traded on; the next good candle fills the gap from
            # market_data, which holds validated candles only.
            workflow.logger.warning("bad candle %s@%s dropped: %s", closed.symbol, closed.open_time, problem)
            self._rejected += 1
            return
        analysis = await workflow.execute_activity_method(
            SessionAnalysisActivities.analyze_candle,
            AnalyzeCandleInput(closed.symbol, closed.interval, closed.open_time, self._analysis.to_dict(),
                               self._anchor.get(key)),
            start_to_close_timeout=ANALYSIS_TIMEOUT,
        )
        self._anchor[key] = analysis.anchor
        signal = None
        if analysis.signal is not None:
            signal = Signal(closed.symbol, closed.open_time, Direction(analysis.signal.direction),
                            analysis.signal.confidence, analysis.signal.reason)
        try:
            result = self._engine.step(candle, signal)
        except CandleRejected as exc:
            # Bad or late data is never traded on; the stream goes on with the next candle.
            workflow.logger.warning("candle rejected: %s", exc)
            self._rejected += 1
            return
        self._last_open[key] = closed.open_time
        self._processed += 1
        await self._commit(result, analysis.analysis_key)

    async def _commit(self, result: StepResult, analysis_key: str | None) -> None:
        opened_symbols = {f.symbol for f in result.fills if f.opens}
        opened = tuple(p.to_dict() for s, p in self._engine.positions.items() if s in opened_symbols)
        closed = tuple(t.to_dict() for t in result.trades)
        self._trades_closed += len(closed)
        commit = SessionCommit(
            session_id=workflow.info().workflow_id, user_id=self._user_id, time=self._engine.now,
            account=self._engine.account().to_dict(), opened=opened, closed=closed,
            analysis_key=analysis_key, status=self._status,
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

    # ------------------------------------------------------------------ signals
    @workflow.signal(name=SIGNAL_CANDLE_CLOSED)
    def candle_closed(self, candle: CandleClosed) -> None:
        self._queue.append(candle)

    # ------------------------------------------------------------------ start / stop / settings
    @workflow.update
    async def start(self, request: StartSessionInput) -> SessionStatus:
        async with self._lock:
            self._check_start(request)  # the state may have moved since the validator ran
            dropped = [s for s in self._symbols if s not in request.symbols or request.interval != self._interval]
            engine_settings = merged_engine_settings(self._engine.settings, request.engine_settings)
            analysis = merged_analysis_settings(self._analysis, request.analysis_settings)
            for symbol in request.symbols:
                await workflow.execute_activity_method(
                    MarketReadActivities.subscribe_feed,
                    FeedSubscription(request.source, symbol, request.interval, workflow.info().workflow_id),
                    start_to_close_timeout=READ_TIMEOUT,
                )
            for symbol in dropped:
                await workflow.execute_activity_method(
                    MarketReadActivities.unsubscribe_feed,
                    FeedSubscription(self._source, symbol, self._interval, workflow.info().workflow_id),
                    start_to_close_timeout=READ_TIMEOUT,
                )
            self._engine = self._rebuilt_engine(engine_settings)
            self._set_analysis(analysis)
            self._engine.entries_enabled = True
            self._source, self._symbols, self._interval = request.source, tuple(request.symbols), request.interval
            self._status = SESSION_RUNNING
            self._publish_search_attributes()
            await self._save_settings()
            return self.status()

    @start.validator
    def _validate_start(self, request: StartSessionInput) -> None:
        self._check_start(request)

    def _check_start(self, request: StartSessionInput) -> None:
        if not request.source:
            raise ValueError("source must name the feed, e.g. 'binance'")
        if isinstance(request.symbols, str) or not request.symbols:
            raise ValueError("symbols must be a non-empty list of symbols")
        if len(set(request.symbols)) != len(request.symbols) or not all(
            isinstance(s, str) and s.isalnum() and s.isupper() for s in request.symbols
        ):
            raise ValueError(f"symbols must be distinct upper-case symbols like BTCUSDT, got {list(request.symbols)}")
        if request.interval not in INTERVAL_MS:
            raise ValueError(f"unknown interval {request.interval!r}; known: {', '.join(INTERVAL_MS)}")
        if self._status == SESSION_RUNNING:
            raise ValueError("the session is running already; stop it first")
        if self._status != SESSION_NEW and request.source != self._source:
            raise ValueError(f"changing the feed source from {self._source!r} needs a reset")
        leaving = {s for s in self._symbols if s not in request.symbols or request.interval != self._interval}
        busy = sorted(leaving & ({*self._engine.positions} | {o.symbol for o in self._engine.orders.values()}))
        if busy:
            raise ValueError(f"cannot stop following {busy} while positions or orders are open there")
        settings = merged_engine_settings(self._engine.settings, request.engine_settings)
        merged_analysis_settings(self._analysis, request.analysis_settings)
        self._rebuilt_engine(settings)

    @workflow.update
    async def stop(self) -> SessionStatus:
        """Block new entries; exits of open positions and resting orders keep being managed, so the
        feed subscription stays."""
        self._engine.entries_enabled = False
        self._status = SESSION_STOPPED
        self._publish_search_attributes()
        async with self._lock:
            await self._save_settings()
        return self.status()

    @stop.validator
    def _validate_stop(self) -> None:
        if self._status != SESSION_RUNNING:
            raise ValueError(f"the session is {self._status}, not running")

    @workflow.update
    async def update_settings(self, request: UpdateSettingsInput) -> SessionStatus:
        async with self._lock:
            engine_settings, analysis = self._check_settings(request)
            self._engine = self._rebuilt_engine(engine_settings)
            self._set_analysis(analysis)
            await self._save_settings()
            return self.status()

    @update_settings.validator
    def _validate_update_settings(self, request: UpdateSettingsInput) -> None:
        self._check_settings(request)

    def _check_settings(self, request: UpdateSettingsInput) -> tuple[EngineSettings, AnalysisSettings]:
        if request.engine_settings is None and request.analysis_settings is None:
            raise ValueError("nothing to change: give engine_settings and/or analysis_settings")
        engine_settings = merged_engine_settings(self._engine.settings, request.engine_settings)
        analysis = merged_analysis_settings(self._analysis, request.analysis_settings)
        self._rebuilt_engine(engine_settings)
        return engine_settings, analysis

    async def _save_settings(self) -> None:
        """Record the settings for the dashboard; callers hold the lock, so records land in order."""
        record = SessionSettingsRecord(
            session_id=workflow.info().workflow_id, user_id=self._user_id, status=self._status,
            source=self._source, symbols=self._symbols, interval=self._interval,
            engine_settings=self._engine.settings.to_dict(), analysis_settings=self._analysis.to_dict(),
            analysis_settings_hash=self._analysis.settings_hash(),
        )
        await workflow.execute_local_activity_method(
            SessionStoreActivities.save_session_settings, record, start_to_close_timeout=COMMIT_TIMEOUT
        )

    def _rebuilt_engine(self, settings: EngineSettings) -> Engine:
        """The Engine under new settings: a fresh account before the first start (so the starting
        balance applies), else the same account, positions and orders."""
        if self._status == SESSION_NEW:
            return Engine(settings)
        state = self._engine.to_state()
        state["settings"] = settings.to_dict()
        return Engine.from_state(state)

    def _set_analysis(self, analysis: AnalysisSettings) -> None:
        if analysis.settings_hash() != self._analysis.settings_hash():
            self._anchor.clear()  # other settings, other shared analysis: its own anchor
        self._analysis = analysis

    @workflow.update
    async def analyze_now(self) -> dict[str, AnalyzeCandleResult]:
        """The analysis of each stream's last processed candle, run now (shared results are reused);
        it never trades."""
        results: dict[str, AnalyzeCandleResult] = {}
        for symbol in self._symbols:
            key = stream_key(symbol, self._interval)
            open_time = self._last_open.get(key)
            if open_time is None:
                continue
            results[key] = await workflow.execute_activity_method(
                SessionAnalysisActivities.analyze_candle,
                AnalyzeCandleInput(symbol, self._interval, open_time, self._analysis.to_dict(), self._anchor.get(key)),
                start_to_close_timeout=ANALYSIS_TIMEOUT,
            )
        return results

    @analyze_now.validator
    def _validate_analyze_now(self) -> None:
        if not self._last_open:
            raise ValueError("no candle processed yet: nothing to analyse")

    # ------------------------------------------------------------------ manual trading
    @workflow.update
    async def place_order(self, order: ManualOrderInput) -> ManualOrderResult:
        async with self._lock:
            price, time = None, self._engine.now
            if order.order_type == "market":
                price, time = await self._latest_price(order.symbol)
            try:
                placed, result = self._place(self._engine, order, price, time)
            except (OrderError, ValueError) as exc:
                raise rejected(str(exc)) from None
            if result.fills:
                await self._commit(result, None)
            return ManualOrderResult(placed.to_dict() if placed else None,
                                     tuple(f.to_dict() for f in result.fills),
                                     tuple(t.to_dict() for t in result.trades))

    @place_order.validator
    def _validate_place_order(self, order: ManualOrderInput) -> None:
        if order.symbol not in self._symbols:
            raise ValueError(f"{order.symbol!r} is not one of this session's symbols {list(self._symbols)}")
        price = None
        if order.order_type == "market":
            price = self._engine.last_close.get(order.symbol)
            if price is None:
                raise ValueError(f"no price for {order.symbol} yet: wait for its first candle")
        self._place(self._engine_copy(), order, price, self._engine.now)

    @staticmethod
    def _place(engine: Engine, order: ManualOrderInput, price: float | None,
               time: int) -> tuple[Any, StepResult]:
        return engine.place_order(
            order.symbol, order.side, order.order_type, order.quantity, time=time, price=price,
            limit_price=order.limit_price, stop_price=order.stop_price, reduce_only=order.reduce_only,
            stop_loss=order.stop_loss, take_profit=order.take_profit,
        )

    @workflow.update
    def cancel_order(self, request: CancelOrderInput) -> dict:
        try:
            return self._engine.cancel_order(request.order_id).to_dict()
        except OrderError as exc:
            raise rejected(str(exc)) from None

    @cancel_order.validator
    def _validate_cancel_order(self, request: CancelOrderInput) -> None:
        if request.order_id not in self._engine.orders:
            raise ValueError(f"no pending order {request.order_id!r}")

    @workflow.update
    async def close_trade(self, request: CloseTradeInput) -> dict:
        async with self._lock:
            position = self._open_position(request.trade_id)
            price, time = await self._latest_price(position.symbol)
            try:
                trade = self._engine.close_trade(request.trade_id, price, time)
            except OrderError as exc:
                raise rejected(str(exc)) from None
            await self._commit(StepResult(trades=(trade,)), None)
            return trade.to_dict()

    @close_trade.validator
    def _validate_close_trade(self, request: CloseTradeInput) -> None:
        self._open_position(request.trade_id)

    def _open_position(self, trade_id: int) -> Any:
        for position in self._engine.positions.values():
            if position.trade_id == trade_id:
                return position
        raise rejected(f"no open trade {trade_id!r}")

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
            last_open_time=dict(self._last_open), analysis_anchor=dict(self._anchor), queued=len(self._queue),
            candles_processed=self._processed, duplicates_dropped=self._duplicates,
            gap_candles_filled=self._filled, candles_ignored=self._ignored, candles_rejected=self._rejected,
            trades_closed=self._trades_closed, entries_enabled=self._engine.entries_enabled,
            equity=self._engine.equity(),
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
            analysis_anchor=dict(self._anchor), queue=tuple(self._queue), candles_processed=self._processed,
            duplicates_dropped=self._duplicates, gap_candles_filled=self._filled, candles_ignored=self._ignored,
            candles_rejected=self._rejected, trades_closed=self._trades_closed, commits=self._commits,
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

