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

from datetime import timedelta
from functools import partial

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.market_reads import MarketReadActivities
    from activities.session_analysis import SessionAnalysisActivities
    from trading.candle import INTERVAL_MS, Candle, candle_problem
    from trading.engine import CandleRejected
    from trading.signals import Direction, Signal
    from workflows.contracts import (
        SIGNAL_CANDLE_CLOSED,
        AnalyzeCandleInput,
        CandleClosed,
        ReadCandlesInput,
        SessionState,
        stream_key,
    )
    from workflows.session_base import (
        ANALYSIS_TIMEOUT,
        FILLED_SOURCE,
        PATCH_CANDLE_BARRIER,
        PATCH_LOCAL_ANALYSIS,
        PATCH_LONGER_BURSTS,
        PATCH_STOPPED_BLOCKS_ENTRIES,
        PATCH_YIELD_BURSTS,
        READ_TIMEOUT,
    )
    from workflows.session_control import SessionControl
    from workflows.session_orders import ManualOrders
    from workflows.session_queue import DUPLICATE, IGNORED

__all__ = ["PATCH_CANDLE_BARRIER", "PATCH_LOCAL_ANALYSIS", "PATCH_LONGER_BURSTS", "PATCH_STOPPED_BLOCKS_ENTRIES",
           "PATCH_YIELD_BURSTS", "TradingSessionWorkflow"]

# A backlog is taken this many candles per workflow task (see run()); FIRST_ was the size of the
# first version (PATCH_YIELD_BURSTS).
BURST_CANDLES = 50
FIRST_BURST_CANDLES = 10
BURST_PAUSE = timedelta(milliseconds=1)


@workflow.defn
class TradingSessionWorkflow(SessionControl, ManualOrders):
    @workflow.init
    def __init__(self, state: SessionState | None) -> None:
        super().__init__(state)

    # ------------------------------------------------------------------ main loop
    @workflow.run
    async def run(self, state: SessionState | None) -> None:
        self._sorted = workflow.patched(PATCH_CANDLE_BARRIER)
        self._local_analysis = workflow.patched(PATCH_LOCAL_ANALYSIS)
        # Each timer costs a server round trip (~0.5 s on the dev server), so bursts are long; runs
        # that recorded the first, shorter bursts keep them.
        burst_limit = (BURST_CANDLES if workflow.patched(PATCH_LONGER_BURSTS)
                       else FIRST_BURST_CANDLES if workflow.patched(PATCH_YIELD_BURSTS) else None)
        self._publish_search_attributes()
        burst = 0  # candles taken since the last workflow-task boundary
        while True:
            self._absorb()
            blocked = self._blocked_head()
            timeout = self._barrier_timeout_s if blocked is not None else None
            if not self._should_wake(blocked):
                burst = 0  # the wait below blocks: what wakes it starts a new workflow task
            try:
                await workflow.wait_condition(partial(self._should_wake, blocked), timeout=timeout)
            except TimeoutError:
                async with self._lock:
                    await self._unblock()
            self._absorb()
            if self._has_work():
                taken = self._processed
                async with self._lock:
                    await self._take_next()
                burst += self._processed - taken
            if burst_limit is not None and burst >= burst_limit and self._has_work():
                # Local activities resolve inside one workflow task: without a boundary a backlog
                # would be worked off in one ever longer task, blind to continue-as-new and deaf
                # to updates until it ends. A timer closes the task.
                burst = 0
                await workflow.sleep(BURST_PAUSE)
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
        request = AnalyzeCandleInput(closed.symbol, closed.interval, closed.open_time, self._analysis.to_dict(),
                                     self._anchor.get(key))
        if self._local_analysis:
            # The analysis is shared and mostly a cached read: no reason to queue it.
            analysis = await workflow.execute_local_activity_method(
                SessionAnalysisActivities.analyze_candle, request, start_to_close_timeout=ANALYSIS_TIMEOUT)
        else:
            analysis = await workflow.execute_activity_method(
                SessionAnalysisActivities.analyze_candle, request, start_to_close_timeout=ANALYSIS_TIMEOUT)
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
                       "reason": signal.reason, "analysis_key": analysis.analysis_key,
                       # What the session made of it: the risk checks of an attempted entry and
                       # why it did not trade (None: it traded, or nothing was attempted).
                       "risk": [r.to_dict() for r in result.risk], "rejection": result.rejection,
                       "opened": any(f.opens for f in result.fills)}
        await self._commit(result, analysis.analysis_key, closed.symbol,
                           day_closed.to_dict() if day_closed else None, decided)


    # ------------------------------------------------------------------ signals
    @workflow.signal(name=SIGNAL_CANDLE_CLOSED)
    def candle_closed(self, candle: CandleClosed) -> None:
        self._arrivals.append(candle)

