"""OrderWorkflow ``order:{user}:{client_order_id}``: one real order, from its request to its end.

AWAITING_CONFIRMATION (manual orders that open or add risk) → SUBMITTING → OPEN / PARTIALLY_FILLED →
FILLED | CANCELED | REJECTED | EXPIRED, with UNKNOWN while the outcome of the one send is not known
and NOT_PLACED when the exchange still denies the order after the protection window.

The order is sent once. An outcome that may hide an accepted order (a timeout, a 5xx "unknown", a
worker killed mid-call) is resolved by looking the order up by its client order ID, never by
sending it again; only replies that prove it was not accepted (throttling, rate limits, an
unreachable host) are sent again, a bounded number of times. The confirmation is an update whose
validator refuses, before anything is written, another user, an agent, a wrong or reused secret, a
confirmation of other terms, or one past its time.
"""

from __future__ import annotations

import hmac
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.real_orders import OrderActivities
    from core.contracts import SA_MODE, SA_STATE, SA_SYMBOLS, SA_USER
    from core.order_contracts import (
        ACCEPTED,
        AWAITING_CONFIRMATION,
        CANCELED,
        CONFIRM_CHANNELS,
        EXCHANGE_STATES,
        EXPIRED,
        FINAL_STATES,
        LIVE_STATES,
        NO_API_KEY,
        NOT_ACCEPTED,
        NOT_PLACED,
        REJECTED,
        SUBMITTING,
        UNKNOWN,
        CancelOnExchangeResult,
        CancelOrderRequest,
        ConfirmOrderInput,
        ExchangeOrder,
        IssueConfirmTokenInput,
        LookupOrderInput,
        LookupOrderResult,
        OrderInput,
        OrderTransition,
        OrderView,
        RecordOrderInput,
        SubmitOrderInput,
        SubmitOrderResult,
        terms_digest,
    )
    from workflows.session_rules import FORBIDDEN, NOT_FOUND, rejected

# Lookups and cancels are safe to repeat; a few quick attempts, then the workflow's own loop waits
# (so a cancel request is still heard while the exchange is away).
READ_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                         maximum_interval=timedelta(seconds=5), maximum_attempts=3,
                         non_retryable_error_types=[NO_API_KEY])
SEND_ONCE = RetryPolicy(maximum_attempts=1)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0,
                           maximum_interval=timedelta(seconds=30), maximum_attempts=10)
MAX_HISTORY = 50
PATCH_RECORD_FINAL = "order-records-its-final-state"
PATCH_DENIAL_AS_ASKED = "order-not-placed-by-when-the-lookup-was-asked"


def _now_ms() -> int:
    return int(workflow.now().timestamp() * 1000)


@workflow.defn
class OrderWorkflow:
    @workflow.init
    def __init__(self, request: OrderInput) -> None:
        self._input = request
        self._tokens: dict[str, str] = dict(request.confirm_token_hmacs)
        self._cancel: CancelOrderRequest | None = None
        self._exchange_event = False
        self._recorded = -1
        if request.resume is not None:
            self._view = request.resume
        else:
            first = AWAITING_CONFIRMATION if request.needs_confirmation else SUBMITTING
            self._view = OrderView(
                order_id=request.order_id, user_id=request.user_id, status=first, terms=request.terms,
                terms_digest=terms_digest(request.terms), origin=request.origin, source=request.source,
                created_at_ms=request.created_at_ms, summary=request.summary,
                confirm_by_ms=(request.created_at_ms + int(request.timing.confirm_expiry_s * 1000)
                               if request.needs_confirmation else None),
                updated_at_ms=request.created_at_ms, history=(OrderTransition(first, request.created_at_ms),),
                replaces=request.replaces)

    @workflow.run
    async def run(self, request: OrderInput) -> OrderView:
        self._search_attributes()
        await self._record("requested" if request.resume is None else "resumed")
        if self._view.status == AWAITING_CONFIRMATION:
            await self._await_confirmation()
        if self._view.status == SUBMITTING:
            await self._submit()
        while self._view.status not in FINAL_STATES:
            if self._view.replaces and not self._view.replaced and self._view.status in LIVE_STATES:
                await self._cancel_replaced()
            elif self._view.status == UNKNOWN:
                await self._resolve_unknown()
            else:
                await self._follow()
            if workflow.info().is_continue_as_new_suggested() and self._view.status not in FINAL_STATES:
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(replace(request, confirm_token_hmacs={}, resume=self._view))
        await workflow.wait_condition(workflow.all_handlers_finished)
        if workflow.patched(PATCH_RECORD_FINAL):
            # A cancel that lands while the first status write is out ends the order before any step
            # writes again: the final state is written here (a no-op when it was written already).
            await self._record(self._view.status.lower())
        return self._view

    # ------------------------------------------------------------------ state
    def _set(self, status: str, note: str = "", order: ExchangeOrder | None = None, **changes: object) -> None:
        now = _now_ms()
        view = self._view
        if order is not None:
            changes.update(exchange_order_id=order.exchange_order_id, executed_qty=order.executed_qty,
                           avg_price=order.avg_price)
        if status != view.status:
            history = (*view.history, OrderTransition(status, now, note))[-MAX_HISTORY:]
            changes["history"] = history
        if note:
            changes["reason"] = note
        self._view = replace(view, status=status, updated_at_ms=now, revision=view.revision + 1, **changes)  # type: ignore[arg-type]
        if status != view.status:
            self._search_attributes()

    def _search_attributes(self) -> None:
        workflow.upsert_search_attributes([SA_USER.value_set(self._view.user_id), SA_MODE.value_set("real"),
                                           SA_STATE.value_set(self._view.status),
                                           SA_SYMBOLS.value_set([self._view.terms.symbol])])

    async def _record(self, event: str) -> None:
        if self._view.revision == self._recorded:
            return
        self._recorded = self._view.revision
        try:
            await workflow.execute_activity_method(
                OrderActivities.record_order, RecordOrderInput(self._view, event),
                start_to_close_timeout=timedelta(seconds=15), retry_policy=RECORD_RETRY)
        except ActivityError as exc:
            workflow.logger.warning("order %s: status %s not written: %s", self._view.order_id, self._view.status,
                                    exc.cause or exc)

    def _apply(self, order: ExchangeOrder, note: str = "") -> None:
        status = EXCHANGE_STATES.get(order.status)
        if status is None:
            workflow.logger.warning("order %s: unknown exchange status %s", self._view.order_id, order.status)
            return
        view = self._view
        if (status, order.exchange_order_id, order.executed_qty, order.avg_price) == (
                view.status, view.exchange_order_id, view.executed_qty, view.avg_price):
            return  # nothing moved: no new revision, no write
        self._set(status, note, order)

    # ------------------------------------------------------------------ confirmation
    async def _await_confirmation(self) -> None:
        confirm_by = self._view.confirm_by_ms or _now_ms()
        try:
            await workflow.wait_condition(lambda: self._view.status != AWAITING_CONFIRMATION,
                                          timeout=timedelta(milliseconds=max(1, confirm_by - _now_ms())))
        except TimeoutError:
            if self._view.status == AWAITING_CONFIRMATION:  # a confirmation that came with the timer wins
                self._set(EXPIRED, "not confirmed in time: nothing was sent")
        self._tokens.clear()  # one-time: whatever happened, no secret confirms twice
        await self._record(self._view.status.lower())

    @workflow.update
    async def confirm(self, request: ConfirmOrderInput) -> OrderView:
        self._tokens.clear()
        self._set(SUBMITTING, confirmed_by=request.channel)
        await workflow.wait_condition(lambda: self._view.status != SUBMITTING)
        return self._view

    @confirm.validator
    def _validate_confirm(self, request: ConfirmOrderInput) -> None:
        self._check_owner(request.user_id)
        if not request.human:
            raise rejected("only a person in a human session confirms a real order; an agent may request one, "
                           "never confirm it", kind=FORBIDDEN)
        if self._view.status != AWAITING_CONFIRMATION:
            raise rejected(f"order {self._view.order_id} is {self._view.status.lower()}: there is nothing to confirm")
        if self._view.confirm_by_ms is not None and _now_ms() >= self._view.confirm_by_ms:
            raise rejected(f"the confirmation of order {self._view.order_id} expired")
        if request.terms_digest != self._view.terms_digest:
            raise rejected("the order you confirm is not the order requested (its terms differ): request it again",
                           "terms_digest")
        expected = self._tokens.get(request.channel)
        if expected is None:
            raise rejected(f"no confirmation secret was issued for {request.channel}", "token")
        if not hmac.compare_digest(expected, request.token_hmac):
            raise rejected("the confirmation secret does not match (a newer one may have replaced it)", "token")

    @workflow.update
    def issue_confirm_token(self, request: IssueConfirmTokenInput) -> OrderView:
        self._tokens[request.channel] = request.token_hmac
        return self._view

    @issue_confirm_token.validator
    def _validate_issue_token(self, request: IssueConfirmTokenInput) -> None:
        self._check_owner(request.user_id)
        if not request.human:
            raise rejected("confirmation secrets are shown only to a person in a human session", kind=FORBIDDEN)
        if request.channel not in CONFIRM_CHANNELS:
            raise rejected(f"no confirmation secrets for channel {request.channel}", "channel")
        if self._view.status != AWAITING_CONFIRMATION:
            raise rejected(f"order {self._view.order_id} is {self._view.status.lower()}: there is nothing to confirm")

    def _check_owner(self, user_id: str) -> None:
        if user_id != self._view.user_id:
            raise rejected(f"no order {self._view.order_id}", kind=NOT_FOUND)

    # ------------------------------------------------------------------ submission
    def _lookup_input(self) -> LookupOrderInput:
        request = self._input
        return LookupOrderInput(request.user_id, request.key_id, request.order_id, request.terms.market,
                                request.terms.symbol, request.terms.conditional)

    async def _submit(self) -> None:
        timing = self._input.timing
        refused = 0
        while True:
            try:
                result: SubmitOrderResult = await workflow.execute_activity_method(
                    OrderActivities.submit_order,
                    SubmitOrderInput(self._input.user_id, self._input.key_id, self._input.order_id, self._input.terms),
                    start_to_close_timeout=timedelta(seconds=timing.submit_timeout_s), retry_policy=SEND_ONCE)
            except ActivityError as exc:
                cause = exc.cause
                if isinstance(cause, ApplicationError) and cause.type == NO_API_KEY:
                    self._set(REJECTED, f"not sent: {cause.message}")
                else:  # a timeout or a worker lost mid-call: the send may have reached the exchange
                    self._set(UNKNOWN, f"submission outcome unknown ({cause or exc}); looking the order up")
                break
            if result.outcome == ACCEPTED and result.order is not None:
                self._apply(result.order)
                break
            if result.outcome != NOT_ACCEPTED:
                self._set(UNKNOWN, f"submission outcome unknown ({result.message}); looking the order up")
                break
            if not result.retryable or refused >= timing.not_accepted_retries or self._cancel is not None:
                self._set(REJECTED, f"refused by the exchange: {result.message}")
                break
            refused += 1
            await workflow.sleep(timedelta(seconds=max(result.retry_after_s, 2.0 ** refused)))
        await self._record("submitted")

    async def _read(self) -> ExchangeOrder | None | bool:
        """The order as the exchange has it, None if it says there is none, False if it did not answer."""
        try:
            found: LookupOrderResult = await workflow.execute_activity_method(
                OrderActivities.lookup_order, self._lookup_input(),
                start_to_close_timeout=timedelta(seconds=self._input.timing.lookup_timeout_s), retry_policy=READ_RETRY)
        except ActivityError as exc:
            workflow.logger.warning("order %s: lookup failed: %s", self._view.order_id, exc.cause or exc)
            return False
        return found.order

    async def _resolve_unknown(self) -> None:
        """One look for the order: shown, it takes the exchange's state; denied by a lookup asked past
        the protection window (counted from entering UNKNOWN), it is NOT_PLACED; otherwise look again
        shortly."""
        since = next((t.at_ms for t in reversed(self._view.history) if t.status == UNKNOWN), _now_ms())
        window_ends = since + int(self._input.timing.protection_window_s * 1000)
        asked_ms = _now_ms()
        found = await self._read()
        if isinstance(found, ExchangeOrder):
            self._apply(found, "found by its client order ID")
        elif found is None and self._denied_at(asked_ms) >= window_ends:
            self._set(NOT_PLACED, "the exchange has no such order after the protection window; it counts as "
                                  "exposure until the next reconciliation")
        else:
            poll = self._input.timing.poll_interval_s
            await workflow.sleep(timedelta(seconds=min(1.0, poll) if found is None else poll))
        await self._record("resolved" if self._view.status != UNKNOWN else "unknown")

    def _denied_at(self, asked_ms: int) -> int:
        """When the exchange's "no such order" held: no later than when the lookup was asked. The time
        the answer is handled can be seconds later (a slow reply, a worker restarted in between), and
        an answer from inside the window must never end the order."""
        return asked_ms if workflow.patched(PATCH_DENIAL_AS_ASKED) else _now_ms()

    # ------------------------------------------------------------------ following an open order
    async def _follow(self) -> None:
        if self._cancel is not None and self._view.status in LIVE_STATES:
            await self._cancel_on_exchange()
        else:
            try:
                await workflow.wait_condition(lambda: self._exchange_event or self._cancel is not None,
                                              timeout=timedelta(seconds=self._input.timing.poll_interval_s))
            except TimeoutError:
                pass
            self._exchange_event = False
            if self._cancel is not None:
                return
            found = await self._read()
            if isinstance(found, ExchangeOrder):
                self._apply(found)
        await self._record(self._view.status.lower())

    async def _cancel_replaced(self) -> None:
        """This order is on the exchange: cancel the one it replaces (its own workflow reads it back)."""
        replaced = replace(self._lookup_input(), order_id=self._view.replaces or "")
        try:
            done: CancelOnExchangeResult = await workflow.execute_activity_method(
                OrderActivities.cancel_exchange_order, replaced,
                start_to_close_timeout=timedelta(seconds=self._input.timing.lookup_timeout_s), retry_policy=READ_RETRY)
        except ActivityError as exc:
            workflow.logger.warning("order %s: cancelling the replaced %s failed, trying again: %s",
                                    self._view.order_id, self._view.replaces, exc.cause or exc)
            await workflow.sleep(timedelta(seconds=self._input.timing.poll_interval_s))
            return
        state = done.order.status if done.order is not None else "gone"
        self._set(self._view.status, f"replaced {self._view.replaces} ({state.lower()})", replaced=True)
        await self._record("replaced")

    async def _cancel_on_exchange(self) -> None:
        try:
            done: CancelOnExchangeResult = await workflow.execute_activity_method(
                OrderActivities.cancel_exchange_order, self._lookup_input(),
                start_to_close_timeout=timedelta(seconds=self._input.timing.lookup_timeout_s), retry_policy=READ_RETRY)
        except ActivityError as exc:
            workflow.logger.warning("order %s: cancel failed, trying again: %s", self._view.order_id, exc.cause or exc)
            await workflow.sleep(timedelta(seconds=self._input.timing.poll_interval_s))
            return
        if done.order is not None:
            self._apply(done.order, done.note)

    @workflow.update
    async def cancel(self, request: CancelOrderRequest) -> OrderView:
        if self._view.status == AWAITING_CONFIRMATION:
            self._tokens.clear()
            self._set(CANCELED, f"cancelled before confirmation{': ' + request.reason if request.reason else ''}")
            return self._view
        self._cancel = request
        await workflow.wait_condition(lambda: self._view.status in FINAL_STATES)
        return self._view

    @cancel.validator
    def _validate_cancel(self, request: CancelOrderRequest) -> None:
        # Cancelling lowers risk: any channel of the owner may, an agent's included.
        self._check_owner(request.user_id)
        if self._view.status in FINAL_STATES:
            raise rejected(f"order {self._view.order_id} is {self._view.status.lower()} already: nothing to cancel")

    @workflow.signal
    def exchange_event(self) -> None:
        """The user-data stream saw this order change: read it back now instead of at the next poll."""
        self._exchange_event = True

    @workflow.query
    def view(self) -> OrderView:
        return self._view
