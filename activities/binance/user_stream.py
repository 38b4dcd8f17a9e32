"""The USDⓈ-M user-data stream: a listen key kept alive and one WebSocket on it, reconnected after any
failure, yielding only what the ledger needs to know: that it is connected (everything that happened
while it was not must be fetched by REST now), and that a fill or a balance change happened (fetch it).

Events are hints, never records: the session books from ``userTrades`` and ``income`` by their IDs, so
an event lost with a dropped connection costs nothing but a fetch after the reconnect."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import websockets
from websockets.exceptions import InvalidHandshake

from activities.binance.signed import SignedBinanceClient
from activities.exchange_errors import ExchangeError, TemporaryExchangeError

log = logging.getLogger(__name__)

LISTEN_KEY_PATH = "/fapi/v1/listenKey"
UNKNOWN_LISTEN_KEY = -1125
# Binance closes a listen key 60 minutes after its last keepalive, a connection at 24 hours.
DEFAULT_KEEPALIVE_S = 30 * 60
DEFAULT_MAX_CONNECTION_AGE_S = 23.5 * 3600
# Executions that move the account (a liquidation is CALCULATED).
_FILL_EXECUTIONS = {"TRADE", "CALCULATED"}


@dataclass(frozen=True)
class UserStreamConnected:
    """Up and listening; ``reason`` is ``initial``, ``reconnect`` or ``rotation``."""

    connection_number: int
    reason: str


@dataclass(frozen=True)
class AccountChanged:
    """A fill (``ORDER_TRADE_UPDATE`` with a trade) or a balance change (``ACCOUNT_UPDATE``: funding,
    a fill's fee and PnL): the REST records hold the details."""

    kind: str  # "fill" | "balance"
    symbol: str
    reason: str  # the execution type or the ACCOUNT_UPDATE reason
    event_time_ms: int


UserStreamEvent = UserStreamConnected | AccountChanged


def account_change(message: str) -> AccountChanged | None:
    """The hint in one stream message, or None (order placed or cancelled, algo updates, malformed)."""
    try:
        event = json.loads(message)
    except json.JSONDecodeError:
        return None
    if not isinstance(event, dict):
        return None
    kind, when = event.get("e"), event.get("E")
    when = when if isinstance(when, int) else 0
    if kind == "ORDER_TRADE_UPDATE":
        order = event.get("o")
        if isinstance(order, dict) and order.get("x") in _FILL_EXECUTIONS:
            return AccountChanged("fill", str(order.get("s", "")), str(order["x"]), when)
    elif kind == "ACCOUNT_UPDATE":
        update = event.get("a")
        reason = update.get("m", "") if isinstance(update, dict) else ""
        return AccountChanged("balance", "", str(reason), when)
    return None


class UserDataStream:
    def __init__(
        self,
        signed: SignedBinanceClient,
        ws_base_url: str,
        *,
        keepalive_s: float = DEFAULT_KEEPALIVE_S,
        max_connection_age_s: float = DEFAULT_MAX_CONNECTION_AGE_S,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        open_timeout_s: float = 10.0,
        rng: random.Random | None = None,
    ) -> None:
        if keepalive_s <= 0 or max_connection_age_s <= 0 or not 0 < backoff_initial_s <= backoff_max_s:
            raise ValueError("keepalive, connection age and backoff times must be positive, with max >= initial")
        self._signed = signed
        self.ws_base_url = ws_base_url.rstrip("/")
        self.keepalive_s = keepalive_s
        self.max_connection_age_s = max_connection_age_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.open_timeout_s = open_timeout_s
        self._rng = rng or random.Random()
        self.connections_made = 0
        self.failures = 0

    async def _listen_key(self, method: str) -> str:
        reply = await self._signed.keyed_request(method, LISTEN_KEY_PATH)
        key = reply.get("listenKey") if isinstance(reply, dict) else None
        if not isinstance(key, str) or not key:
            raise TemporaryExchangeError(f"{LISTEN_KEY_PATH}: no listenKey in the reply")
        return key

    async def events(self) -> AsyncIterator[UserStreamEvent]:
        """Forever (until cancelled): ``UserStreamConnected`` after every (re)connection, then the
        account changes it carries."""
        reason, backoff = "initial", self.backoff_initial_s
        while True:
            try:
                key = await self._listen_key("POST")  # the key in force, or a new one
                # A stream given up (cancelled, rotated) need not wait for the server's closing handshake.
                async with websockets.connect(f"{self.ws_base_url}/ws/{key}", open_timeout=self.open_timeout_s,
                                              close_timeout=1, max_size=2**20) as connection:
                    self.connections_made += 1
                    backoff = self.backoff_initial_s
                    yield UserStreamConnected(self.connections_made, reason)
                    opened = kept = time.monotonic()
                    while True:
                        now = time.monotonic()
                        if now - opened >= self.max_connection_age_s:
                            reason = "rotation"
                            break
                        if now - kept >= self.keepalive_s:
                            await self._listen_key("PUT")  # -1125: the key lapsed; a new one on reconnect
                            kept = now
                        wait = min(self.keepalive_s - (now - kept), self.max_connection_age_s - (now - opened))
                        try:
                            message = await asyncio.wait_for(connection.recv(), timeout=max(wait, 0.01))
                        except TimeoutError:
                            continue
                        change = account_change(message if isinstance(message, str) else message.decode())
                        if change is not None:
                            yield change
                continue
            except (OSError, TimeoutError, websockets.ConnectionClosed, InvalidHandshake, ExchangeError) as exc:
                if isinstance(exc, ExchangeError) and not isinstance(exc, TemporaryExchangeError) \
                        and exc.code != UNKNOWN_LISTEN_KEY:
                    raise  # a key without the right (-2015) stays without it
                self.failures += 1
                log.info("user-data stream down, reconnecting", extra={"fields": {
                    "error": type(exc).__name__, "failures": self.failures}})
            reason = "reconnect"
            await asyncio.sleep(backoff * (0.5 + self._rng.random() / 2))
            backoff = min(backoff * 2, self.backoff_max_s)
