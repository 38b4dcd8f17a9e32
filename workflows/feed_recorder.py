"""FeedRecorderWorkflow: subscribes to one stream and records what it receives.

It is the reference receiver of ``candle_closed`` (what a trading session does before it trades):
signals only enqueue; the main loop drops candles not newer than the last processed, and fills a
gap from ``market_data`` before going on, so every candle is processed once and in order. Operators
use it to check a feed; tests use it to prove delivery.
"""

from __future__ import annotations

from collections import deque
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.market_reads import MarketReadActivities
    from core.contracts import (
        SIGNAL_CANDLE_CLOSED,
        CandleClosed,
        FeedRecorderInput,
        FeedRecorderState,
        FeedSubscription,
        ReadCandlesInput,
    )
    from trading.candle import INTERVAL_MS

READ_TIMEOUT = timedelta(seconds=10)


@workflow.defn
class FeedRecorderWorkflow:
    def __init__(self) -> None:
        self._queue: deque[CandleClosed] = deque()
        self._open_times: list[int] = []
        self._closes: list[float] = []
        self._duplicates = 0
        self._filled = 0
        self._stop = False

    @workflow.run
    async def run(self, recorder: FeedRecorderInput) -> FeedRecorderState:
        sub = FeedSubscription(recorder.source, recorder.symbol, recorder.interval, workflow.info().workflow_id)
        await workflow.execute_activity_method(MarketReadActivities.subscribe_feed, sub,
                                               start_to_close_timeout=READ_TIMEOUT)
        step = INTERVAL_MS[recorder.interval]
        while True:
            await workflow.wait_condition(lambda: bool(self._queue) or self._stop)
            if not self._queue and self._stop:
                break
            candle = self._queue.popleft()
            last = self._open_times[-1] if self._open_times else None
            if last is not None and candle.open_time <= last:
                self._duplicates += 1
                continue
            if last is not None and candle.open_time > last + step:
                gap = await workflow.execute_activity_method(
                    MarketReadActivities.read_market_candles,
                    ReadCandlesInput(recorder.symbol, recorder.interval, last + step, candle.open_time - step),
                    start_to_close_timeout=READ_TIMEOUT,
                )
                for missing in gap.candles:
                    self._record(missing)
                    self._filled += 1
            self._record(candle)
        await workflow.execute_activity_method(MarketReadActivities.unsubscribe_feed, sub,
                                               start_to_close_timeout=READ_TIMEOUT)
        return self.state()

    def _record(self, candle: CandleClosed) -> None:
        self._open_times.append(candle.open_time)
        self._closes.append(candle.close)

    @workflow.signal(name=SIGNAL_CANDLE_CLOSED)
    def candle_closed(self, candle: CandleClosed) -> None:
        self._queue.append(candle)

    @workflow.signal
    def stop(self) -> None:
        self._stop = True

    @workflow.query
    def state(self) -> FeedRecorderState:
        return FeedRecorderState(tuple(self._open_times), tuple(self._closes), self._duplicates, self._filled,
                                 self._stop)
