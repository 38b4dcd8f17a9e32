"""``/api/real-trading``: real orders with the 2-step confirmation. An adapter over ``services.real_orders``.

Requesting an order that opens or adds risk answers 201 with its summary and a one-time
confirmation secret; it is sent only once confirmed (``POST /orders/{id}/confirm``) from a human
session within the time limit, with a two-factor step-up above your notional threshold. A
reduce-only order is sent at once. An agent's confirmation is a 403; a wrong, reused or expired
secret, or a confirmation of other terms, is a 422; another user's order is a 404.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from core.order_contracts import OrderView
from gateway.auth.deps import AUTH_ERRORS, STEP_UP, CurrentUser, Responses
from gateway.deps import IdempotencyKey, RealOrdersDep
from gateway.errors import RejectedOut
from gateway.paper.schemas import ErrorOut
from gateway.real.schemas import CancelIn, ConfirmIn, OrderIn, OrderOut, OrderRequestedOut
from services.real_orders import OrderRequest, OrderRequested

router = APIRouter(prefix="/api/real-trading", tags=["real-trading"])

REJECTED: Responses = {422: {"model": RejectedOut, "description": "Invalid order, a failed risk check, or a wrong, "
                                                                  "reused or expired confirmation (field, reason)"}}
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such order of yours"}}
FORBIDDEN: Responses = {403: {"model": ErrorOut, "description": "Only a person in a human session confirms"}}
UPSTREAM: Responses = {502: {"model": ErrorOut, "description": "The exchange could not be read"},
                       503: {"model": ErrorOut, "description": "Temporal could not answer in time"}}
WRITE = {**AUTH_ERRORS, **REJECTED, **NOT_FOUND, **UPSTREAM}
OrderId = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[A-Za-z0-9_-]+$")]


def order_out(view: OrderView | dict[str, Any]) -> OrderOut:
    return OrderOut.model_validate(asdict(view) if isinstance(view, OrderView) else view)


def requested_out(requested: OrderRequested) -> OrderRequestedOut:
    return OrderRequestedOut(order=order_out(requested.order), confirmation_token=requested.confirmation_token)


@router.post("/orders", status_code=201, response_model=OrderRequestedOut, responses={**WRITE, **FORBIDDEN})
async def request_order(body: OrderIn, user: CurrentUser, orders: RealOrdersDep,
                        key: IdempotencyKey = None) -> OrderRequestedOut:
    """Step 1: request an order (an Idempotency-Key is required). Its summary and confirmation secret come
    back; a reduce-only order is sent at once."""
    return requested_out(await orders.request_order(user, OrderRequest(**body.model_dump()), key))


@router.post("/orders/{order_id}/confirm", response_model=OrderOut, responses={**WRITE, **STEP_UP})
async def confirm_order(order_id: OrderId, body: ConfirmIn, user: CurrentUser, orders: RealOrdersDep) -> OrderOut:
    """Step 2: confirm with the secret and the terms digest you were shown; answers once the exchange did."""
    return order_out(await orders.confirm(user, order_id, body.token, body.terms_digest))


@router.post("/orders/{order_id}/confirmation-token", response_model=OrderRequestedOut,
             responses={**WRITE, **FORBIDDEN})
async def issue_confirmation(order_id: OrderId, user: CurrentUser, orders: RealOrdersDep) -> OrderRequestedOut:
    """A new one-time confirmation secret for this channel (the previous one stops working): for an order an
    agent requested, or a secret that was lost."""
    return requested_out(await orders.issue_confirmation(user, order_id))


@router.post("/orders/{order_id}/cancel", response_model=OrderOut, responses=WRITE)
async def cancel_order(order_id: OrderId, body: CancelIn, user: CurrentUser, orders: RealOrdersDep) -> OrderOut:
    """Cancel: before confirmation nothing is sent; an open order is cancelled on the exchange (a fill that
    wins the race is reported as filled)."""
    return order_out(await orders.cancel(user, order_id, body.reason))


@router.get("/orders/{order_id}", response_model=OrderOut, responses={**AUTH_ERRORS, **NOT_FOUND, **UPSTREAM})
async def get_order(order_id: OrderId, user: CurrentUser, orders: RealOrdersDep) -> OrderOut:
    return order_out(await orders.order(user, order_id))


@router.get("/orders", response_model=list[OrderOut], responses=AUTH_ERRORS)
async def list_orders(user: CurrentUser, orders: RealOrdersDep, open_only: bool = False,
                      limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[OrderOut]:
    """Your real orders, newest first (``open_only``: awaiting confirmation, in flight or open)."""
    return [order_out(doc) for doc in await orders.orders(user, open_only, limit)]
