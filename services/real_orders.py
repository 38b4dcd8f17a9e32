"""Manual real orders: request (with its summary and risk checks), the 2-step confirmation, cancel, reads.

An order that opens or adds risk waits for its owner's confirmation on a human channel; a
reduce-only order (closing, reducing) goes out at once. An agent may request an order, never
confirm one. The client order ID derives from the user and the request's idempotency key, so a
repeated request finds the first order (and shows the same confirmation secret) instead of placing
a second; the same key with other terms is refused.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn

from pymongo.asynchronous.database import AsyncDatabase
from temporalio.client import (
    Client,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.binance.rest import BinanceRestClient
from activities.exchange_errors import ExchangeError
from core.contracts import TASK_QUEUE_REAL, task_queue_name
from core.order_contracts import (
    AWAITING_CONFIRMATION,
    CONDITIONAL_TYPES,
    FINAL_STATES,
    FUTURES,
    LIVE_STATES,
    MARKETS,
    ORDER_TYPES,
    SIDES,
    SPOT,
    SUBMITTING,
    TIME_IN_FORCE,
    CancelOrderRequest,
    ConfirmOrderInput,
    IssueConfirmTokenInput,
    OrderInput,
    OrderSummary,
    OrderTerms,
    OrderTiming,
    OrderView,
    RiskVerdict,
    client_order_id,
    order_workflow_id,
    terms_digest,
)
from core.settings import Settings
from services.errors import Forbidden, NotFound, Rejected, UpstreamFailed
from services.exchange_symbols import ExchangeSymbols, SymbolFilters
from services.idempotency import checked_key
from services.one_time_tokens import OneTimeTokens, human_channel
from services.principal import Principal
from services.two_factor import TwoFactor
from services.workflow_updates import execute_entity_update, unavailable
from workflows.order import OrderWorkflow

TOKEN_PURPOSE = b"durabot order confirmations"
# How long a request for an order sent at once (reduce-only, protective) waits to show the exchange's answer.
SUBMIT_WAIT_S = 10.0
MAX_LEVERAGE = 125


@dataclass(frozen=True)
class OrderRequest:
    symbol: str
    side: str
    order_type: str
    quantity: float | None
    price: float | None = None
    time_in_force: str | None = None
    reduce_only: bool = False
    leverage: int = 1
    key_id: str | None = None
    trigger_price: float | None = None
    close_position: bool = False
    market: str = FUTURES


@dataclass(frozen=True)
class OrderRequested:
    order: OrderView
    # The caller's one-time confirmation secret (a human channel, an order awaiting confirmation).
    confirmation_token: str | None = None


def _on_grid(value: float, step: float, decimals: int, *, down: bool) -> str:
    steps = value / step
    # A value a hair below a grid line (binary noise) is on it.
    snapped = math.floor(steps + 1e-9) if down else round(steps)
    return f"{snapped * step:.{decimals}f}"


def manual_order_id(user_id: str, idempotency_key: str) -> str:
    """The client order ID of a manual request: the same key finds the same order."""
    return client_order_id("m", f"{user_id}:{idempotency_key}")


def _check_spot(request: OrderRequest, conditional: bool) -> None:
    """What a spot order cannot be: it buys or sells the asset itself, with no position to reduce and no
    leverage (its stop orders are not offered yet)."""
    if conditional:
        raise Rejected("order_type", "spot orders are MARKET or LIMIT")
    if request.reduce_only or request.close_position:
        raise Rejected("reduce_only", "a spot order buys or sells the asset: there is no position to reduce")
    if request.leverage != 1:
        raise Rejected("leverage", "spot trades without leverage: leave it at 1")
    if (request.time_in_force or "").upper() == "GTX":
        raise Rejected("time_in_force", "spot LIMIT orders are GTC, IOC or FOK")


def liquidation_estimate(side: str, price: float, leverage: int, maintenance_rate: float) -> float:
    """An isolated-margin estimate for a new position of one order (the exchange's own figure
    also counts the wallet and other positions)."""
    if side == "BUY":
        return price * (1 - 1 / leverage + maintenance_rate)
    return price * (1 + 1 / leverage - maintenance_rate)


class RealOrders:
    def __init__(self, settings: Settings, temporal: Client, db: AsyncDatabase, exchange: ExchangeSymbols,
                 two_factor: TwoFactor, master_key: bytes) -> None:
        self.settings = settings
        self.temporal = temporal
        self.db = db
        self.exchange = exchange
        self.two_factor = two_factor
        self._tokens = OneTimeTokens(master_key, TOKEN_PURPOSE)

    def _handle(self, user_id: str, order_id: str) -> WorkflowHandle[OrderWorkflow, OrderView]:
        try:
            workflow_id = order_workflow_id(user_id, order_id)
        except ValueError:
            raise NotFound(f"no order {order_id}") from None
        return self.temporal.get_workflow_handle_for(OrderWorkflow.run, workflow_id)

    def timing(self) -> OrderTiming:
        """Every wait of a real order, from the settings (a real session's orders too)."""
        s = self.settings
        return OrderTiming(confirm_expiry_s=s.order_confirm_expiry_s, submit_timeout_s=s.order_submit_timeout_s,
                           lookup_timeout_s=s.order_request_timeout_s + 5,
                           protection_window_s=s.order_protection_window_s, poll_interval_s=s.order_poll_interval_s)

    # -- requesting ---------------------------------------------------------------------------------
    async def request_order(self, principal: Principal, request: OrderRequest, key: str | None, *,
                            confirm: bool | None = None, order_id: str | None = None,
                            replaces: str | None = None) -> OrderRequested:
        """``confirm`` overrides whether the order waits for its owner (by default: unless it only reduces
        a position); ``order_id`` and ``replaces`` are for protective orders (``services.real_protection``)."""
        reduces = request.reduce_only or request.close_position
        needs_confirmation = not reduces if confirm is None else confirm
        # Reducing risk is SENSITIVE for agents; opening or adding risk is CRITICAL.
        principal.require("critical" if needs_confirmation else "sensitive")
        key = checked_key(key, required=True)
        terms, filters = await self._terms(request)
        key_id = await self.key_id_of(principal, request.key_id)
        order_id = order_id or manual_order_id(principal.user_id, str(key))
        channel = human_channel(principal)
        summary = await self._summary(terms, filters, request.leverage)
        failed = [v for v in summary.risk_checks if not v.passed]
        if failed and not reduces:
            raise Rejected("quantity", "; ".join(f"{v.check}: {v.detail}" for v in failed))
        token = self._tokens.derived(order_id, channel) if needs_confirmation and channel else None
        order_input = OrderInput(
            user_id=principal.user_id, order_id=order_id, key_id=key_id, terms=terms, origin="manual",
            source=principal.channel, created_at_ms=int(time.time() * 1000), needs_confirmation=needs_confirmation,
            timing=self.timing(), summary=summary,
            confirm_token_hmacs={channel: self._tokens.digest(token)} if token and channel else {},
            replaces=replaces)
        try:
            await self.temporal.start_workflow(
                OrderWorkflow.run, order_input, id=order_workflow_id(principal.user_id, order_id),
                task_queue=task_queue_name(TASK_QUEUE_REAL, self.settings.task_queue_prefix),
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except WorkflowAlreadyStartedError:
            view = await self.order(principal, order_id)
            if view.terms_digest != terms_digest(terms):
                raise Rejected("Idempotency-Key", "this Idempotency-Key was used for another order; use a new key "
                                                  "for a new order") from None
            shown = token if view.status == AWAITING_CONFIRMATION else None
            return OrderRequested(view, shown)
        except RPCError as exc:
            raise unavailable(exc) from None
        if needs_confirmation:
            return OrderRequested(await self.order(principal, order_id), token)
        return OrderRequested(await self._sent(principal, order_id))

    async def _sent(self, principal: Principal, order_id: str) -> OrderView:
        """An order sent at once, as it is once the exchange answered (or still SUBMITTING after a while:
        the caller follows it on /ws or by reading it)."""
        deadline = time.monotonic() + SUBMIT_WAIT_S
        while True:
            view = await self.order(principal, order_id)
            if view.status != SUBMITTING or time.monotonic() >= deadline:
                return view
            await asyncio.sleep(0.1)

    async def _terms(self, request: OrderRequest) -> tuple[OrderTerms, SymbolFilters]:
        side, order_type = request.side.upper(), request.order_type.upper()
        if side not in SIDES:
            raise Rejected("side", f"side is one of {', '.join(SIDES)}")
        if order_type not in ORDER_TYPES + CONDITIONAL_TYPES:
            raise Rejected("order_type", f"order_type is one of {', '.join(ORDER_TYPES + CONDITIONAL_TYPES)}")
        conditional = order_type in CONDITIONAL_TYPES
        if conditional and not (request.reduce_only or request.close_position):
            raise Rejected("order_type", "stop and take-profit orders protect a position: set reduce_only or "
                                         "close_position")
        if request.close_position and not conditional:
            raise Rejected("close_position", "close_position is for STOP_MARKET and TAKE_PROFIT_MARKET orders")
        if not 1 <= request.leverage <= MAX_LEVERAGE:
            raise Rejected("leverage", f"leverage is 1 to {MAX_LEVERAGE}")
        if request.market not in MARKETS:
            raise Rejected("market", f"market is one of {', '.join(MARKETS)}")
        if request.market == SPOT:
            _check_spot(request, conditional)
        filters = await self.exchange.symbol(request.symbol, request.market)
        if filters.status != "TRADING":
            raise Rejected("symbol", f"{filters.symbol} is not trading (status {filters.status})")
        quantity = "0" if request.close_position else self._quantity(request.quantity, filters)
        price = tif = trigger = None
        if order_type == "LIMIT":
            price = self._price("price", request.price, filters)
            tif = (request.time_in_force or "GTC").upper()
            if tif not in TIME_IN_FORCE:
                raise Rejected("time_in_force", f"time_in_force is one of {', '.join(TIME_IN_FORCE)}")
        elif request.price is not None or request.time_in_force is not None:
            raise Rejected("price", f"a {order_type} order takes no price or time_in_force")
        if conditional:
            trigger = self._price("trigger_price", request.trigger_price, filters)
        elif request.trigger_price is not None:
            raise Rejected("trigger_price", f"a {order_type} order takes no trigger_price")
        terms = OrderTerms(request.market, filters.symbol, side, order_type, quantity, price, tif,
                           request.reduce_only and not request.close_position, trigger, request.close_position)
        return terms, filters

    @staticmethod
    def _quantity(requested: float | None, filters: SymbolFilters) -> str:
        if requested is None or not (math.isfinite(requested) and requested > 0):
            raise Rejected("quantity", "quantity must be a positive number")
        quantity = _on_grid(requested, filters.step_size, filters.quantity_decimals, down=True)
        minimum = max(filters.min_qty, filters.step_size)
        if float(quantity) < minimum:
            raise Rejected("quantity", f"quantity rounds down to {quantity} on the step {filters.step_size:g}, below "
                                       f"the minimum {minimum:g}")
        return quantity

    @staticmethod
    def _price(field: str, requested: float | None, filters: SymbolFilters) -> str:
        if requested is None or not (math.isfinite(requested) and requested > 0):
            raise Rejected(field, f"this order type needs a positive {field}")
        return _on_grid(requested, filters.tick_size, filters.price_decimals, down=False)

    async def key_id_of(self, principal: Principal, key_id: str | None) -> str:
        """The caller's API key ``key_id`` (unset: their first one); a 422 naming ``key_id`` when none."""
        query: dict[str, Any] = {"user_id": principal.user_id}
        if key_id is not None:
            query["key_id"] = key_id
        doc = await self.db.api_keys.find_one(query, {"key_id": 1}, sort=[("created_at", 1)])
        if doc is None:
            raise Rejected("key_id", f"no API key {key_id}" if key_id else
                           "save a Binance API key first (settings → API keys): real orders are sent with it")
        return str(doc["key_id"])

    async def _summary(self, terms: OrderTerms, filters: SymbolFilters, leverage: int) -> OrderSummary:
        if terms.price is not None or terms.trigger_price is not None:
            expected = float(terms.price or terms.trigger_price or 0)
        else:
            try:
                async with BinanceRestClient(self.settings.exchange_rest_url,
                                             futures_base_url=self.settings.exchange_futures_url) as rest:
                    if terms.market == SPOT:
                        book = await rest.book_ticker(terms.symbol, market="spot")
                    else:
                        book = await rest.book_ticker(terms.symbol, market="usdm")
            except ExchangeError as exc:
                raise UpstreamFailed(f"the exchange's price of {terms.symbol} could not be read: {exc}") from None
            expected = book.ask_price if terms.side == "BUY" else book.bid_price
        notional = expected * float(terms.quantity)
        max_notional = self.settings.real_max_order_notional
        checks = (
            RiskVerdict("min_notional", notional >= filters.min_notional,
                        f"notional {notional:.2f} against the exchange's minimum {filters.min_notional:g}"),
            RiskVerdict("max_order_notional", notional <= max_notional,
                        f"notional {notional:.2f} against the limit {max_notional:g} per order"),
        )
        unleveraged = terms.reduce_only or terms.close_position or terms.market == SPOT
        liquidation = None if unleveraged else liquidation_estimate(
            terms.side, expected, leverage, self.settings.order_maintenance_margin_rate)
        return OrderSummary(expected_price=expected, notional=notional,
                            fee=notional * self.settings.order_taker_fee_rate, leverage=leverage,
                            liquidation_price=liquidation, risk_checks=checks)

    # -- confirming ---------------------------------------------------------------------------------
    async def issue_confirmation(self, principal: Principal, order_id: str) -> OrderRequested:
        """A new one-time confirmation secret for the caller's human channel (replacing its previous one)."""
        channel = human_channel(principal)
        if channel is None:
            raise Forbidden("confirmation secrets are shown only to a person in a human session")
        token = secrets.token_urlsafe(24)
        view: OrderView = await self._update(principal, order_id, OrderWorkflow.issue_confirm_token,
                                             IssueConfirmTokenInput(principal.user_id, True, channel,
                                                                    self._tokens.digest(token)))
        return OrderRequested(view, token)

    async def confirm(self, principal: Principal, order_id: str, token: str, digest: str) -> OrderView:
        channel = human_channel(principal)
        if channel is None:
            raise Forbidden("only a person in a human session confirms a real order; an agent may request one, "
                            "never confirm it")
        view = await self.order(principal, order_id)
        if view.summary is not None:
            await self.two_factor.require_step_up_above(principal, view.summary.notional, "confirming a real order")
        confirmed: OrderView = await self._update(
            principal, order_id, OrderWorkflow.confirm,
            ConfirmOrderInput(principal.user_id, True, channel, self._tokens.digest(token), digest))
        return confirmed

    async def cancel(self, principal: Principal, order_id: str, reason: str = "", key: str | None = None, *,
                     position_closed: bool = False) -> OrderView:
        """Cancel an order (before its confirmation nothing is sent). With ``key`` (a caller that retries the
        same cancel), an order that is final already answers its view instead of a refusal, so a repeat
        returns the cancelled order and changes nothing. ``position_closed``: the order's position was closed,
        so its stop guards nothing any more."""
        # Cancelling lowers risk: SENSITIVE, never blocked behind a confirmation. Except a live stop: without
        # it a position's loss is unbounded, so only its owner removes one (an agent may tighten it instead).
        principal.require("sensitive")
        checked_key(key, required=False)
        if not principal.human and not position_closed:
            current = await self.order(principal, order_id)
            if current.terms.order_type == "STOP_MARKET" and current.status in LIVE_STATES:
                raise Forbidden("cancelling a position's live stop raises its risk: only the account's owner does "
                                "that, in the dashboard (an agent may tighten the stop with set_real_protection)")
        try:
            view: OrderView = await self._update(principal, order_id, OrderWorkflow.cancel,
                                                 CancelOrderRequest(principal.user_id, principal.channel, reason))
        except Rejected:
            if key is None:
                raise
            view = await self.order(principal, order_id)
            if view.status not in FINAL_STATES:
                raise
        return view

    async def _update(self, principal: Principal, order_id: str, update: Any, arg: Any) -> Any:
        async def closed() -> NoReturn:
            stored = await self.db.real_orders.find_one({"user_id": principal.user_id, "order_id": order_id},
                                                        {"status": 1})
            if stored is not None:
                raise Rejected(None, f"order {order_id} is {stored['status'].lower()} already")
            raise NotFound(f"no order {order_id}")

        return await execute_entity_update(self._handle(principal.user_id, order_id), update, arg, closed)

    # -- reads --------------------------------------------------------------------------------------
    async def order(self, principal: Principal, order_id: str) -> OrderView:
        try:
            view: OrderView = await self._handle(principal.user_id, order_id).query(
                OrderWorkflow.view, rpc_timeout=timedelta(seconds=10))
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise unavailable(exc) from None
            raise NotFound(f"no order {order_id}") from None
        return view

    async def orders(self, principal: Principal, open_only: bool = False, limit: int = 100) -> list[dict[str, Any]]:
        """The caller's orders as written through, newest first (open ones only, if asked)."""
        query: dict[str, Any] = {"user_id": principal.user_id}
        if open_only:
            query["status"] = {"$in": sorted({AWAITING_CONFIRMATION, *LIVE_STATES, "SUBMITTING", "UNKNOWN"})}
        cursor = self.db.real_orders.find(query, {"_id": 0}).sort("created_at_ms", -1).limit(limit)
        return [doc async for doc in cursor]
