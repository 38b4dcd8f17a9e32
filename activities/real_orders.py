"""The activities of ``OrderWorkflow``: send an order once, look it up, cancel it, write its status.

The API key is decrypted here, from the key ID the workflow passed, and never leaves: no key or
secret is in an input, a result, an error or a log line. ``submit_order`` reports an outcome
rather than raising for what the exchange answered; the workflow schedules it with one attempt,
because a second attempt of a send whose fate is unknown is exactly the duplicate order we refuse.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import events
from activities.binance.futures_orders import FuturesOrderClient
from activities.binance.key_vault import ApiKeyNotFoundError, KeyVaultError, MasterKeyring, load_credentials
from activities.binance.shared_gate import GateLimits, SharedRequestGate
from activities.binance.signed import SignedBinanceClient
from activities.binance.spot_orders import SpotOrderClient
from core.event_types import ORDER_UPDATE
from core.order_contracts import (
    FUTURES,
    NO_API_KEY,
    SPOT,
    CancelOnExchangeResult,
    LookupOrderInput,
    LookupOrderResult,
    OrderView,
    RecordOrderInput,
    SubmitOrderInput,
    SubmitOrderResult,
)
from core.settings import Settings


async def signed_client(db: AsyncDatabase, settings: Settings, keyring: MasterKeyring, user_id: str,
                        key_id: str, market: str = FUTURES) -> SignedBinanceClient:
    """A signed client of ``market`` (USDⓈ-M or spot) with the user's key ``key_id``, decrypted here,
    through the shared gate of that base URL; a key that is missing or cannot be decrypted is a
    non-retryable ``NO_API_KEY``."""
    try:
        credentials = await load_credentials(db, keyring, user_id, key_id)
    except (ApiKeyNotFoundError, KeyVaultError) as exc:
        # Nothing was sent: the order cannot go out with this key, now or on a retry.
        raise ApplicationError(f"API key {key_id}: {exc}", type=NO_API_KEY, non_retryable=True) from None
    url = settings.exchange_rest_url if market == SPOT else settings.exchange_futures_url
    return SignedBinanceClient(url, credentials, timeout_s=settings.order_request_timeout_s,
                               gate=SharedRequestGate(
                                       db, url, credentials.api_key,
                                       GateLimits(settings.exchange_weight_per_minute)))


class OrderActivities:
    def __init__(self, db: AsyncDatabase, settings: Settings, keyring: MasterKeyring) -> None:
        self.db = db
        self.settings = settings
        self.keyring = keyring

    async def _client(self, user_id: str, key_id: str, market: str) -> SignedBinanceClient:
        return await signed_client(self.db, self.settings, self.keyring, user_id, key_id, market)

    @activity.defn
    async def submit_order(self, request: SubmitOrderInput) -> SubmitOrderResult:
        market = request.terms.market
        async with await self._client(request.user_id, request.key_id, market) as signed:
            if market == SPOT:
                return await SpotOrderClient(signed).submit(request.order_id, request.terms)
            return await FuturesOrderClient(signed).submit(request.order_id, request.terms)

    @activity.defn
    async def lookup_order(self, request: LookupOrderInput) -> LookupOrderResult:
        async with await self._client(request.user_id, request.key_id, request.market) as signed:
            if request.market == SPOT:
                return LookupOrderResult(await SpotOrderClient(signed).lookup(request.symbol, request.order_id))
            client = FuturesOrderClient(signed)
            return LookupOrderResult(await client.lookup(request.symbol, request.order_id, request.conditional))

    @activity.defn
    async def cancel_exchange_order(self, request: LookupOrderInput) -> CancelOnExchangeResult:
        async with await self._client(request.user_id, request.key_id, request.market) as signed:
            if request.market == SPOT:
                order, note = await SpotOrderClient(signed).cancel(request.symbol, request.order_id)
            else:
                order, note = await FuturesOrderClient(signed).cancel(request.symbol, request.order_id,
                                                                      request.conditional)
            return CancelOnExchangeResult(order, note)

    @activity.defn
    async def record_order(self, request: RecordOrderInput) -> None:
        """Write the order's view through (newer revisions only) and publish an ``OrderUpdate``."""
        view = request.view
        doc = asdict(view)
        try:
            await self.db.real_orders.replace_one(
                {"user_id": view.user_id, "order_id": view.order_id, "revision": {"$lt": view.revision}},
                doc, upsert=True)
        except DuplicateKeyError:
            pass  # a newer revision is stored already: this write came late
        await events.publish(self.db, [order_event(view, request.event)])


def order_event(view: OrderView, event: str) -> dict[str, Any]:
    """The ``OrderUpdate`` an order's status write publishes (one per revision)."""
    data = {"order_id": view.order_id, "status": view.status, "event": event, "symbol": view.terms.symbol,
            "side": view.terms.side, "quantity": view.terms.quantity, "executed_qty": view.executed_qty,
            "avg_price": view.avg_price, "reason": view.reason, "confirm_by_ms": view.confirm_by_ms,
            "origin": view.origin}
    return events.event_doc(ORDER_UPDATE, f"{view.user_id}:{view.order_id}:{view.revision}", data,
                            symbol=view.terms.symbol, user_id=view.user_id)
