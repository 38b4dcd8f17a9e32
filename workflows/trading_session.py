"""TradingSessionWorkflow ``session:{user}:{mode}``: one paper account trading on the feed.

Created on first use with update-with-start (``USE_EXISTING``) and kept for good. The signal
``candle_closed`` only enqueues (dropping candles not newer than the last traded of their stream);
one main loop fills gaps from ``market_data`` and takes candles in (open time, symbol) order, each
symbol's candle of a time only once every followed stream has reached it (``CandleQueue``), so a
multi-symbol session steps its Engine exactly as a backtest over the merged series.

Per candle: the analysis (a local activity, with bounded retries and no lock held), then, under the
lock for an instant, ``Engine.step`` (market time only, no I/O), running metrics and the step's
commit appended to the outbox. A second coroutine writes the outbox to MongoDB in order; while
MongoDB or the analysis is out of reach the session says so in its status (``degraded``) and waits,
and writes (a close, a stop) still apply at once and are written when MongoDB returns.
Continue-as-new when Temporal suggests it, once every handler has finished, carrying the state,
the outbox and the write history, and cursors instead of the candle backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import timedelta
from functools import partial
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.market_reads import MarketReadActivities
    from activities.session_analysis import (
        ANALYSIS_FAILED,
        CANDLE_NOT_STORED,
        SessionAnalysisActivities,
        analysis_key,
    )
    from activities.session_store import SessionStoreActivities
    from core.ai_contracts import ANSWERED, AskGrokInput, AskGrokResult, GrokCallPolicy
    from core.contracts import (
        SIGNAL_CANDLE_CLOSED,
        TASK_QUEUE_AI,
        TASK_QUEUE_TRADING,
        AnalyzeCandleInput,
        AnalyzeCandleResult,
        CandleClosed,
        CompactSignal,
        ReadCandlesInput,
        SessionState,
        SessionWritesInput,
        stream_key,
    )
    from trading.ai_modes import ASKING_MODES, Decision, decide
    from trading.analysis_settings import AnalysisSettings
    from trading.candle import INTERVAL_MS, Candle, candle_problem
    from trading.engine import CandleRejected, StepResult
    from trading.signals import Direction, Signal
    from workflows import session_legacy as legacy
    from workflows.ai_ask import ask_grok
    from workflows.session_ai import GROK_ATTEMPTS, GROK_RETRY_S, PATCH_AI_MODES, ai_summary, decision_record
    from workflows.session_base import (
        ANALYSIS_TIMEOUT,
        BOUNDED,
        COMMIT_TIMEOUT,
        FILLED_SOURCE,
        OUTBOX_BATCH,
        PATCH_CANDLE_BARRIER,
        PATCH_FUNDING_RATES,
        PATCH_LOCAL_ANALYSIS,
        PATCH_LONGER_BURSTS,
        PATCH_SIGNALLED_ANALYSIS,
        PATCH_STOPPED_BLOCKS_ENTRIES,
        PATCH_WRITE_OUTBOX,
        PATCH_YIELD_BURSTS,
        READ_TIMEOUT,
    )
    from workflows.session_control import SessionControl
    from workflows.session_funding import learn_funding_rates
    from workflows.session_orders import ManualOrders

__all__ = ["PATCH_CANDLE_BARRIER", "PATCH_LOCAL_ANALYSIS", "PATCH_LONGER_BURSTS", "PATCH_STOPPED_BLOCKS_ENTRIES",
           "PATCH_WRITE_OUTBOX", "PATCH_YIELD_BURSTS", "TradingSessionWorkflow"]

# A backlog is taken this many candles per workflow task (see run()).
BURST_CANDLES = legacy.BURST_CANDLES
MAX_RUN_EVENTS = 1_000
BURST_PAUSE = legacy.BURST_PAUSE
# Candles one read of market_data brings back when a run picks up the backlog a previous run left.
READ_CHUNK = 500
# The outbox may grow this long (MongoDB away) before the loop stops taking candles.
OUTBOX_LIMIT = 1000
# How long the loop waits before it tries an unavailable analysis or outbox write again, at most.
MAX_BACKOFF_S = 30.0
# A local activity holds the workflow task while it runs, so its retries are few and short (each
# attempt bounds its MongoDB calls, see activities.db.bounded): an outage turns into a degraded state
# the session waits out on a timer, answering updates meanwhile.
ANALYSIS_RETRIES = RetryPolicy(initial_interval=timedelta(milliseconds=200), backoff_coefficient=2.0,
                               maximum_interval=timedelta(seconds=1), maximum_attempts=2,
                               non_retryable_error_types=[ANALYSIS_FAILED])
COMMIT_RETRIES = RetryPolicy(initial_interval=timedelta(milliseconds=200), backoff_coefficient=2.0,
                             maximum_interval=timedelta(seconds=1), maximum_attempts=2)
# What a candle was traded on when its analysis failed for good (a signal never comes from it).
NO_ANALYSIS = AnalyzeCandleResult(anchor=-1, analysis_key="", signal=None)
# What a decision waiting for the next open has done so far.
PENDING_OUTCOME: dict[str, Any] = {"risk": [], "rejection": None, "opened": False}


@workflow.defn
class TradingSessionWorkflow(SessionControl, ManualOrders):
    @workflow.init
    def __init__(self, state: SessionState | None) -> None:
        super().__init__(state)
        self._backoff: dict[str, float] = {}

    # ------------------------------------------------------------------ main loop
    @workflow.run
    async def run(self, state: SessionState | None) -> None:
        if not self._outbox_mode():
            await legacy.run(self)
            return
        self._queue.chunk = READ_CHUNK
        self._publish_search_attributes()
        writer = asyncio.create_task(self._write_outbox())
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
                await self._take_next()
                burst += self._processed - taken
            if burst >= BURST_CANDLES and self._has_work():
                # Local activities resolve inside one workflow task: without a boundary a backlog
                # would be worked off in one ever longer task, blind to continue-as-new and deaf
                # to updates until it ends. A timer closes the task.
                burst = 0
                await workflow.sleep(BURST_PAUSE)
            if self._time_to_continue_as_new():
                await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._lock.locked())
                # The outbox writer stops first: no command may follow continue-as-new. What it had not
                # written yet goes with the state.
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
                workflow.continue_as_new(self._handover())

    def _should_wake(self, blocked: tuple[str, int] | None) -> bool:
        # Checked after every signal: the cheap tests first.
        return ((self._sorted and bool(self._arrivals)) or self._time_to_continue_as_new()
                or self._has_work() or self._blocked_head() != blocked)

    @staticmethod
    def _time_to_continue_as_new() -> bool:
        """When Temporal suggests it, or sooner: a worker that starts cold replays the whole run in one
        workflow task, so a run is kept short enough to replay within seconds on a busy machine."""
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= MAX_RUN_EVENTS

    def _has_work(self) -> bool:
        if not self._sorted:
            return bool(self._arrivals)
        if len(self._outbox) > OUTBOX_LIMIT:
            return False  # MongoDB is away: stop taking candles until what they wrote is written
        gaps = self._queue.gaps(INTERVAL_MS[self._interval]) if self._interval else []
        head = self._queue.head()
        if head is None:
            return bool(gaps)
        return bool(gaps) or not self._queue.blocking(head)

    def _blocked_head(self) -> tuple[str, int] | None:
        """The next candle while the barrier holds it back for another stream, else None."""
        if not self._sorted:
            return None
        head = self._queue.head()
        if head is None or self._has_work():
            return None
        return head.symbol, head.open_time

    async def _take_next(self) -> None:
        """Fill gaps from market_data, then trade the next ready candle. One candle at a time, so a
        backlog read back from market_data still meets the burst limit and continue-as-new."""
        if not await self._fill_gaps():
            return
        head = self._queue.head()
        if head is None or self._queue.blocking(head):
            return
        received = self._queue.received.get(stream_key(head.symbol, head.interval), -1)
        # A candle a previous run received and handed on as a cursor is read back, not a gap.
        if await self._trade(head) and head.source == FILLED_SOURCE and head.open_time > received:
            self._filled += 1

    async def _fill_gaps(self) -> bool:
        """Read the queue's gaps from market_data; False when it cannot (MongoDB away)."""
        interval = self._interval
        for symbol, first, last in self._queue.gaps(INTERVAL_MS[interval]):
            try:
                # Reads are capped per call: the next pass reads on from the last candle filled.
                gap = await workflow.execute_activity_method(
                    MarketReadActivities.read_market_candles, ReadCandlesInput(symbol, interval, first, last),
                    start_to_close_timeout=READ_TIMEOUT, retry_policy=BOUNDED,
                )
            except ActivityError as exc:
                await self._wait_out("market data", f"cannot read {symbol} {interval} candles: {exc.cause or exc}")
                return False
            if interval != self._interval:
                return False  # the session moved to another interval meanwhile
            for missing in gap.candles:
                self._queue.add(missing)
            # Nothing stored: the series has a hole there; trade on past it.
            self._queue.filled(symbol, gap.candles[-1].open_time if gap.candles else last)
        self._recovered("market data")
        return True

    async def _trade(self, head: CandleClosed) -> bool | None:
        """Analyse and step the queue's head: True when it was traded, False when it was dropped or
        the state moved on meanwhile (the loop looks again), None when the analysis is unavailable."""
        candle = _candle(head)
        problem = candle_problem(candle)
        if problem:
            # Bad data is never analysed or traded on; the next good candle fills the gap from
            # market_data, which holds validated candles only.
            workflow.logger.warning("bad candle %s@%s dropped: %s", head.symbol, head.open_time, problem)
            self._queue.pop(head)
            self._rejected += 1
            return False
        settings = self._analysis
        analysis = await self._analysis_of(head)
        if analysis is None:
            return None
        grok = await self._ask_grok(head, analysis) if self._asks_grok(settings, analysis) else None
        async with self._lock:
            # An update may have run while the analysis did: trade only what still stands.
            if self._queue.head() is not head or self._analysis is not settings:
                return False
            self._queue.pop(head)
            await self._step(head, candle, analysis, grok)
        return True

    @staticmethod
    def _asks_grok(settings: AnalysisSettings, analysis: AnalyzeCandleResult) -> bool:
        # Sessions with Grok's part off never reach the patch marker, so their histories replay as before.
        return (settings.ai_mode in ASKING_MODES and analysis.signal is not None and bool(analysis.analysis_key)
                and workflow.patched(PATCH_AI_MODES))

    async def _ask_grok(self, closed: CandleClosed, analysis: AnalyzeCandleResult) -> AskGrokResult:
        """Grok's view of the candle within the settings' deadline, or the fallback and why; a session
        never waits longer, and an outage only means the consensus trades alone."""
        queue = workflow.info().task_queue
        prefix = queue[:-len(TASK_QUEUE_TRADING)] if queue.endswith(TASK_QUEUE_TRADING) else ""
        deadline = self._analysis.ai_deadline_s
        policy = GrokCallPolicy(task_queue=prefix + TASK_QUEUE_AI, model="", deadline_s=deadline,
                                call_timeout_s=deadline, max_attempts=GROK_ATTEMPTS, retry_initial_s=GROK_RETRY_S)
        result = await ask_grok(AskGrokInput(self._user_id, analysis.analysis_key, "session"), policy)
        if result.outcome == ANSWERED:
            self._recovered("grok")
        else:
            self._degraded["grok"] = (f"{closed.symbol}@{closed.open_time}: {result.reason}"
                                      f"{': ' + result.detail if result.detail else ''}; the consensus trades alone")
        return result

    async def _analysis_of(self, closed: CandleClosed) -> AnalyzeCandleResult | None:
        """The shared analysis of a candle; ``NO_ANALYSIS`` when it failed for good (the candle is
        traded without a signal, so exits are still managed), None while it cannot be had."""
        key = stream_key(closed.symbol, closed.interval)
        sent = self._sent_analysis(closed, key)
        if sent is not None:
            self._recovered("analysis")
            return sent
        request = AnalyzeCandleInput(closed.symbol, closed.interval, closed.open_time, self._analysis.to_dict(),
                                     self._anchor.get(key))
        try:
            analysis = await workflow.execute_local_activity_method(
                SessionAnalysisActivities.analyze_candle, request, start_to_close_timeout=ANALYSIS_TIMEOUT,
                retry_policy=ANALYSIS_RETRIES)
        except FailureError as exc:
            if isinstance(_root(exc), CancelledError):
                raise
            cause = _root(exc)
            reason = f"candle {closed.symbol}@{closed.open_time}: {cause}"
            if isinstance(cause, ApplicationError) and cause.type in (ANALYSIS_FAILED, CANDLE_NOT_STORED):
                workflow.logger.warning("analysis failed, trading without a signal: %s", reason)
                self._degraded["analysis"] = f"{reason}; traded without a signal"
                return NO_ANALYSIS
            await self._wait_out("analysis", f"unavailable, retrying: {reason}")
            return None
        self._recovered("analysis")
        return analysis

    def _sent_analysis(self, closed: CandleClosed, key: str) -> AnalyzeCandleResult | None:
        """The analysis the feed sent with the candle, when it is the one this session would ask for
        (same settings hash and anchor); anything else, or anything malformed, is ignored."""
        sent = closed.analysis
        if not sent:
            return None
        try:
            anchor = int(self._anchor.get(key, sent["anchor"]))
            expected = analysis_key(closed.symbol, closed.interval, closed.open_time, self._analysis_hash(), anchor)
            if sent["analysis_key"] != expected or int(sent["anchor"]) != anchor:
                return None
            signal = CompactSignal(**sent["signal"]) if sent["signal"] is not None else None
        except (KeyError, TypeError, ValueError):
            return None
        # Candles sent with an analysis reach this only in runs recorded since it was sent.
        if not workflow.patched(PATCH_SIGNALLED_ANALYSIS):
            return None
        return AnalyzeCandleResult(anchor, expected, signal)

    async def _learn_funding_rates(self, candle: Candle) -> None:
        await learn_funding_rates(self._engine, candle, lambda: workflow.patched(PATCH_FUNDING_RATES), self._degraded)

    async def _step(self, closed: CandleClosed, candle: Candle, analysis: AnalyzeCandleResult,
                    grok: AskGrokResult | None = None) -> None:
        await self._learn_funding_rates(candle)
        key = stream_key(closed.symbol, closed.interval)
        if analysis is not NO_ANALYSIS:
            self._anchor[key] = analysis.anchor
        signal, ai_record = None, None
        if analysis.signal is not None:
            technical = Decision(analysis.signal.direction, analysis.signal.confidence, analysis.signal.reason)
            decided = technical
            if grok is not None:
                decided = decide(self._analysis, technical, grok.verdicts,
                                 grok.answer if grok.outcome == ANSWERED else None, grok.reason)
                ai_record = decision_record(workflow.info().workflow_id, self._generation, closed, self._analysis,
                                            technical, grok, decided)
            signal = Signal(closed.symbol, closed.open_time, Direction(decided.direction), decided.confidence,
                            decided.reason)
        engine = self._engine
        waiting = engine.pending_signals.get(closed.symbol) if engine.pending_signals else None
        try:
            result = engine.step(candle, signal)
        except CandleRejected as exc:
            # Bad or late data is never traded on; the stream goes on with the next candle.
            workflow.logger.warning("candle rejected: %s", exc)
            self._rejected += 1
            return
        self._last_open[key] = closed.open_time
        self._queue.traded(closed)
        self._processed += 1
        day_closed = self._metrics.record_step(self._engine.now, self._engine.equity(), bool(self._engine.positions))
        analysis_key = analysis.analysis_key or None
        decision = self._decision(closed, signal, analysis_key, result)
        if decision is not None and ai_record is not None:
            decision["ai"] = ai_summary(ai_record)
            decision["strategy_scores"] = {v["strategy"]: v["confidence"] if v["direction"] != "neutral" else 0.0
                                           for v in ai_record["verdicts"]}
        # With fills at the next open, this step may act on the previous candle's decision: its
        # trades keep that candle's analysis, and the decision is published with its outcome now.
        held = self._waiting.pop(closed.symbol, None)
        acted_on = None
        if held is not None and held["decision"]:
            # None waiting in the Engine: a reset or new settings dropped the decision before this open.
            acted_on = {**held["decision"], **(self._outcome(result) if waiting is not None
                                               else {"rejection": "dropped before the next open"})}
        if closed.symbol in engine.pending_signals:
            self._waiting[closed.symbol] = {"analysis_key": analysis_key,
                                            "decision": {**decision, **PENDING_OUTCOME} if decision else None}
            decision = None
        entry_key = held["analysis_key"] if held is not None and waiting is not None else analysis_key
        await self._commit(result, entry_key, closed.symbol, day_closed.to_dict() if day_closed else None,
                           decision, acted_on, ai_record)

    @staticmethod
    def _outcome(result: StepResult) -> dict[str, Any]:
        # The risk checks of an attempted entry and why it did not trade (None: it traded, or nothing
        # was attempted).
        return {"risk": [r.to_dict() for r in result.risk], "rejection": result.rejection,
                "opened": any(f.opens for f in result.fills)}

    @staticmethod
    def _decision(closed: CandleClosed, signal: Signal | None, analysis_key: str | None,
                  result: StepResult) -> dict[str, Any] | None:
        """What the session made of a long/short consensus (published as ``AISignalReceived``)."""
        if signal is None or signal.direction is Direction.NEUTRAL:
            return None
        return {"symbol": closed.symbol, "interval": closed.interval, "open_time": closed.open_time,
                "direction": signal.direction.value, "confidence": signal.confidence,
                "reason": signal.reason, "analysis_key": analysis_key, **TradingSessionWorkflow._outcome(result)}

    async def _unblock(self) -> None:
        """The barrier timed out: look for the silent streams' candles in market_data, and stop
        waiting for those that have none (they rejoin when they trade again)."""
        head = self._queue.head()
        if head is None:
            return
        for symbol in self._queue.blocking(head):
            last = self._queue.last(symbol)
            first = head.open_time if last is None else last + INTERVAL_MS[self._interval]
            try:
                found = await workflow.execute_activity_method(
                    MarketReadActivities.read_market_candles,
                    ReadCandlesInput(symbol, self._interval, first, head.open_time),
                    start_to_close_timeout=READ_TIMEOUT, retry_policy=BOUNDED,
                )
            except ActivityError as exc:
                self._degraded["market data"] = f"cannot read {symbol} candles: {exc.cause or exc}"
                continue
            for candle in found.candles:
                self._queue.add(candle)
        for symbol in self._queue.blocking(head):
            workflow.logger.warning("no %s %s candle up to %s: trading on without it",
                                    symbol, self._interval, head.open_time)
            self._queue.lagging.add(symbol)

    # ------------------------------------------------------------------ the outbox
    async def _write_outbox(self) -> None:
        """Write the outbox to MongoDB in order, a batch at a time; while it cannot, say so and try
        again later. Every record has a natural unique key, so a batch written twice (a retry, or
        the next run after continue-as-new) writes nothing twice."""
        while True:
            await workflow.wait_condition(lambda: bool(self._outbox))
            batch = tuple(self._outbox[:OUTBOX_BATCH])
            try:
                await workflow.execute_local_activity_method(
                    SessionStoreActivities.write_session_records,
                    SessionWritesInput(workflow.info().workflow_id, self._user_id, batch),
                    start_to_close_timeout=COMMIT_TIMEOUT, retry_policy=COMMIT_RETRIES)
            except FailureError as exc:
                if isinstance(_root(exc), CancelledError):
                    raise asyncio.CancelledError from None  # stopped for continue-as-new
                await self._wait_out("commits", f"{len(self._outbox)} record(s) wait for MongoDB: {_root(exc)}")
                continue
            del self._outbox[:len(batch)]
            self._recovered("commits")
            self._show_details()

    async def _wait_out(self, what: str, reason: str) -> None:
        """Mark ``what`` degraded and wait before it is tried again (doubling, up to 30 s), or until
        Temporal suggests continue-as-new: a session that cannot work still hands its history on."""
        wait = self._backoff.get(what, 0.5) * 2
        self._backoff[what] = min(wait, MAX_BACKOFF_S)
        if what not in self._degraded:
            workflow.logger.warning("%s degraded: %s", what, reason)
        self._degraded[what] = reason
        self._show_details()
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(self._time_to_continue_as_new,
                                          timeout=self._backoff[what])

    def _recovered(self, what: str) -> None:
        self._backoff.pop(what, None)
        if self._degraded.pop(what, None) is not None:
            workflow.logger.info("%s recovered", what)
            self._show_details()

    # ------------------------------------------------------------------ signals
    @workflow.signal(name=SIGNAL_CANDLE_CLOSED)
    def candle_closed(self, candle: RawValue) -> None:
        """Only enqueue. The payload is decoded here by hand: after a long outage a workflow task may
        bring thousands of candles at once, and the SDK's typed decoding would cost ten times as much,
        past its 2-second deadlock detector. A payload that is no candle is counted and dropped, never
        a failed workflow task."""
        try:
            self._arrivals.append(CandleClosed(**json.loads(candle.payload.data)))
        except (TypeError, ValueError) as exc:
            workflow.logger.warning("a candle_closed signal that is no candle was dropped: %s", exc)
            self._rejected += 1


def _root(exc: BaseException) -> BaseException:
    """The failure an activity error is about (a local activity's may come unwrapped)."""
    return exc.cause if isinstance(exc, ActivityError) and exc.cause is not None else exc


def _candle(closed: CandleClosed) -> Candle:
    return Candle(closed.open_time, closed.open, closed.high, closed.low, closed.close, closed.volume,
                  INTERVAL_MS[closed.interval], closed.symbol)
