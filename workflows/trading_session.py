"""TradingSessionWorkflow ``session:{user}:{mode}``: one paper account trading on the feed.

Created on first use with update-with-start (``USE_EXISTING``) and kept for good. The signal
``candle_closed`` only enqueues (dropping candles not newer than the last traded of their stream);
one main loop fills gaps from ``market_data`` and takes candles in (open time, symbol) order, each
symbol's candle of a time only once every followed stream has reached it (``CandleQueue``), so a
multi-symbol session steps its Engine exactly as a backtest over the merged series. Per candle:
the analysis activity, ``Engine.step`` here (market time only, no I/O), running metrics, and one
commit local activity. Updates change the session between candles: each is checked by its
validator against a copy of the Engine first, so a rejected update changes nothing. Continue-as-new
when Temporal suggests it, once every handler has finished, carrying the state and the queue.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import timedelta
from functools import partial
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.market_reads import MarketReadActivities
    from activities.session_analysis import SessionAnalysisActivities
    from activities.session_store import SessionStoreActivities
    from trading.analysis_settings import AnalysisSettings
    from trading.candle import INTERVAL_MS, Candle, candle_problem
    from trading.engine import CandleRejected, Engine, OrderError, StepResult
    from trading.running_metrics import RunningMetrics
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
        ResetSessionResult,
        SessionCommit,
        SessionSettingsRecord,
        SessionState,
        SessionStatus,
        SignalIntervalInput,
        StartSessionInput,
        UpdateSettingsInput,
        UpdateSymbolsInput,
        stream_key,
    )
    from workflows.session_queue import DUPLICATE, IGNORED, CandleQueue
    from workflows.session_rules import (
        check_interval,
        check_symbols,
        merged_analysis_settings,
        merged_engine_settings,
        rejected,
        session_identity,
    )

READ_TIMEOUT = timedelta(seconds=30)
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
        self._read_through = dict(state.read_through or {})
        self._anchor = dict(state.analysis_anchor or {})
        self._queue = self._new_queue(self._symbols, self._interval, ())
        self._queue.lagging = set(state.lagging)
        # Signals (and the candles a previous run handed on) land here first; the main loop moves
        # them into the queue (handlers may run before the main loop has picked this run's path).
        self._arrivals: deque[CandleClosed] = deque(state.queue)
        self._sorted = True
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

    # ------------------------------------------------------------------ main loop
    @workflow.run
    async def run(self, state: SessionState | None) -> None:
        self._sorted = workflow.patched(PATCH_CANDLE_BARRIER)
        self._publish_search_attributes()
        while True:
            self._absorb()
            blocked = self._blocked_head()
            timeout = self._barrier_timeout_s if blocked is not None else None
            try:
                await workflow.wait_condition(partial(self._should_wake, blocked), timeout=timeout)
            except TimeoutError:
                async with self._lock:
                    await self._unblock()
            self._absorb()
            if self._has_work():
                async with self._lock:
                    await self._take_next()
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._lock.locked())
                workflow.continue_as_new(self.snapshot())

    def _absorb(self) -> None:
        while self._sorted and self._arrivals:
            outcome = self._queue.add(self._arrivals.popleft())
            if outcome == DUPLICATE:
                self._duplicates += 1
            elif outcome == IGNORED:
                self._ignored += 1  # a stream this session does not follow (any more)

    def _should_wake(self, blocked: tuple[str, int] | None) -> bool:
        return (self._has_work() or self._blocked_head() != blocked or (self._sorted and bool(self._arrivals))
                or workflow.info().is_continue_as_new_suggested())

    def _has_work(self) -> bool:
        if not self._sorted:
            return bool(self._arrivals)
        head = self._queue.head()
        if head is None:
            return False
        return bool(self._queue.gaps(INTERVAL_MS[self._interval])) or not self._queue.blocking(head)

    def _blocked_head(self) -> tuple[str, int] | None:
        """The next candle while the barrier holds it back for another stream, else None."""
        if not self._sorted:
            return None
        head = self._queue.head()
        if head is None or self._has_work():
            return None
        return head.symbol, head.open_time

    async def _take_next(self) -> None:
        """Fill gaps from market_data, then trade the next ready candle (and, as one unit, the
        filled candles before a fed one, so a gap and the candle that revealed it go together)."""
        if not self._sorted:
            await self._take_in_arrival_order(self._arrivals.popleft())
            return
        step = INTERVAL_MS[self._interval]
        while True:
            for symbol, first, last in self._queue.gaps(step):
                # Reads are capped per call: the next pass reads on from the last candle filled.
                gap = await workflow.execute_activity_method(
                    MarketReadActivities.read_market_candles,
                    ReadCandlesInput(symbol, self._interval, first, last),
                    start_to_close_timeout=READ_TIMEOUT,
                )
                for missing in gap.candles:
                    self._queue.add(missing)
                # Nothing stored: the series has a hole there; trade on past it.
                self._queue.filled(symbol, gap.candles[-1].open_time if gap.candles else last)
            head = self._queue.head()
            if head is None or self._queue.blocking(head):
                return
            self._queue.pop(head)
            await self._trade(head)
            if head.source != FILLED_SOURCE:
                return
            self._filled += 1

    async def _take_in_arrival_order(self, candle: CandleClosed) -> None:
        """The pre-barrier path, kept so histories of runs started before it replay: dedupe, fill
        the gap before it from market_data, then trade it."""
        if candle.symbol not in self._symbols or candle.interval != self._interval:
            self._ignored += 1
            return
        key = stream_key(candle.symbol, candle.interval)
        last = self._last_open.get(key)
        if last is not None and candle.open_time <= last:
            self._duplicates += 1
            return
        step = INTERVAL_MS[candle.interval]
        after = last
        while after is not None and candle.open_time > after + step:
            gap = await workflow.execute_activity_method(
                MarketReadActivities.read_market_candles,
                ReadCandlesInput(candle.symbol, candle.interval, after + step, candle.open_time - step),
                start_to_close_timeout=READ_TIMEOUT,
            )
            if not gap.candles:
                break
            for missing in gap.candles:
                await self._trade(missing)
                self._filled += 1
            after = gap.candles[-1].open_time
        await self._trade(candle)

    async def _unblock(self) -> None:
        """The barrier timed out: look for the silent streams' candles in market_data, and stop
        waiting for those that have none (they rejoin when they trade again)."""
        head = self._queue.head()
        if head is None:
            return
        for symbol in self._queue.blocking(head):
            last = self._queue.last(symbol)
            first = head.open_time if last is None else last + INTERVAL_MS[self._interval]
            found = await workflow.execute_activity_method(
                MarketReadActivities.read_market_candles,
                ReadCandlesInput(symbol, self._interval, first, head.open_time),
                start_to_close_timeout=READ_TIMEOUT,
            )
            for candle in found.candles:
                self._queue.add(candle)
        for symbol in self._queue.blocking(head):
            workflow.logger.warning("no %s %s candle up to %s: trading on without it",
                                    symbol, self._interval, head.open_time)
            self._queue.lagging.add(symbol)

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
        self._queue.traded(closed)
        self._processed += 1
        day_closed = self._metrics.record_step(self._engine.now, self._engine.equity(), bool(self._engine.positions))
        decided = None
        if signal is not None and signal.direction is not Direction.NEUTRAL:
            decided = {"symbol": closed.symbol, "interval": closed.interval, "open_time": closed.open_time,
                       "direction": signal.direction.value, "confidence": signal.confidence,
                       "reason": signal.reason, "analysis_key": analysis.analysis_key}
        await self._commit(result, analysis.analysis_key, closed.symbol,
                           day_closed.to_dict() if day_closed else None, decided)

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

    # ------------------------------------------------------------------ signals
    @workflow.signal(name=SIGNAL_CANDLE_CLOSED)
    def candle_closed(self, candle: CandleClosed) -> None:
        self._arrivals.append(candle)

    # ------------------------------------------------------------------ start / stop / follow
    @workflow.update
    async def start(self, request: StartSessionInput) -> SessionStatus:
        async with self._lock:
            self._check_start(request)  # the state may have moved since the validator ran
            engine_settings = merged_engine_settings(self._engine.settings, request.engine_settings)
            analysis = merged_analysis_settings(self._analysis, request.analysis_settings)
            if self._status == SESSION_NEW and request.source != self._source:
                # Another feed, other candles: nothing learnt from the old one applies.
                self._last_open.clear()
                self._read_through.clear()
                self._anchor.clear()
            await self._follow(request.source, tuple(request.symbols), request.interval)
            self._barrier_timeout_s = request.barrier_timeout_s
            self._engine = self._rebuilt_engine(engine_settings)
            self._set_analysis(analysis)
            self._engine.entries_enabled = True
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
        check_symbols(request.symbols)
        check_interval(request.interval)
        low, high = BARRIER_TIMEOUT_RANGE_S
        wait = request.barrier_timeout_s
        if not low <= wait <= high:  # NaN fails too
            raise ValueError(f"barrier_timeout_s must be between {low:g} and {high:g} s, got {wait}")
        if self._status == SESSION_RUNNING:
            raise ValueError("the session is running already; stop it first")
        if self._status != SESSION_NEW and request.source != self._source:
            raise ValueError(f"changing the feed source from {self._source!r} needs a reset")
        self._check_leaving(request.symbols)
        settings = merged_engine_settings(self._engine.settings, request.engine_settings)
        merged_analysis_settings(self._analysis, request.analysis_settings)
        self._rebuilt_engine(settings)

    def _check_leaving(self, symbols: tuple[str, ...]) -> None:
        # Another interval keeps a symbol followed (its exits are managed on the new timeframe);
        # dropping a symbol would leave its position or order without candles.
        leaving = {s for s in self._symbols if s not in symbols}
        busy = sorted(leaving & ({*self._engine.positions} | {o.symbol for o in self._engine.orders.values()}))
        if busy:
            raise ValueError(f"cannot stop following {busy} while positions or orders are open there")

    async def _follow(self, source: str, symbols: tuple[str, ...], interval: str) -> None:
        """Subscribe to every stream of (symbols, interval), leave the others, and keep the queued
        candles of the streams that stay."""
        leaving = [s for s in self._symbols if s not in symbols or interval != self._interval]
        for symbol in symbols:
            await workflow.execute_activity_method(
                MarketReadActivities.subscribe_feed,
                FeedSubscription(source, symbol, interval, workflow.info().workflow_id),
                start_to_close_timeout=READ_TIMEOUT,
            )
        for symbol in leaving:
            await workflow.execute_activity_method(
                MarketReadActivities.unsubscribe_feed,
                FeedSubscription(self._source, symbol, self._interval, workflow.info().workflow_id),
                start_to_close_timeout=READ_TIMEOUT,
            )
        kept = self._queue.pending()
        self._source, self._symbols, self._interval = source, symbols, interval
        lagging = self._queue.lagging & set(symbols)
        self._queue = self._new_queue(symbols, interval, kept)
        self._queue.lagging = lagging

    @workflow.update
    async def update_symbols(self, request: UpdateSymbolsInput) -> SessionStatus:
        async with self._lock:
            self._check_symbols_change(request)
            await self._follow(self._source, tuple(request.symbols), self._interval)
            self._publish_search_attributes()
            await self._save_settings()
            return self.status()

    @update_symbols.validator
    def _validate_update_symbols(self, request: UpdateSymbolsInput) -> None:
        self._check_symbols_change(request)

    def _check_symbols_change(self, request: UpdateSymbolsInput) -> None:
        symbols = check_symbols(request.symbols)
        if self._status == SESSION_NEW:
            raise ValueError("the session has not been started: give the symbols to start")
        self._check_leaving(symbols)

    @workflow.update
    async def set_signal_interval(self, request: SignalIntervalInput) -> SessionStatus:
        async with self._lock:
            self._check_interval_change(request)
            await self._follow(self._source, self._symbols, request.interval)
            await self._save_settings()
            return self.status()

    @set_signal_interval.validator
    def _validate_set_signal_interval(self, request: SignalIntervalInput) -> None:
        self._check_interval_change(request)

    def _check_interval_change(self, request: SignalIntervalInput) -> None:
        interval = check_interval(request.interval)
        if self._status == SESSION_NEW:
            raise ValueError("the session has not been started: give the interval to start")
        if interval == self._interval:
            raise ValueError(f"the session trades on {interval} already")

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
    async def reset(self) -> ResetSessionResult:
        """A fresh account at the starting balance: pending orders cancelled first, open positions
        closed at the feed's latest price, the feed left. Settings stay; trade and order IDs go on
        (rows of earlier accounts keep theirs) and the generation counts resets."""
        async with self._lock:
            # Every price first: if one is missing, the update fails before anything changed.
            prices = {p.symbol: await self._latest_price(p.symbol) for p in self._engine.positions.values()}
            cancelled = tuple(self._engine.cancel_order(order_id).to_dict() for order_id in list(self._engine.orders))
            closes = tuple(self._engine.close_trade(p.trade_id, *prices[p.symbol])
                           for p in list(self._engine.positions.values()))
            if closes:
                await self._commit(StepResult(trades=closes), None, None)
            await self._follow(self._source, (), self._interval)
            self._status = SESSION_NEW
            self._generation += 1
            self._engine = self._rebuilt_engine(self._engine.settings)
            self._metrics = RunningMetrics(self._engine.settings.starting_balance)
            self._publish_search_attributes()
            await self._save_settings()
            await self._commit(StepResult(), None, None)  # the fresh account's first snapshot
            return ResetSessionResult(cancelled, tuple(t.to_dict() for t in closes), self.status())

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
        if not any(stream_key(s, self._interval) in self._last_open for s in self._symbols):
            raise ValueError("no candle processed yet: nothing to analyse")

    # ------------------------------------------------------------------ manual trading
    @workflow.update
    async def place_order(self, order: ManualOrderInput) -> ManualOrderResult:
        async with self._lock:
            price, time = None, self._engine.now
            if order.order_type == "market":
                price, time = await self._latest_price(order.symbol)
            try:
                if workflow.patched(PATCH_STOPPED_BLOCKS_ENTRIES):
                    self._check_may_open(order)  # the session may have stopped since the validator ran
                placed, result = self._place(self._engine, order, price, time)
            except (OrderError, ValueError) as exc:
                raise rejected(str(exc)) from None
            if result.fills:
                await self._commit(result, None, order.symbol)
            return ManualOrderResult(placed.to_dict() if placed else None,
                                     tuple(f.to_dict() for f in result.fills),
                                     tuple(t.to_dict() for t in result.trades))

    @place_order.validator
    def _validate_place_order(self, order: ManualOrderInput) -> None:
        if order.symbol not in self._symbols:
            raise ValueError(f"{order.symbol!r} is not one of this session's symbols {list(self._symbols)}")
        self._check_may_open(order)
        price = None
        if order.order_type == "market":
            price = self._engine.last_close.get(order.symbol)
            if price is None:
                raise ValueError(f"no price for {order.symbol} yet: wait for its first candle")
        self._place(self._engine_copy(), order, price, self._engine.now)

    def _check_may_open(self, order: ManualOrderInput) -> None:
        # A stopped session takes no new exposure, manual or not; reducing what is open is fine.
        if self._status != SESSION_RUNNING and not order.reduce_only:
            raise ValueError(f"the session is {self._status}: only reduce_only orders until it is started")

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
            await self._commit(StepResult(trades=(trade,)), None, trade.symbol)
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
