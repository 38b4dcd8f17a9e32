"""State and shared machinery of RealSessionWorkflow: the fields it carries across continue-as-new,
reading the exchange, closing a position, reconciliation, alerts, the status written through and the
status query. The update handlers live in ``real_session_control``, the candle loop in ``real_session``;
Temporal registers handlers from every base class of the workflow class.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import asdict, replace
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.real_session import RealSessionActivities
    from core.contracts import CandleClosed
    from core.real_session_contracts import (
        ALERT_HEDGE_MODE,
        ALERT_ORDER_FAILED,
        ALERT_RECONCILIATION,
        ALERT_USER_STREAM,
        HINT_CONNECTED,
        REAL_HALTED,
        REAL_RUNNING,
        SIGNAL_LEDGER_HINT,
        TRADING_STATES,
        ExchangeView,
        FollowUserStreamInput,
        LedgerHint,
        PrepareAccountResult,
        RealAlert,
        RealSessionState,
        RealSessionStatus,
        RecordRealSessionInput,
        StartRealSessionInput,
        SyncLedgerInput,
        real_session_workflow_id,
    )
    from trading.engine import Engine
    from trading.models import Position, Side
    from trading.reconciliation import ExpectedAccount, ReportedAccount, reconcile
    from workflows.real_session_orders import ExchangeActions, filled
    from workflows.session_rules import NOT_FOUND, rejected

SHORT_TIMEOUT = timedelta(seconds=20)
ANALYSIS_TIMEOUT = timedelta(minutes=1)
BOUNDED = RetryPolicy(initial_interval=timedelta(milliseconds=300), backoff_coefficient=2.0,
                      maximum_interval=timedelta(seconds=3), maximum_attempts=3,
                      non_retryable_error_types=["NoApiKey", "NotApproved"])
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                           maximum_interval=timedelta(seconds=20), maximum_attempts=6)
MAX_ALERTS = 20
HANDLER_FAILED = "HandlerFailed"
# The user-data stream activity runs until cancelled; its heartbeats tell a dead worker apart.
USER_STREAM_PATCH = "user-data-stream-hints"
USER_STREAM_HEARTBEAT = timedelta(seconds=30)
USER_STREAM_RUN = timedelta(days=1)
USER_STREAM_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                                maximum_interval=timedelta(seconds=30), non_retryable_error_types=["NoApiKey"])


def now_ms() -> int:
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




def signed_quantity(position: Position | None) -> float:
    """A position's quantity, negative when short (0 without one), as the exchange reports it."""
    if position is None:
        return 0.0
    return position.quantity if position.side is Side.LONG else -position.quantity


class RealSessionBase:
    def __init__(self, state: RealSessionState | None) -> None:
        state = state or RealSessionState(user_id=workflow.info().workflow_id.split(":")[1])
        self._state = replace(state, queue=())
        self._engine = Engine.from_state(state.engine) if state.engine else None
        self._arrivals: deque[CandleClosed] = deque(state.queue)
        self._positions = {p.symbol: p for p in state.positions}
        self._pending = dict(state.pending_orders)
        self._anchor: dict[str, int] = dict(state.analysis_anchor)
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
        self._acted: dict[str, float] = dict(state.acted)  # symbol -> signed quantity
        # The user-data stream (an activity that hints; see follow_user_stream) and what it hinted.
        self._stream: workflow.ActivityHandle[None] | None = None
        # Leverage and margin types the last full read found changed since the start (they stand until the
        # next full read: the per-candle read does not look at them).
        self._config_differences: list[dict[str, Any]] = []
        self._stream_failed = False
        self._stream_cancelled = False
        self._ledger_behind = False
        self._last_hint_ms = 0

    def _actions(self) -> ExchangeActions:
        assert self._state.config is not None
        return ExchangeActions(self._state.user_id, self._state.config, self._state.approval_id or "unapproved",
                               self._state.order_seq, self._pending)

    def _done(self, actions: ExchangeActions) -> None:
        self._state = replace(self._state, order_seq=actions.sequence,
                              orders_sent=self._state.orders_sent + actions.sent)

    def _entries_open(self) -> bool:
        return self._state.status == REAL_RUNNING and self._state.entries_enabled
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

    # ------------------------------------------------------------------ the user-data stream
    def _follow_user_stream(self) -> None:
        """While trading, the key's user-data stream runs beside the session as one long activity that
        hints (``ledger_hint``); a stream ended by a failure is not restarted by the session (its
        activity already retried what can be retried): the periodic pass still books everything."""
        config = self._state.config
        if self._stream is not None and self._stream.done():
            failure = None if self._stream.cancelled() else self._stream.exception()
            if failure is not None and not self._stream_cancelled:
                self._stream_failed = True
                reason = getattr(failure, "cause", None) or failure
                self._alert(ALERT_USER_STREAM, f"the user-data stream stopped ({reason}); fills and income are "
                                               "booked on the periodic pass", halt=False)
            self._stream, self._stream_cancelled = None, False
        if config is None or self._state.status not in TRADING_STATES or self._stream is not None \
                or self._stream_failed or not workflow.patched(USER_STREAM_PATCH):
            return
        self._stream = workflow.start_activity_method(
            RealSessionActivities.follow_user_stream,
            FollowUserStreamInput(self._state.user_id, config.key_id, workflow.info().workflow_id),
            start_to_close_timeout=USER_STREAM_RUN, heartbeat_timeout=USER_STREAM_HEARTBEAT,
            retry_policy=USER_STREAM_RETRY, cancellation_type=ActivityCancellationType.TRY_CANCEL)

    def _stop_user_stream(self) -> None:
        if self._stream is not None and not self._stream.done():
            self._stream.cancel()
            self._stream_cancelled = True

    @workflow.signal(name=SIGNAL_LEDGER_HINT)
    def ledger_hint(self, hint: LedgerHint) -> None:
        """The exchange moved the account (or the stream reconnected): book from REST soon."""
        if hint.reason == HINT_CONNECTED:
            self._state = replace(self._state, stream_connections=self._state.stream_connections + 1)
        self._last_hint_ms = now_ms()
        self._ledger_behind = True

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
            modelled = self._acted.get(symbol, signed_quantity(self._engine.positions.get(symbol)))
            actual = reported.positions.get(symbol, 0.0)
            if abs(modelled - actual) > max(steps.get(symbol, 0.0) / 2, 1e-12):
                differences.append({"kind": "model_mismatch", "symbol": symbol, "expected": modelled,
                                    "actual": actual, "detail": "the session's model of the account differs from "
                                                                "the exchange"})
        if view.leverage or view.margin_types:
            self._config_differences = self._changed_config(view)
        differences.extend(self._config_differences)
        self._state = replace(self._state, report={"ok": not differences, "differences": differences,
                                                   "checked_at_ms": now_ms(), "when": when})
        if differences and self._state.status == REAL_RUNNING:
            kind = ALERT_HEDGE_MODE if self._hedge_mode else ALERT_RECONCILIATION
            summary = "; ".join(f"{d['kind']} {d['symbol'] or ''}".strip() for d in differences[:5])
            self._alert(kind, f"the exchange differs from the session ({when}): {summary}")

    def _changed_config(self, view: ExchangeView) -> list[dict[str, Any]]:
        """The leverage and margin types the start set and the exchange confirmed, changed since: the model
        sizes and liquidates at those (only the owner changes them back, or stops and starts again)."""
        changed: list[dict[str, Any]] = []
        for kind, wanted, actual in (("leverage", self._prepared.leverage, view.leverage),
                                     ("margin_type", self._prepared.margin_types, view.margin_types)):
            for symbol, expected in sorted(wanted.items()):
                if symbol in actual and actual[symbol] != expected:
                    changed.append({"kind": kind, "symbol": symbol, "expected": expected, "actual": actual[symbol],
                                    "detail": f"the symbol's {kind.replace('_', ' ')} changed on the exchange since "
                                              "the start"})
        return changed

    def _symbols(self) -> tuple[str, ...]:
        return self._state.config.symbols if self._state.config else ()

    def _alert(self, kind: str, message: str, halt: bool = True) -> None:
        alert = RealAlert(now_ms(), kind, message)
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
            leverage=dict(self._prepared.leverage), margin_types=dict(self._prepared.margin_types),
            stream_connections=self._state.stream_connections, last_hint_ms=self._last_hint_ms)

    def _snapshot(self) -> RealSessionState:
        return replace(self._state, engine=self._engine.to_state() if self._engine else None,
                       positions=tuple(self._positions.values()), pending_orders=dict(self._pending),
                       queue=tuple(self._arrivals), leverage=dict(self._prepared.leverage),
                       margin_types=dict(self._prepared.margin_types), analysis_anchor=dict(self._anchor),
                       acted=dict(self._acted))

