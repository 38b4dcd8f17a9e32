"""Replay-only: how runs started before ``PATCH_WRITE_OUTBOX`` processed candles and applied updates.

Those runs committed each step and settings record inline (a local activity under the session's
lock), kept no idempotency records and carried their candle backlog across continue-as-new. Their
histories (``tests/session/histories`` v1-v5) must replay command for command, so this module is
frozen: a behaviour change belongs in the handlers and the main loop, behind a new patch. A live run
of this kind moves to the current code at its next continue-as-new.
"""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from typing import Any

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
        CancelOrderInput,
        CandleClosed,
        CloseTradeInput,
        ManualOrderInput,
        ManualOrderResult,
        ReadCandlesInput,
        ResetSessionResult,
        SessionStatus,
        SignalIntervalInput,
        StartSessionInput,
        UpdateSettingsInput,
        UpdateSymbolsInput,
        stream_key,
    )
    from trading.candle import INTERVAL_MS, Candle, candle_problem
    from trading.engine import CandleRejected, OrderError, StepResult
    from trading.errors import InvalidInput
    from trading.running_metrics import RunningMetrics
    from trading.signals import Direction, Signal
    from workflows import session_journal as journal
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
    from workflows.session_rules import rejected

# A backlog was taken this many candles per workflow task; FIRST_ was the size of the first version.
BURST_CANDLES = 50
FIRST_BURST_CANDLES = 10
BURST_PAUSE = timedelta(milliseconds=1)

Session = Any  # a TradingSessionWorkflow (annotated loosely: this module is imported by its bases)


# ------------------------------------------------------------------------------------- main loop
async def run(wf: Session) -> None:
    wf._sorted = workflow.patched(PATCH_CANDLE_BARRIER)
    wf._local_analysis = workflow.patched(PATCH_LOCAL_ANALYSIS)
    burst_limit = (BURST_CANDLES if workflow.patched(PATCH_LONGER_BURSTS)
                   else FIRST_BURST_CANDLES if workflow.patched(PATCH_YIELD_BURSTS) else None)
    wf._publish_search_attributes()
    burst = 0
    while True:
        wf._absorb()
        blocked = wf._blocked_head()
        timeout = wf._barrier_timeout_s if blocked is not None else None
        if not wf._should_wake(blocked):
            burst = 0
        try:
            await workflow.wait_condition(partial(wf._should_wake, blocked), timeout=timeout)
        except TimeoutError:
            async with wf._lock:
                await wf._unblock()
        wf._absorb()
        if wf._has_work():
            taken = wf._processed
            async with wf._lock:
                await _take_next(wf)
            burst += wf._processed - taken
        if burst_limit is not None and burst >= burst_limit and wf._has_work():
            burst = 0
            await workflow.sleep(BURST_PAUSE)
        if workflow.info().is_continue_as_new_suggested():
            await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not wf._lock.locked())
            workflow.continue_as_new(wf.snapshot())


async def _take_next(wf: Session) -> None:
    if not wf._sorted:
        await _take_in_arrival_order(wf, wf._arrivals.popleft())
        return
    step = INTERVAL_MS[wf._interval]
    while True:
        for symbol, first, last in wf._queue.gaps(step):
            gap = await workflow.execute_activity_method(
                MarketReadActivities.read_market_candles, ReadCandlesInput(symbol, wf._interval, first, last),
                start_to_close_timeout=READ_TIMEOUT,
            )
            for missing in gap.candles:
                wf._queue.add(missing)
            wf._queue.filled(symbol, gap.candles[-1].open_time if gap.candles else last)
        head = wf._queue.head()
        if head is None or wf._queue.blocking(head):
            return
        wf._queue.pop(head)
        await _trade(wf, head)
        if head.source != FILLED_SOURCE:
            return
        wf._filled += 1


async def _take_in_arrival_order(wf: Session, candle: CandleClosed) -> None:
    if candle.symbol not in wf._symbols or candle.interval != wf._interval:
        wf._ignored += 1
        return
    key = stream_key(candle.symbol, candle.interval)
    last = wf._last_open.get(key)
    if last is not None and candle.open_time <= last:
        wf._duplicates += 1
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
            await _trade(wf, missing)
            wf._filled += 1
        after = gap.candles[-1].open_time
    await _trade(wf, candle)


async def _trade(wf: Session, closed: CandleClosed) -> None:
    key = stream_key(closed.symbol, closed.interval)
    candle = Candle(closed.open_time, closed.open, closed.high, closed.low, closed.close, closed.volume,
                    INTERVAL_MS[closed.interval], closed.symbol)
    if candle_problem(candle):
        wf._rejected += 1
        return
    request = AnalyzeCandleInput(closed.symbol, closed.interval, closed.open_time, wf._analysis.to_dict(),
                                 wf._anchor.get(key))
    if wf._local_analysis:
        analysis = await workflow.execute_local_activity_method(
            SessionAnalysisActivities.analyze_candle, request, start_to_close_timeout=ANALYSIS_TIMEOUT)
    else:
        analysis = await workflow.execute_activity_method(
            SessionAnalysisActivities.analyze_candle, request, start_to_close_timeout=ANALYSIS_TIMEOUT)
    wf._anchor[key] = analysis.anchor
    signal = None
    if analysis.signal is not None:
        signal = Signal(closed.symbol, closed.open_time, Direction(analysis.signal.direction),
                        analysis.signal.confidence, analysis.signal.reason)
    try:
        result = wf._engine.step(candle, signal)
    except CandleRejected:
        wf._rejected += 1
        return
    wf._last_open[key] = closed.open_time
    wf._queue.traded(closed)
    wf._processed += 1
    day_closed = wf._metrics.record_step(wf._engine.now, wf._engine.equity(), bool(wf._engine.positions))
    await wf._commit(result, analysis.analysis_key, closed.symbol, day_closed.to_dict() if day_closed else None,
                     wf._decision(closed, signal, analysis.analysis_key, result))


# ---------------------------------------------------------------------------------------- updates
async def start(wf: Session, request: StartSessionInput) -> SessionStatus:
    async with wf._lock:
        engine_settings, analysis = wf._check_start(request)
        if wf._status == SESSION_NEW and request.source != wf._source:
            wf._last_open.clear()
            wf._read_through.clear()
            wf._anchor.clear()
        await wf._follow(request.source, tuple(request.symbols), request.interval)
        wf._barrier_timeout_s = request.barrier_timeout_s
        wf._engine = journal.rebuilt_engine(wf._engine, engine_settings, wf._status == SESSION_NEW)
        wf._set_analysis(analysis)
        wf._engine.entries_enabled = True
        wf._status = SESSION_RUNNING
        wf._publish_search_attributes()
        await wf._save_settings()
        return wf.status()


async def update_symbols(wf: Session, request: UpdateSymbolsInput) -> SessionStatus:
    async with wf._lock:
        wf._check_symbols_change(request)
        await wf._follow(wf._source, tuple(request.symbols), wf._interval)
        wf._publish_search_attributes()
        await wf._save_settings()
        return wf.status()


async def set_signal_interval(wf: Session, request: SignalIntervalInput) -> SessionStatus:
    async with wf._lock:
        wf._check_interval_change(request)
        await wf._follow(wf._source, wf._symbols, request.interval)
        await wf._save_settings()
        return wf.status()


async def stop(wf: Session) -> SessionStatus:
    wf._engine.entries_enabled = False
    wf._status = SESSION_STOPPED
    wf._publish_search_attributes()
    async with wf._lock:
        await wf._save_settings()
    return wf.status()


async def reset(wf: Session) -> ResetSessionResult:
    async with wf._lock:
        prices = {p.symbol: await wf._latest_price(p.symbol) for p in wf._engine.positions.values()}
        cancelled = tuple(wf._engine.cancel_order(order_id).to_dict() for order_id in list(wf._engine.orders))
        closes = tuple(wf._engine.close_trade(p.trade_id, *prices[p.symbol])
                       for p in list(wf._engine.positions.values()))
        if closes:
            await wf._commit(StepResult(trades=closes), None, None)
        await wf._follow(wf._source, (), wf._interval)
        wf._status = SESSION_NEW
        wf._generation += 1
        wf._engine = journal.rebuilt_engine(wf._engine, wf._engine.settings, True)
        wf._metrics = RunningMetrics(wf._engine.settings.starting_balance)
        wf._publish_search_attributes()
        await wf._save_settings()
        await wf._commit(StepResult(), None, None)
        return ResetSessionResult(cancelled, tuple(t.to_dict() for t in closes), wf.status())


async def update_settings(wf: Session, request: UpdateSettingsInput) -> SessionStatus:
    async with wf._lock:
        engine_settings, analysis = wf._check_settings(request)
        wf._engine = journal.rebuilt_engine(wf._engine, engine_settings, wf._status == SESSION_NEW)
        wf._set_analysis(analysis)
        await wf._save_settings()
        return wf.status()


async def analyze_now(wf: Session) -> dict[str, AnalyzeCandleResult]:
    results: dict[str, AnalyzeCandleResult] = {}
    for symbol in wf._symbols:
        key = stream_key(symbol, wf._interval)
        open_time = wf._last_open.get(key)
        if open_time is None:
            continue
        results[key] = await workflow.execute_activity_method(
            SessionAnalysisActivities.analyze_candle,
            AnalyzeCandleInput(symbol, wf._interval, open_time, wf._analysis.to_dict(), wf._anchor.get(key)),
            start_to_close_timeout=ANALYSIS_TIMEOUT,
        )
    return results


async def place_order(wf: Session, order: ManualOrderInput) -> ManualOrderResult:
    async with wf._lock:
        price, time = None, wf._engine.now
        if order.order_type == "market":
            price, time = await wf._latest_price(order.symbol)
        try:
            if workflow.patched(PATCH_STOPPED_BLOCKS_ENTRIES):
                wf._check_may_open(order)
            placed, result = journal.place(wf._engine, order, price, time)
        except (OrderError, ValueError) as exc:
            raise rejected(str(exc)) from None
        if result.fills:
            await wf._commit(result, None, order.symbol)
        return ManualOrderResult(placed.to_dict() if placed else None, tuple(f.to_dict() for f in result.fills),
                                 tuple(t.to_dict() for t in result.trades))


def cancel_order(wf: Session, request: CancelOrderInput) -> dict:
    try:
        return wf._engine.cancel_order(request.order_id).to_dict()
    except OrderError as exc:
        raise rejected(str(exc)) from None


async def close_trade(wf: Session, request: CloseTradeInput) -> dict:
    async with wf._lock:
        try:
            position = wf._open_position(request.trade_id)
        except InvalidInput as exc:
            raise rejected(exc.reason) from None
        price, time = await wf._latest_price(position.symbol)
        try:
            trade = wf._engine.close_trade(request.trade_id, price, time)
        except OrderError as exc:
            raise rejected(str(exc)) from None
        await wf._commit(StepResult(trades=(trade,)), None, trade.symbol)
        return trade.to_dict()
