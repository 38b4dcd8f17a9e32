"""Update handlers that steer a trading session: start, stop, symbols, signal interval, settings,
reset and analysis on demand.

Each validator checks against the current state (or a copy of the Engine), so a rejected update
changes nothing. Handlers run through ``SessionBase._write``: a repeat of an applied update returns
its first result, and the checks run again under the lock, since the state may have moved between
the validator and the handler (two quick clicks on Start): a refusal there fails only that update,
with its field, as an ``ApplicationError``.
"""

from __future__ import annotations

from functools import partial

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.market_reads import MarketReadActivities
    from activities.session_analysis import SessionAnalysisActivities
    from core.contracts import (
        SESSION_NEW,
        SESSION_RUNNING,
        SESSION_STOPPED,
        AnalyzeCandleInput,
        AnalyzeCandleResult,
        FeedSubscription,
        ResetSessionResult,
        SessionStatus,
        SettingsUpdated,
        SignalIntervalInput,
        StartSessionInput,
        UpdateSettingsInput,
        UpdateSymbolsInput,
        stream_key,
    )
    from trading.analysis_settings import AnalysisSettings
    from trading.engine import StepResult
    from trading.errors import InvalidInput
    from trading.running_metrics import RunningMetrics
    from trading.settings import EngineSettings
    from workflows import session_journal as journal
    from workflows import session_legacy as legacy
    from workflows.session_base import (
        ANALYSIS_TIMEOUT,
        BARRIER_TIMEOUT_RANGE_S,
        BOUNDED,
        PATCH_SIGNALLED_ANALYSIS,
        READ_TIMEOUT,
        SessionBase,
    )
    from workflows.session_rules import (
        Conflict,
        check_account_kept,
        check_interval,
        check_specs_cover,
        check_symbols,
        checked_settings,
        merged_analysis_settings,
        merged_engine_settings,
        validating,
        with_specs,
    )

AnalysisResults = dict[str, AnalyzeCandleResult]


class SessionControl(SessionBase):
    # ------------------------------------------------------------------ start
    @workflow.update
    async def start(self, request: StartSessionInput) -> SessionStatus:
        if not self._outbox_mode():
            return await legacy.start(self, request)
        return await self._write(journal.START, request, SessionStatus, partial(self._start, request))

    async def _start(self, request: StartSessionInput) -> SessionStatus:
        engine_settings, analysis = self._check_start(request)
        fresh = self._status == SESSION_NEW
        if fresh and request.source != self._source:
            # Another feed, other candles: nothing learnt from the old one applies.
            self._last_open.clear()
            self._read_through.clear()
            self._received.clear()
            self._anchor.clear()
        await self._follow(request.source, tuple(request.symbols), request.interval, analysis)
        self._barrier_timeout_s = request.barrier_timeout_s
        self._apply(journal.START, {**journal.settings_change(engine_settings, fresh),
                                    "analysis_settings": analysis.to_dict(), "symbols": list(request.symbols),
                                    "interval": request.interval})
        self._set_analysis(analysis)
        self._status = SESSION_RUNNING
        self._publish_search_attributes()
        await self._save_settings()
        return self.status()

    @start.validator
    def _validate_start(self, request: StartSessionInput) -> None:
        with validating():
            if not self._check_repeat(request):
                self._check_start(request)

    def _check_start(self, request: StartSessionInput) -> tuple[EngineSettings, AnalysisSettings]:
        if not request.source:
            raise InvalidInput("source", "source must name the feed, e.g. 'binance'")
        check_symbols(request.symbols)
        check_interval(request.interval)
        low, high = BARRIER_TIMEOUT_RANGE_S
        wait = request.barrier_timeout_s
        if not low <= wait <= high:  # NaN fails too
            raise InvalidInput("barrier_timeout_s",
                               f"barrier_timeout_s must be between {low:g} and {high:g} s, got {wait}")
        if self._status == SESSION_RUNNING:
            raise InvalidInput("status", "the session is running already; stop it first")
        if self._status != SESSION_NEW and request.source != self._source:
            raise InvalidInput("source", f"changing the feed source from {self._source!r} needs a reset")
        self._check_leaving(request.symbols)
        check_account_kept(self._engine.settings, request.engine_settings, fresh=self._status == SESSION_NEW)
        settings = merged_engine_settings(self._engine.settings, request.engine_settings)
        check_specs_cover(settings, request.symbols)
        analysis = merged_analysis_settings(self._analysis, request.analysis_settings)
        journal.rebuilt_engine(self._engine, settings, self._status == SESSION_NEW)
        return settings, analysis

    def _check_leaving(self, symbols: tuple[str, ...]) -> None:
        # Another interval keeps a symbol followed (its exits are managed on the new timeframe);
        # dropping a symbol would leave its position or order without candles.
        leaving = {s for s in self._symbols if s not in symbols}
        busy = sorted(leaving & ({*self._engine.positions} | {o.symbol for o in self._engine.orders.values()}))
        if busy:
            raise InvalidInput("symbols", f"cannot stop following {busy} while positions or orders are open there")

    async def _follow(self, source: str, symbols: tuple[str, ...], interval: str,
                      analysis: AnalysisSettings | None = None) -> None:
        """Subscribe to every stream of (symbols, interval), leave the others, and keep the queued
        candles of the streams that stay. The subscriptions come first: if MongoDB cannot take them,
        the update fails with nothing changed."""
        leaving = [s for s in self._symbols if s not in symbols or interval != self._interval]
        await self._subscribe(source, symbols, interval, analysis or self._analysis)
        for symbol in leaving:
            await workflow.execute_activity_method(
                MarketReadActivities.unsubscribe_feed,
                FeedSubscription(self._source, symbol, self._interval, workflow.info().workflow_id),
                start_to_close_timeout=READ_TIMEOUT, retry_policy=BOUNDED,
            )
        kept = self._queue.pending()
        self._source, self._symbols, self._interval = source, symbols, interval
        lagging = self._queue.lagging & set(symbols)
        chunk = self._queue.chunk
        self._queue = self._new_queue(symbols, interval, kept)
        self._queue.lagging = lagging
        self._queue.chunk = chunk

    async def _subscribe(self, source: str, symbols: tuple[str, ...], interval: str,
                         analysis: AnalysisSettings) -> None:
        # With the analysis settings, the feed computes the shared analysis and sends it with each
        # candle (see TradingSessionWorkflow._sent_analysis).
        for symbol in symbols:
            await workflow.execute_activity_method(
                MarketReadActivities.subscribe_feed,
                FeedSubscription(source, symbol, interval, workflow.info().workflow_id, analysis.to_dict()),
                start_to_close_timeout=READ_TIMEOUT, retry_policy=BOUNDED,
            )

    # ------------------------------------------------------------------ symbols and interval
    @workflow.update
    async def update_symbols(self, request: UpdateSymbolsInput) -> SessionStatus:
        if not self._outbox_mode():
            return await legacy.update_symbols(self, request)
        return await self._write(journal.UPDATE_SYMBOLS, request, SessionStatus,
                                 partial(self._update_symbols, request))

    async def _update_symbols(self, request: UpdateSymbolsInput) -> SessionStatus:
        settings = self._check_symbols_change(request)
        await self._follow(self._source, tuple(request.symbols), self._interval)
        change: dict = {"symbols": list(request.symbols)}
        if request.specs:
            change.update(journal.settings_change(settings, self._status == SESSION_NEW))
        self._apply(journal.UPDATE_SYMBOLS, change)
        self._publish_search_attributes()
        await self._save_settings()
        return self.status()

    @update_symbols.validator
    def _validate_update_symbols(self, request: UpdateSymbolsInput) -> None:
        with validating():
            if not self._check_repeat(request):
                self._check_symbols_change(request)

    def _check_symbols_change(self, request: UpdateSymbolsInput) -> EngineSettings:
        """The Engine's settings under the new symbols (their exchange filters, when given)."""
        symbols = check_symbols(request.symbols)
        if self._status == SESSION_NEW:
            raise InvalidInput("status", "the session has not been started: give the symbols to start")
        self._check_leaving(symbols)
        settings = with_specs(self._engine.settings, request.specs) if request.specs else self._engine.settings
        if request.specs and sorted(spec.symbol for spec in settings.symbols) != sorted(symbols):
            raise InvalidInput("specs", "the exchange filters must name exactly the symbols followed")
        check_specs_cover(settings, symbols)
        return settings

    @workflow.update
    async def set_signal_interval(self, request: SignalIntervalInput) -> SessionStatus:
        if not self._outbox_mode():
            return await legacy.set_signal_interval(self, request)
        return await self._write(journal.SET_SIGNAL_INTERVAL, request, SessionStatus,
                                 partial(self._set_signal_interval, request))

    async def _set_signal_interval(self, request: SignalIntervalInput) -> SessionStatus:
        self._check_interval_change(request)
        await self._follow(self._source, self._symbols, request.interval)
        self._apply(journal.SET_SIGNAL_INTERVAL, {"interval": request.interval})
        await self._save_settings()
        return self.status()

    @set_signal_interval.validator
    def _validate_set_signal_interval(self, request: SignalIntervalInput) -> None:
        with validating():
            if not self._check_repeat(request):
                self._check_interval_change(request)

    def _check_interval_change(self, request: SignalIntervalInput) -> None:
        interval = check_interval(request.interval)
        if self._status == SESSION_NEW:
            raise InvalidInput("status", "the session has not been started: give the interval to start")
        if interval == self._interval:
            raise InvalidInput("interval", f"the session trades on {interval} already")

    # ------------------------------------------------------------------ stop and reset
    @workflow.update
    async def stop(self) -> SessionStatus:
        """Block new entries; exits of open positions and resting orders keep being managed, so the
        feed subscription stays. Needs nothing outside the workflow, so it works while MongoDB is
        down (the settings record is written when it returns)."""
        if not self._outbox_mode():
            return await legacy.stop(self)
        return await self._write(journal.STOP, None, SessionStatus, self._stop)

    async def _stop(self) -> SessionStatus:
        self._check_stop()
        self._apply(journal.STOP, {})
        self._status = SESSION_STOPPED
        self._publish_search_attributes()
        await self._save_settings()
        return self.status()

    @stop.validator
    def _validate_stop(self) -> None:
        with validating():
            if not self._check_repeat(None):
                self._check_stop()

    def _check_stop(self) -> None:
        if self._status != SESSION_RUNNING:
            raise InvalidInput("status", f"the session is {self._status}, not running")

    @workflow.update
    async def reset(self) -> ResetSessionResult:
        """A fresh account at the starting balance: pending orders cancelled first, open positions
        closed at the latest price, the feed left. Settings stay; trade and order IDs go on (rows of
        earlier accounts keep theirs) and the generation counts resets."""
        if not self._outbox_mode():
            return await legacy.reset(self)
        return await self._write(journal.RESET, None, ResetSessionResult, self._reset)

    async def _reset(self) -> ResetSessionResult:
        # Every read first: if one fails, the update fails before anything changed.
        prices = {p.symbol: list(await self._latest_price(p.symbol, never_blocks=True))
                  for p in self._engine.positions.values()}
        await self._follow(self._source, (), self._interval)
        cancelled, closes = journal.flatten(self._engine, prices)
        if closes:
            await self._commit(StepResult(trades=closes), None, None)
        self._engine = journal.rebuilt_engine(self._engine, self._engine.settings, fresh=True)
        self._record(journal.RESET, {"prices": prices})
        self._status = SESSION_NEW
        self._generation += 1
        self._metrics = RunningMetrics(self._engine.settings.starting_balance)
        self._publish_search_attributes()
        await self._save_settings()
        await self._commit(StepResult(), None, None)  # the fresh account's first snapshot
        return ResetSessionResult(tuple(o.to_dict() for o in cancelled), tuple(t.to_dict() for t in closes),
                                  self.status())

    # ------------------------------------------------------------------ settings
    @workflow.update
    async def update_settings(self, request: UpdateSettingsInput) -> SettingsUpdated:
        if not self._outbox_mode():
            await legacy.update_settings(self, request)
            return SettingsUpdated(self.status(), self.settings())
        return await self._write(journal.UPDATE_SETTINGS, request, SettingsUpdated,
                                 partial(self._update_settings, request))

    async def _update_settings(self, request: UpdateSettingsInput) -> SettingsUpdated:
        engine_settings, analysis = self._check_settings(request)
        if (self._symbols and analysis.settings_hash() != self._analysis_hash()
                and workflow.patched(PATCH_SIGNALLED_ANALYSIS)):
            # The feed sends the analysis of the settings it was told; first, like every subscription.
            await self._subscribe(self._source, self._symbols, self._interval, analysis)
        self._apply(journal.UPDATE_SETTINGS, {**journal.settings_change(engine_settings, self._status == SESSION_NEW),
                                              "analysis_settings": analysis.to_dict()})
        self._set_analysis(analysis)
        await self._save_settings()
        return SettingsUpdated(self.status(), self.settings())

    @update_settings.validator
    def _validate_update_settings(self, request: UpdateSettingsInput) -> None:
        with validating():
            if not self._check_repeat(request):
                self._check_settings(request)

    def _check_settings(self, request: UpdateSettingsInput) -> tuple[EngineSettings, AnalysisSettings]:
        expected = request.expected_version
        if expected is not None and expected != self._settings_version:
            raise Conflict("expected_version", f"the settings changed since version {expected} (now "
                                               f"{self._settings_version}): reload them and try again")
        engine_settings, analysis = checked_settings(self._engine.settings, self._analysis,
                                                     request.engine_settings, request.analysis_settings,
                                                     fresh=self._status == SESSION_NEW)
        journal.rebuilt_engine(self._engine, engine_settings, self._status == SESSION_NEW)
        return engine_settings, analysis

    def _set_analysis(self, analysis: AnalysisSettings) -> None:
        if analysis.settings_hash() != self._analysis.settings_hash():
            self._anchor.clear()  # other settings, other shared analysis: its own anchor
        self._analysis = analysis

    # ------------------------------------------------------------------ analysis on demand
    @workflow.update
    async def analyze_now(self) -> dict[str, AnalyzeCandleResult]:
        """The analysis of each stream's last processed candle, run now (shared results are reused);
        it never trades, so it runs without the lock."""
        if not self._outbox_mode():
            return await legacy.analyze_now(self)
        return await self._write(journal.ANALYZE_NOW, None, AnalysisResults, self._analyze_now, locked=False)

    async def _analyze_now(self) -> dict[str, AnalyzeCandleResult]:
        self._check_analyze_now()
        results: dict[str, AnalyzeCandleResult] = {}
        for symbol in self._symbols:
            key = stream_key(symbol, self._interval)
            open_time = self._last_open.get(key)
            if open_time is None:
                continue
            # A failure after the bounded retries fails this update (the caller sees it as unavailable).
            results[key] = await workflow.execute_activity_method(
                SessionAnalysisActivities.analyze_candle,
                AnalyzeCandleInput(symbol, self._interval, open_time, self._analysis.to_dict(),
                                   self._anchor.get(key)),
                start_to_close_timeout=ANALYSIS_TIMEOUT, retry_policy=BOUNDED,
            )
        self._record(journal.ANALYZE_NOW, {"streams": sorted(results)})
        return results

    @analyze_now.validator
    def _validate_analyze_now(self) -> None:
        with validating():
            if not self._check_repeat(None):
                self._check_analyze_now()

    def _check_analyze_now(self) -> None:
        if not any(stream_key(s, self._interval) in self._last_open for s in self._symbols):
            raise InvalidInput("status", "no candle processed yet: nothing to analyse")
