"""How a real session acts on the exchange: every order is its own ``OrderWorkflow`` (a child the
session abandons on close, so it survives the session's continue-as-new), sent with a client order
ID derived from the approval that started the session and a counter, so no retry, replay or restart
can place it twice. Entries wait for their fill; protective orders are started at once and confirmed
by reading the exchange's open algo orders; closes are reduce-only MARKET orders.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ChildWorkflowError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.real_orders import OrderActivities
    from activities.real_session import RealSessionActivities
    from core.order_contracts import (
        FILLED,
        FINAL_STATES,
        LookupOrderInput,
        OrderInput,
        OrderTerms,
        OrderView,
        client_order_id,
        order_workflow_id,
    )
    from core.real_session_contracts import ExchangeView, ReadExchangeInput, RealSessionConfig
    from trading.models import SymbolSpec
    from workflows.order import OrderWorkflow

READ_TIMEOUT = timedelta(seconds=20)
READ_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=500), backoff_coefficient=2.0,
                         maximum_interval=timedelta(seconds=5), maximum_attempts=4,
                         non_retryable_error_types=["NoApiKey"])
# How often a fresh position's protective orders are looked for on the exchange.
PROTECTION_POLL = timedelta(milliseconds=250)
PATCH_PROTECTION_AS_READ = "protection-judged-by-when-it-was-read"


def decimal_text(value: float, step: float) -> str:
    """``value`` as the decimal string the exchange takes, on the grid of ``step`` (no exponent)."""
    if step <= 0:
        return f"{value:.8f}".rstrip("0").rstrip(".") or "0"
    decimals = max(0, len(f"{step:.10f}".rstrip("0").split(".")[1]) if "." in f"{step:.10f}".rstrip("0") else 0)
    return f"{round(round(value / step) * step, decimals):.{decimals}f}"


class ExchangeActions:
    """The orders of one real session. ``seed`` names the session's generation (its approval)."""

    def __init__(self, user_id: str, config: RealSessionConfig, seed: str, sequence: int,
                 pending: dict[str, str]) -> None:
        self.pending = pending  # orders sent and not final yet: client order ID -> symbol
        self.user_id = user_id
        self.config = config
        self.seed = seed
        self.sequence = sequence
        self.sent = 0

    def _next_id(self, purpose: str) -> str:
        self.sequence += 1
        return client_order_id("s", f"{self.user_id}:{self.seed}:{self.sequence}:{purpose}")

    async def read(self, full: bool = False) -> ExchangeView:
        return await workflow.execute_activity_method(
            RealSessionActivities.read_exchange,
            ReadExchangeInput(self.user_id, self.config.key_id, self.config.symbols, full),
            start_to_close_timeout=READ_TIMEOUT, retry_policy=READ_RETRY)

    async def _start(self, terms: OrderTerms, purpose: str) -> tuple[str, workflow.ChildWorkflowHandle]:
        order_id = self._next_id(purpose)
        request = OrderInput(
            user_id=self.user_id, order_id=order_id, key_id=self.config.key_id, terms=terms, origin="session",
            source=workflow.info().workflow_id, created_at_ms=int(workflow.now().timestamp() * 1000),
            needs_confirmation=False, timing=self.config.timing)
        handle = await workflow.start_child_workflow(
            OrderWorkflow.run, request, id=order_workflow_id(self.user_id, order_id),
            task_queue=workflow.info().task_queue, parent_close_policy=ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        self.sent += 1
        return order_id, handle

    async def market(self, symbol: str, side: str, quantity: float, spec: SymbolSpec, *, reduce_only: bool,
                     purpose: str) -> OrderView | None:
        """Send a MARKET order and wait for its end; None if its workflow failed (counted as unknown)."""
        terms = OrderTerms(market="futures", symbol=symbol, side=side, order_type="MARKET",
                           quantity=decimal_text(quantity, spec.step_size), reduce_only=reduce_only)
        order_id, handle = await self._start(terms, purpose)
        self.pending[order_id] = symbol
        try:
            view: OrderView = await handle
        except ChildWorkflowError as exc:
            workflow.logger.warning("order %s failed: %s", order_id, exc.cause or exc)
            return None
        self.pending.pop(order_id, None)
        return view

    async def protect(self, symbol: str, side: str, stop: float | None, take: float | None,
                      spec: SymbolSpec) -> tuple[str | None, str | None]:
        """Start a close-position stop and take profit for a ``side`` (LONG/SHORT) position; their IDs."""
        closing = "SELL" if side == "LONG" else "BUY"
        ids: list[str | None] = []
        for price, kind in ((stop, "STOP_MARKET"), (take, "TAKE_PROFIT_MARKET")):
            if price is None:
                ids.append(None)
                continue
            terms = OrderTerms(market="futures", symbol=symbol, side=closing, order_type=kind, quantity="0",
                               trigger_price=decimal_text(price, spec.tick_size), close_position=True)
            order_id, _ = await self._start(terms, kind.lower())
            ids.append(order_id)
        return ids[0], ids[1]

    async def protected(self, symbol: str, wanted: tuple[str, ...]) -> bool:
        """Whether every order of ``wanted`` is open on the exchange within the confirmation limit."""
        deadline = workflow.now() + timedelta(seconds=self.config.protection_confirm_s)
        while True:
            asked = workflow.now()
            try:
                view = await self.read()
            except ActivityError:
                view = None
            if view is not None and all(view.open_algo_orders.get(w) == symbol for w in wanted):
                return True
            # A read asked inside the limit but handled after it (a slow reply, a worker restarted in
            # between) is no proof the orders are missing: one more read decides.
            judged = asked if workflow.patched(PATCH_PROTECTION_AS_READ) else workflow.now()
            if judged >= deadline:
                return False
            await workflow.sleep(PROTECTION_POLL)

    async def cancel(self, order_id: str, symbol: str, conditional: bool) -> None:
        """Cancel an order on the exchange (a final one answers as it is) and tell its workflow to look."""
        try:
            await workflow.execute_activity_method(
                OrderActivities.cancel_exchange_order,
                LookupOrderInput(self.user_id, self.config.key_id, order_id, "futures", symbol, conditional),
                start_to_close_timeout=READ_TIMEOUT, retry_policy=READ_RETRY)
        except ActivityError as exc:
            workflow.logger.warning("cancel of %s failed: %s", order_id, exc.cause or exc)
        try:
            await workflow.get_external_workflow_handle(order_workflow_id(self.user_id, order_id)).signal(
                OrderWorkflow.exchange_event)
        except Exception as exc:  # noqa: BLE001 - a finished order workflow takes no signal; nothing to tell
            workflow.logger.info("order %s not told: %s", order_id, exc)


def filled(view: OrderView | None) -> bool:
    return view is not None and view.status == FILLED and view.executed_qty > 0


def ended(view: OrderView | None) -> bool:
    return view is not None and view.status in FINAL_STATES
