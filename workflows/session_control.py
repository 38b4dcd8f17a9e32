"""Update handlers that steer a trading session: start, stop, symbols, signal interval, settings,
reset and analysis on demand. Each validator checks against the current state (or a copy of the
Engine) so a rejected update changes nothing; handlers re-check under the lock, since the state may
move between the validator and the handler.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.market_reads import MarketReadActivities
    from activities.session_analysis import SessionAnalysisActivities
    from trading.analysis_settings import AnalysisSettings
    from trading.engine import StepResult
    from trading.running_metrics import RunningMetrics
    from trading.settings import EngineSettings
    from workflows.contracts import (
        SESSION_NEW,
        SESSION_RUNNING,
        SESSION_STOPPED,
        AnalyzeCandleInput,
        AnalyzeCandleResult,
        FeedSubscription,
        ResetSessionResult,
        SessionStatus,
        SignalIntervalInput,
        StartSessionInput,
        UpdateSettingsInput,
        UpdateSymbolsInput,
        stream_key,
    )
    from workflows.session_base import (
        ANALYSIS_TIMEOUT,
        BARRIER_TIMEOUT_RANGE_S,
        READ_TIMEOUT,
        SessionBase,
    )
    from workflows.session_rules import (
        check_interval,
        check_symbols,
        checked_settings,
        merged_analysis_settings,
        merged_engine_settings,
    )


class SessionControl(SessionBase):
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
        engine_settings, analysis = checked_settings(self._engine.settings, self._analysis,
                                                     request.engine_settings, request.analysis_settings)
        self._rebuilt_engine(engine_settings)
        return engine_settings, analysis

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

