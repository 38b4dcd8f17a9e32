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
exchange's REST records (``RealSessionActivities.sync_ledger``).
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.market_reads import MarketReadActivities
    from activities.real_session import RealSessionActivities
    from activities.session_analysis import SessionAnalysisActivities
    from core.contracts import SIGNAL_CANDLE_CLOSED, AnalyzeCandleInput, CandleClosed, FeedSubscription, stream_key
    from core.real_session_contracts import (
        ALERT_HEDGE_MODE,
        ALERT_ORDER_FAILED,
        ALERT_RECONCILIATION,
        ALERT_UNPROTECTED,
        REAL_HALTED,
        REAL_NEW,
        REAL_RUNNING,
        REAL_STOPPED,
        TRADING_STATES,
        AdoptInput,
        ConfigureRealSessionInput,
        ExchangeView,
        ManagedPosition,
        PrepareAccountInput,
        PrepareAccountResult,
        RealAlert,
        RealEntriesInput,
        RealSessionConfig,
        RealSessionState,
        RealSessionStatus,
        RecordRealSessionInput,
        StartRealSessionInput,
        StopRealSessionInput,
        SyncLedgerInput,
        real_session_workflow_id,
    )
    from trading.analysis_settings import AnalysisSettings
    from trading.candle import INTERVAL_MS, Candle, candle_problem
    from trading.engine import CandleRejected, Engine
    from trading.models import Liquidity, Position, Side
    from trading.reconciliation import HEDGE_MODE_REASON, ExpectedAccount, ReportedAccount, reconcile
    from trading.settings import EngineSettings
    from trading.signals import Direction, Signal
    from workflows.real_session_orders import ExchangeActions, filled
    from workflows.session_funding import learn_funding_rates
    from workflows.session_rules import FORBIDDEN, NOT_FOUND, rejected

SHORT_TIMEOUT = timedelta(seconds=20)
ANALYSIS_TIMEOUT = timedelta(minutes=1)
BOUNDED = RetryPolicy(initial_interval=timedelta(milliseconds=300), backoff_coefficient=2.0,
                      maximum_interval=timedelta(seconds=3), maximum_attempts=3,
                      non_retryable_error_types=["NoApiKey", "NotApproved"])
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                           maximum_interval=timedelta(seconds=20), maximum_attempts=6)
MAX_ALERTS = 20
MAX_RUN_EVENTS = 2_000
HANDLER_FAILED = "HandlerFailed"
# A quiet candle's status is written through every this many candles.
RECORD_EVERY = 12


def _now_ms() -> int:
    return int(workflow.now().timestamp() * 1000)


def never_wedges[Result](handler: Callable[..., Awaitable[Result]]) -> Callable[..., Awaitable[Result]]:
    """An update handler that fails only its update: a plain exception (a bug, a state the validator
    did not foresee) would fail the workflow task again and again and wedge the session."""
    @functools.wraps(handler)
    async def guarded(self: Any, *args: Any) -> Result:
        try:
            return await handler(self, *args)
        except (FailureError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - turned into this update's failure, logged
            workflow.logger.exception("update %s failed", handler.__name__)
            raise ApplicationError(f"{handler.__name__} failed: {exc}", type=HANDLER_FAILED,
                                   non_retryable=True) from None
    return guarded


@workflow.defn
class RealSessionWorkflow:
    @workflow.init
    def __init__(self, state: RealSessionState | None) -> None:
        state = state or RealSessionState(user_id=workflow.info().workflow_id.split(":")[1])
        self._state = replace(state, queue=())
        self._engine = Engine.from_state(state.engine) if state.engine else None
        self._arrivals: deque[CandleClosed] = deque(state.queue)
        self._positions = {p.symbol: p for p in state.positions}
        self._pending = dict(state.pending_orders)
        self._anchor: dict[str, int] = {}
        self._lock = asyncio.Lock()
        self._reconcile_now = False
        self._last_alert: RealAlert | None = None
        self._start_request: StartRealSessionInput | None = None
        self._hedge_mode = False  # as the last full read found it
        self._degraded: dict[str, str] = {}  # what the model runs without (a funding rate)
        # The leverage and margin types the exchange confirmed at the start (expected from then on).
        self._prepared = PrepareAccountResult(dict(state.leverage), dict(state.margin_types))
        # Symbols acted on at the coming open: the model books that open at its next step, so until
        # then the position to compare with the exchange is the one the acting copy holds.
        self._acted: dict[str, Position | None] = {}

    # ------------------------------------------------------------------ the loop
    @workflow.run
    async def run(self, state: RealSessionState | None) -> None:
        while True:
            trading = self._state.status in TRADING_STATES
            every = self._state.config.reconcile_every_s if self._state.config else None
            try:
                await workflow.wait_condition(
                    lambda: self._continue_as_new() or self._start_request is not None
                    or (self._state.status in TRADING_STATES and (bool(self._arrivals) or self._reconcile_now)),
                    timeout=timedelta(seconds=every) if trading and every else None)
            except TimeoutError:
                self._reconcile_now = True
            if self._start_request is not None:
                request, self._start_request = self._start_request, None
                async with self._lock:
                    await self._start(request)
            if self._state.status in TRADING_STATES:
                async with self._lock:
                    if self._reconcile_now:
                        self._reconcile_now = False
                        await self._reconcile(await self._read_or_none(full=True), "periodic")
                        await self._sync_ledger(income=True)
                    while self._arrivals and self._state.status in TRADING_STATES and not self._continue_as_new():
                        await self._take(self._arrivals.popleft())
            if self._continue_as_new():
                await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._lock.locked())
                workflow.continue_as_new(self._snapshot())

    @staticmethod
    def _continue_as_new() -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or info.get_current_history_length() >= MAX_RUN_EVENTS

    def _actions(self) -> ExchangeActions:
        assert self._state.config is not None
        return ExchangeActions(self._state.user_id, self._state.config, self._state.approval_id or "unapproved",
                               self._state.order_seq, self._pending)

    def _done(self, actions: ExchangeActions) -> None:
        self._state = replace(self._state, order_seq=actions.sequence,
                              orders_sent=self._state.orders_sent + actions.sent)

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

    def _entries_open(self) -> bool:
        return self._state.status == REAL_RUNNING and self._state.entries_enabled

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
                    symbol, fill.side.value.upper(), entry.executed_qty, entry.avg_price, _now_ms(), stop, take,
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
            acted_on = symbol in planned_engine.positions if symbol in self._engine.pending_signals else None
            self._acted[symbol] = (planned_engine if acted_on is not None else self._engine).positions.get(symbol)

    async def _close(self, actions: ExchangeActions, symbol: str, why: str) -> None:
        """Close the session's position in ``symbol`` reduce-only, then cancel its protective orders."""
        assert self._engine is not None
        managed = self._positions.get(symbol)
        view = await self._read_or_none()
        held = next((p.quantity for p in view.positions if p.symbol == symbol), 0.0) if view else 0.0
        if held:
            side = "SELL" if held > 0 else "BUY"
            done = await actions.market(symbol, side, abs(held), self._engine.spec(symbol), reduce_only=True,
                                        purpose="close")
            if not filled(done):
                self._alert(ALERT_ORDER_FAILED, f"{symbol}: the close ({why}) did not fill "
                                                f"({done.status if done else 'failed'}); the position stays open")
                return
        if managed is not None:
            for order_id in (managed.stop_order, managed.take_order):
                if order_id:
                    await actions.cancel(order_id, symbol, conditional=True)
            self._positions.pop(symbol, None)

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

    async def _read_or_none(self, full: bool = False) -> ExchangeView | None:
        if self._state.config is None:
            return None
        try:
            view = await self._actions().read(full)
            if view.hedge_mode is not None:
                self._hedge_mode = view.hedge_mode
            return view
        except ActivityError as exc:
            self._alert(ALERT_RECONCILIATION, f"the exchange could not be read: {exc.cause or exc}")
            return None

    async def _sync_ledger(self, income: bool) -> None:
        config = self._state.config
        assert config is not None
        try:
            await workflow.execute_activity_method(
                RealSessionActivities.sync_ledger,
                SyncLedgerInput(self._state.user_id, config.key_id, workflow.info().workflow_id, config.symbols,
                                income),
                start_to_close_timeout=SHORT_TIMEOUT, retry_policy=BOUNDED)
        except ActivityError as exc:
            workflow.logger.warning("ledger not synced (the next candle fills the gap): %s", exc.cause or exc)

    # ------------------------------------------------------------------ reconciliation
    def _expected(self) -> ExpectedAccount:
        assert self._engine is not None
        positions: dict[str, float] = {}
        algo: dict[str, str] = {}
        for symbol, managed in self._positions.items():
            positions[symbol] = managed.quantity if managed.side == "LONG" else -managed.quantity
            for order_id in (managed.stop_order, managed.take_order):
                if order_id:
                    algo[order_id] = symbol
        return ExpectedAccount(positions=positions, open_algo_orders=algo)

    async def _reconcile(self, view: ExchangeView | None, when: str) -> None:
        """Compare the session's view with the exchange's; any difference halts entries (fail closed)."""
        if view is None or self._engine is None:
            return
        # The session answers for its own symbols; the account's others are the owner's business.
        mine = set(self._symbols())
        reported = ReportedAccount(
            positions={p.symbol: p.quantity for p in view.positions if p.symbol in mine},
            open_orders={k: v for k, v in view.open_orders.items() if v in mine},
            open_algo_orders={k: v for k, v in view.open_algo_orders.items() if v in mine},
            hedge_mode=self._hedge_mode)
        steps = {s: self._engine.spec(s).step_size for s in self._symbols()}
        report = reconcile(self._expected(), reported, steps)
        differences = [asdict(d) for d in report.differences]
        # The model must hold what the exchange holds, or the next decisions are made on a wrong account.
        for symbol in self._symbols():
            model = self._acted[symbol] if symbol in self._acted else self._engine.positions.get(symbol)
            modelled = (model.quantity if model.side is Side.LONG else -model.quantity) if model else 0.0
            actual = reported.positions.get(symbol, 0.0)
            if abs(modelled - actual) > max(steps.get(symbol, 0.0) / 2, 1e-12):
                differences.append({"kind": "model_mismatch", "symbol": symbol, "expected": modelled,
                                    "actual": actual, "detail": "the session's model of the account differs from "
                                                                "the exchange"})
        self._state = replace(self._state, report={"ok": not differences, "differences": differences,
                                                   "checked_at_ms": _now_ms(), "when": when})
        if differences and self._state.status == REAL_RUNNING:
            kind = ALERT_HEDGE_MODE if self._hedge_mode else ALERT_RECONCILIATION
            summary = "; ".join(f"{d['kind']} {d['symbol'] or ''}".strip() for d in differences[:5])
            self._alert(kind, f"the exchange differs from the session ({when}): {summary}")

    def _symbols(self) -> tuple[str, ...]:
        return self._state.config.symbols if self._state.config else ()

    def _alert(self, kind: str, message: str, halt: bool = True) -> None:
        alert = RealAlert(_now_ms(), kind, message)
        workflow.logger.warning("real session alert (%s): %s", kind, message)
        self._state = replace(self._state, alerts=(*self._state.alerts, alert)[-MAX_ALERTS:])
        if halt and self._state.status == REAL_RUNNING:
            self._state = replace(self._state, status=REAL_HALTED, halted_reason=message)
        self._last_alert = alert

    async def _record(self, event: str) -> None:
        self._state = replace(self._state, revision=self._state.revision + 1)
        alert, self._last_alert = self._last_alert, None
        try:
            await workflow.execute_activity_method(
                RealSessionActivities.record_real_session, RecordRealSessionInput(self.status(), event, alert),
                start_to_close_timeout=SHORT_TIMEOUT, retry_policy=RECORD_RETRY)
        except ActivityError as exc:
            workflow.logger.warning("real session status not written: %s", exc.cause or exc)

    # ------------------------------------------------------------------ updates
    def _check_owner(self, user_id: str) -> None:
        if user_id != self._state.user_id:
            raise rejected("no real session", kind=NOT_FOUND)

    @workflow.update
    @never_wedges
    async def configure(self, request: ConfigureRealSessionInput) -> RealSessionStatus:
        async with self._lock:
            self._check_configurable()
            config = request.config
            for symbol in config.symbols:
                await workflow.execute_activity_method(
                    MarketReadActivities.subscribe_feed,
                    FeedSubscription(config.source, symbol, config.interval, workflow.info().workflow_id,
                                     AnalysisSettings.from_dict(config.analysis_settings).to_dict()),
                    start_to_close_timeout=SHORT_TIMEOUT, retry_policy=BOUNDED)
            self._engine = Engine(EngineSettings.from_dict(config.engine_settings))
            self._state = replace(self._state, config=config, status=REAL_NEW, approval_id=None, report=None,
                                  halted_reason="")
            await self._record("configured")
            return self.status()

    @configure.validator
    def _validate_configure(self, request: ConfigureRealSessionInput) -> None:
        self._check_owner(request.user_id)
        self._check_configurable()
        try:
            EngineSettings.from_dict(request.config.engine_settings)
            AnalysisSettings.from_dict(request.config.analysis_settings)
        except (ValueError, TypeError, KeyError) as exc:
            raise rejected(f"settings: {exc}", "settings") from None
        if not request.config.symbols or request.config.interval not in INTERVAL_MS:
            raise rejected("a real session needs symbols and a known interval", "symbols")

    def _check_configurable(self) -> None:
        if self._state.status in TRADING_STATES:
            raise rejected("the real session is trading: stop it before changing what it trades", "status")
        if self._positions:
            raise rejected(f"the session still holds {', '.join(self._positions)}: flatten or adopt first", "status")

    @workflow.signal
    def approved_start(self, request: StartRealSessionInput) -> None:
        """Sent by the RED approval of the start once a person approved it (``workflows.tuning_apply``);
        the loop checks the approval again before anything trades."""
        if request.user_id == self._state.user_id:
            self._start_request = request

    async def _start(self, request: StartRealSessionInput) -> None:
        try:
            self._check_startable()
            await workflow.execute_activity_method(
                RealSessionActivities.check_approval, request, start_to_close_timeout=SHORT_TIMEOUT,
                retry_policy=BOUNDED)
        except (ApplicationError, ActivityError) as exc:
            reason = exc.cause if isinstance(exc, ActivityError) and exc.cause else exc
            self._alert(ALERT_ORDER_FAILED, f"not started: {reason}", halt=False)
            await self._record("start_refused")
            return
        view = await self._read_or_none(full=True)
        if view is None or view.wallet_balance is None:
            await self._record("start_refused")
            return
        if view.hedge_mode:
            self._alert(ALERT_HEDGE_MODE, f"not started: {HEDGE_MODE_REASON}", halt=False)
            await self._record("start_refused")
            return
        config = self._state.config
        assert config is not None and self._engine is not None
        try:
            prepared = await workflow.execute_activity_method(
                RealSessionActivities.prepare_account,
                PrepareAccountInput(self._state.user_id, config.key_id, config.symbols, self._engine.settings.leverage),
                start_to_close_timeout=SHORT_TIMEOUT, retry_policy=BOUNDED)
        except ActivityError as exc:
            self._alert(ALERT_ORDER_FAILED, f"not started: leverage and margin could not be set: {exc.cause or exc}",
                        halt=False)
            await self._record("start_refused")
            return
        self._prepared = prepared
        # The model starts from the account as it is: sizing follows the real balance.
        self._engine = Engine(replace(self._engine.settings, starting_balance=view.wallet_balance))
        self._positions.clear()
        self._state = replace(self._state, status=REAL_RUNNING, approval_id=request.approval_id,
                              entries_enabled=True, halted_reason="", last_open_time={})
        self._arrivals.clear()
        await self._reconcile(view, "start")
        await self._record("started")

    def _check_startable(self) -> None:
        if self._state.config is None:
            raise rejected("configure the real session first", "status")
        if self._state.status in TRADING_STATES:
            raise rejected(f"the real session is {self._state.status.lower()} already", "status")
        if self._positions:
            raise rejected(f"the session still holds {', '.join(self._positions)}: flatten first", "status")

    @workflow.update
    @never_wedges
    async def stop(self, request: StopRealSessionInput) -> RealSessionStatus:
        """Always allowed (reducing risk is never blocked): entries end at once; with ``flatten``, every
        position of the session's symbols is closed and its protective orders cancelled."""
        self._state = replace(self._state, status=REAL_STOPPED if self._state.status != REAL_NEW else REAL_NEW,
                              entries_enabled=False)
        if self._engine is not None:
            self._engine.entries_enabled = False
            self._engine.pending_signals.clear()
        if request.flatten and self._state.config is not None:
            async with self._lock:
                await self._flatten()
        await self._record("stopped" if not request.flatten else "stopped_and_flattened")
        return self.status()

    @stop.validator
    def _validate_stop(self, request: StopRealSessionInput) -> None:
        self._check_owner(request.user_id)

    async def _flatten(self) -> None:
        view = await self._read_or_none()
        actions = self._actions()
        try:
            symbols = {p.symbol for p in view.positions} if view else set()
            for symbol in sorted((symbols & set(self._symbols())) | set(self._positions)):
                await self._close(actions, symbol, "stop and flatten")
        finally:
            self._done(actions)
        if view is not None and self._engine is not None:
            for symbol, position in list(self._engine.positions.items()):
                price = view.prices.get(symbol) or self._engine.last_close.get(symbol)
                if price:
                    self._engine.close_trade(position.trade_id, price, max(self._engine.now, view.read_at_ms))
        self._acted.clear()
        await self._sync_ledger(income=True)

    @workflow.update
    @never_wedges
    async def set_entries(self, request: RealEntriesInput) -> RealSessionStatus:
        if not request.enabled:
            self._state = replace(self._state, entries_enabled=False)
        else:
            self._state = replace(self._state, entries_enabled=True, status=REAL_RUNNING, halted_reason="")
        await self._record("entries_on" if request.enabled else "entries_off")
        return self.status()

    @set_entries.validator
    def _validate_set_entries(self, request: RealEntriesInput) -> None:
        self._check_owner(request.user_id)
        if not request.enabled:
            return  # stopping entries lowers risk: any channel of the owner may
        if not request.human:
            raise rejected("only a person resumes a real session's entries", kind=FORBIDDEN)
        if self._state.status not in TRADING_STATES:
            raise rejected(f"the real session is {self._state.status.lower()}: start it through an approval",
                           "status")
        report = self._state.report
        if report is not None and not report["ok"]:
            raise rejected("the last reconciliation found differences: adopt the exchange's positions or "
                           "flatten first", "status")

    @workflow.update
    @never_wedges
    async def adopt(self, request: AdoptInput) -> RealSessionStatus:
        """Take the exchange's positions in the session's symbols as the session's (the model too, at
        their entry prices); orders Durabot did not place stay the owner's to cancel."""
        async with self._lock:
            view = await self._read_or_none()
            if view is None:
                raise rejected("the exchange could not be read: nothing adopted", "status")
            assert self._engine is not None
            for position in view.positions:
                if position.symbol not in self._symbols():
                    continue
                side = "LONG" if position.quantity > 0 else "SHORT"
                known = self._positions.get(position.symbol)
                algo = {k for k, v in view.open_algo_orders.items() if v == position.symbol}
                self._positions[position.symbol] = ManagedPosition(
                    position.symbol, side, abs(position.quantity), position.entry_price, _now_ms(),
                    stop_order=known.stop_order if known and known.stop_order in algo else None,
                    take_order=known.take_order if known and known.take_order in algo else None, adopted=True)
            for symbol in [s for s in self._positions if s not in {p.symbol for p in view.positions}]:
                self._positions.pop(symbol)
            adopt_into(self._engine, {p.symbol: (p.quantity, p.entry_price) for p in view.positions
                                      if p.symbol in self._symbols()})
            await self._protect_adopted()
            view = await self._read_or_none() or view
            await self._reconcile(view, "adopt")
            await self._record("adopted")
            return self.status()

    async def _protect_adopted(self) -> None:
        """An adopted position without protective orders gets the model's stop and take profit (from its
        entry price); one the exchange refuses (the price is past it) is an alert, and entries stay off."""
        assert self._engine is not None
        actions = self._actions()
        try:
            for symbol, managed in list(self._positions.items()):
                model = self._engine.positions.get(symbol)
                if managed.stop_order or managed.take_order or model is None:
                    continue
                stop_id, take_id = await actions.protect(symbol, managed.side, model.stop_loss, model.take_profit,
                                                         self._engine.spec(symbol))
                self._positions[symbol] = replace(managed, stop_loss=model.stop_loss, take_profit=model.take_profit,
                                                  stop_order=stop_id, take_order=take_id)
                wanted = tuple(i for i in (stop_id, take_id) if i)
                if wanted and not await actions.protected(symbol, wanted):
                    self._alert(ALERT_UNPROTECTED, f"{symbol}: adopted, but its stop or take profit is not on the "
                                                   "exchange: close it or set them by hand")
        finally:
            self._done(actions)

    @adopt.validator
    def _validate_adopt(self, request: AdoptInput) -> None:
        self._check_owner(request.user_id)
        if not request.human:
            raise rejected("only a person adopts positions into a real session", kind=FORBIDDEN)
        if self._state.config is None:
            raise rejected("configure the real session first", "status")

    @workflow.update
    @never_wedges
    async def reconcile_now(self, user_id: str) -> RealSessionStatus:
        if user_id != self._state.user_id:
            raise ApplicationError("no real session", type=NOT_FOUND, non_retryable=True)
        async with self._lock:
            await self._reconcile(await self._read_or_none(full=True), "on request")
            await self._sync_ledger(income=True)
            await self._record("reconciled")
        return self.status()

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

    @workflow.query
    def status(self) -> RealSessionStatus:
        config = self._state.config
        return RealSessionStatus(
            workflow_id=real_session_workflow_id(self._state.user_id), user_id=self._state.user_id,
            status=self._state.status, entries_enabled=self._entries_open(), halted_reason=self._state.halted_reason,
            symbols=config.symbols if config else (), interval=config.interval if config else "",
            key_id=config.key_id if config else None, approval_id=self._state.approval_id,
            positions=tuple(self._positions.values()), pending_orders=dict(self._pending), alerts=self._state.alerts,
            report=self._state.report, market_time=self._engine.now if self._engine else 0,
            last_open_time=dict(self._state.last_open_time), candles_processed=self._state.candles_processed,
            orders_sent=self._state.orders_sent, queued=len(self._arrivals),
            model_equity=self._engine.equity() if self._engine else 0.0, revision=self._state.revision,
            leverage=dict(self._prepared.leverage), margin_types=dict(self._prepared.margin_types))

    def _snapshot(self) -> RealSessionState:
        return replace(self._state, engine=self._engine.to_state() if self._engine else None,
                       positions=tuple(self._positions.values()), pending_orders=dict(self._pending),
                       queue=tuple(self._arrivals), leverage=dict(self._prepared.leverage),
                       margin_types=dict(self._prepared.margin_types))


def adopt_into(engine: Engine, held: dict[str, tuple[float, float]]) -> None:
    """Make the model hold what the exchange holds: ``held`` is symbol -> (signed quantity, entry
    price). A model position that differs is closed at its entry price; a missing one is booked at
    the exchange's entry price (with its fee, as the exchange charged one)."""
    for position in list(engine.positions.values()):
        signed = position.quantity if position.side is Side.LONG else -position.quantity
        wanted = held.get(position.symbol)
        if wanted is None or abs(wanted[0] - signed) > 1e-12:
            engine.close_trade(position.trade_id, position.entry_price, engine.now)
    for symbol, (quantity, entry) in held.items():
        if symbol in engine.positions or not quantity:
            continue
        plan, _, why = engine.plan_entry(symbol, Side.LONG if quantity > 0 else Side.SHORT, entry, engine.now,
                                         quantity=abs(quantity))
        if plan is None:
            workflow.logger.warning("%s not adopted into the model: %s", symbol, why)
            continue
        engine.book_entry(plan, None, Liquidity.TAKER, [])
        # Marked at its entry until the next candle (equity needs a price for every open position).
        engine.last_close.setdefault(symbol, entry)
