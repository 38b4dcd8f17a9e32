"""RealSessionWorkflow ``session:{user}:real``: the paper session's decisions, traded with real money.

NEW (configured) → RUNNING after a RED approval started it (``start``, sent by the approval once
approved; the start is refused unless the approval is the user's approved RED start) ⇄ HALTED
(entries stopped by the session: a reconciliation difference, an unprotected position, a failed
order) → STOPPED (``stop``, always allowed, with or without flattening).

Per candle (in order, one at a time): the shared analysis, then an Engine modelling the account
steps (``trading.engine``: the fill rule, entry planning, the seven risk checks; market time only),
then the exchange is read. The Engine's exits by stop or take profit happen on the exchange by
themselves (close-position algo orders); a decision waiting for the next open is acted on at once,
on a copy of the Engine at the book's price (``Engine.act_at_open``), since the exchange's next open
is the price an order sent now gets: closes and entries go out as ``OrderWorkflow``s. A filled entry
gets its stop and take profit; if the exchange does not show them open within
``protection_confirm_s`` the position is closed reduce-only and entries halt. After every candle and
every ``reconcile_every_s`` the session's view (its positions, its protective orders, the model's
positions) is compared with the exchange's (``trading.reconciliation``): any difference halts entries
and raises an alert; the owner adopts or flattens. Fills, fees and funding are booked from the
exchange's REST records (``RealSessionActivities.sync_ledger``): after orders, on every periodic pass,
and whenever the user-data stream hints (a fill, a balance change, a reconnect: the gap-fill).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RawValue
from temporalio.exceptions import FailureError

with workflow.unsafe.imports_passed_through():
    from activities.session_analysis import SessionAnalysisActivities
    from core.contracts import SIGNAL_CANDLE_CLOSED, AnalyzeCandleInput, CandleClosed, stream_key
    from core.real_session_contracts import (
        ALERT_ORDER_FAILED,
        ALERT_UNPROTECTED,
        DEFAULT_RUN_EVENTS,
        TRADING_STATES,
        ExchangeView,
        ManagedPosition,
        RealSessionConfig,
        RealSessionState,
    )
    from trading.candle import INTERVAL_MS, Candle, candle_problem
    from trading.engine import CandleRejected, Engine
    from trading.models import Side
    from trading.signals import Direction, Signal
    from workflows.real_session_base import BOUNDED, now_ms, signed_quantity
    from workflows.real_session_control import RealSessionControl
    from workflows.real_session_orders import filled
    from workflows.real_session_settings import RealSessionSettings
    from workflows.session_funding import learn_funding_rates

ANALYSIS_TIMEOUT = timedelta(minutes=1)
# A quiet candle's status is written through every this many candles.
RECORD_EVERY = 12


@workflow.defn
class RealSessionWorkflow(RealSessionControl, RealSessionSettings):
    @workflow.init
    def __init__(self, state: RealSessionState | None) -> None:
        super().__init__(state)

    # ------------------------------------------------------------------ the loop
    @workflow.run
    async def run(self, state: RealSessionState | None) -> None:
        while True:
            trading = self._state.status in TRADING_STATES
            every = self._state.config.reconcile_every_s if self._state.config else None
            try:
                await workflow.wait_condition(
                    lambda: self._continue_as_new() or self._start_request is not None
                    or (self._stream is not None and self._stream.done())
                    or (self._state.status in TRADING_STATES
                        and (bool(self._arrivals) or self._reconcile_now or self._ledger_behind)),
                    timeout=timedelta(seconds=every) if trading and every else None)
            except TimeoutError:
                self._reconcile_now = True
            if self._start_request is not None:
                request, self._start_request = self._start_request, None
                async with self._lock:
                    await self._start(request)
            self._follow_user_stream()
            if self._state.status in TRADING_STATES:
                async with self._lock:
                    if self._reconcile_now:
                        self._reconcile_now = False
                        await self._reconcile(await self._read_or_none(full=True), "periodic")
                        self._ledger_behind = True
                    if self._ledger_behind:  # hinted by the user-data stream, or the periodic pass
                        self._ledger_behind = False
                        await self._sync_ledger(income=True)
                    while self._arrivals and self._state.status in TRADING_STATES and not self._continue_as_new():
                        await self._take(self._arrivals.popleft())
            else:
                self._stop_user_stream()
            if self._continue_as_new():
                await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._lock.locked())
                self._stop_user_stream()  # the next run follows it again, with a gap-fill
                workflow.continue_as_new(self._snapshot())

    def _continue_as_new(self) -> bool:
        """When Temporal suggests it, or once a run holds ``run_events`` events: a worker that starts
        cold replays a whole run, so runs stay short."""
        info = workflow.info()
        limit = self._state.config.run_events if self._state.config else DEFAULT_RUN_EVENTS
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= limit

    async def _take(self, closed: CandleClosed) -> None:
        config, engine = self._state.config, self._engine
        assert config is not None and engine is not None
        candle = Candle(closed.open_time, closed.open, closed.high, closed.low, closed.close, closed.volume,
                        INTERVAL_MS[closed.interval], closed.symbol)
        if candle_problem(candle) or closed.open_time <= engine.last_open_time.get(closed.symbol, -1):
            return
        signal = await self._signal(closed, config)
        await learn_funding_rates(engine, candle, lambda: True, self._degraded)
        engine.entries_enabled = self._entries_open()
        try:
            engine.step(candle, signal)
        except CandleRejected as exc:
            workflow.logger.warning("candle rejected: %s", exc)
            return
        self._acted.pop(closed.symbol, None)
        view = await self._read_or_none()
        sent, held, changed = self._state.orders_sent, set(self._positions), False
        if view is not None:
            changed = await self._follow_exits(view)
            if closed.symbol in engine.pending_signals:
                await self._act(closed.symbol, view, closed.close_time)
                changed = True
            if changed:  # compared below with the exchange as it is now, not as it was before acting
                view = await self._read_or_none()
        if self._state.orders_sent != sent or set(self._positions) != held:
            await self._sync_ledger(income=False)  # fills to book; income waits for the periodic pass
        await self._reconcile(view, "candle")
        # Last: a harness (lockstep) reads this as "done with the candle, its orders answered".
        self._state = replace(self._state, last_open_time={**self._state.last_open_time,
                                                           closed.symbol: closed.open_time},
                              candles_processed=self._state.candles_processed + 1)
        # Written through when something moved, else now and then (the status query is always current).
        if changed or self._last_alert is not None or self._state.candles_processed % RECORD_EVERY == 0:
            await self._record("candle")

    async def _signal(self, closed: CandleClosed, config: RealSessionConfig) -> Signal | None:
        key = stream_key(closed.symbol, closed.interval)
        request = AnalyzeCandleInput(closed.symbol, closed.interval, closed.open_time, config.analysis_settings,
                                     self._anchor.get(key))
        try:
            analysis = await workflow.execute_local_activity_method(
                SessionAnalysisActivities.analyze_candle, request, start_to_close_timeout=ANALYSIS_TIMEOUT,
                retry_policy=BOUNDED)
        except FailureError as exc:
            workflow.logger.warning("no analysis of %s@%s (traded without a signal): %s", closed.symbol,
                                    closed.open_time, exc.cause or exc)
            return None
        self._anchor[key] = analysis.anchor
        found = analysis.signal
        if found is None:
            return None
        return Signal(closed.symbol, closed.open_time, Direction(found.direction), found.confidence, found.reason)

    # ------------------------------------------------------------------ acting on the exchange
    async def _act(self, symbol: str, view: ExchangeView, time: int) -> None:
        """The decision waiting for the next open, sent now at the book's price (see module docstring)."""
        assert self._engine is not None
        price = view.prices.get(symbol)
        if price is None:
            return
        planned_engine = Engine.from_state(self._engine.to_state())
        planned = planned_engine.act_at_open(symbol, price, time)
        spec = self._engine.spec(symbol)
        actions = self._actions()
        try:
            for fill in planned.fills:
                if not fill.opens:
                    await self._close(actions, symbol, "the opposite signal")
                    continue
                if not self._entries_open():
                    self._engine.pending_signals.pop(symbol, None)  # not sent: the model must not book it
                    continue
                side = "BUY" if fill.side is Side.LONG else "SELL"
                entry = await actions.market(symbol, side, fill.quantity, spec, reduce_only=False, purpose="entry")
                if not filled(entry):
                    self._engine.pending_signals.pop(symbol, None)
                    status = entry.status if entry is not None else "failed"
                    self._alert(ALERT_ORDER_FAILED, f"{symbol} entry {status}: "
                                                    f"{entry.reason if entry is not None else ''}", halt=False)
                    continue
                assert entry is not None
                position = planned_engine.positions.get(symbol)
                stop = position.stop_loss if position else None
                take = position.take_profit if position else None
                stop_id, take_id = await actions.protect(symbol, fill.side.value.upper(), stop, take, spec)
                self._positions[symbol] = ManagedPosition(
                    symbol, fill.side.value.upper(), entry.executed_qty, entry.avg_price, now_ms(), stop, take,
                    stop_id, take_id)
                wanted = tuple(i for i in (stop_id, take_id) if i)
                if wanted and not await actions.protected(symbol, wanted):
                    await self._close(actions, symbol, "its protective orders were not confirmed")
                    self._engine.pending_signals.pop(symbol, None)
                    self._alert(ALERT_UNPROTECTED, f"{symbol}: the stop or take profit was not open within "
                                                   f"{actions.config.protection_confirm_s} s of the fill; the "
                                                   "position was closed")
        finally:
            self._done(actions)
            # Still waiting in the model: it was sent, and the model books it at its next step.
            sent = symbol in self._engine.pending_signals
            self._acted[symbol] = signed_quantity((planned_engine if sent else self._engine).positions.get(symbol))

    async def _follow_exits(self, view: ExchangeView) -> bool:
        """Positions the exchange closed by themselves (a stop or take profit fired, a liquidation):
        the sibling protective order is cancelled, so it cannot close a later position. True when
        one was."""
        held = {p.symbol for p in view.positions}
        gone = [s for s in self._positions if s not in held]
        if not gone:
            return False
        actions = self._actions()
        try:
            for symbol in gone:
                managed = self._positions.pop(symbol)
                for order_id in (managed.stop_order, managed.take_order):
                    if order_id and order_id in view.open_algo_orders:
                        await actions.cancel(order_id, symbol, conditional=True)
        finally:
            self._done(actions)
        return True

    # ------------------------------------------------------------------ signals and queries
    @workflow.signal(name=SIGNAL_CANDLE_CLOSED)
    def candle_closed(self, candle: RawValue) -> None:
        try:
            closed = CandleClosed(**json.loads(candle.payload.data))
        except (TypeError, ValueError) as exc:
            workflow.logger.warning("a candle_closed signal that is no candle was dropped: %s", exc)
            return
        config = self._state.config
        if self._state.status in TRADING_STATES and config is not None and closed.symbol in config.symbols \
                and closed.interval == config.interval:
            self._arrivals.append(replace(closed, analysis=None))

