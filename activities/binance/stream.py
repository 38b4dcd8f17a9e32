"""The Binance market-stream client: one combined-stream connection carrying kline and trade streams.

It reconnects after any failure with jittered exponential backoff, rotates the connection before
the exchange's 24-hour limit, resubscribes every stream it holds, answers server pings (the
``websockets`` library replies to ping frames), and yields only validated events: closed klines
(``x: true``) in order per symbol and interval, and trades. After each (re)connection it yields
``StreamConnected`` so the caller fetches by REST whatever closed while it was away."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Iterable
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

from activities.binance.models import ClosedKline, StreamConnected, StreamEvent, TradeTick
from activities.binance.validation import (
    BadDataCounter,
    BadExchangeData,
    kline_event_candle,
    trade_event_fields,
)
from activities.exchange_errors import PermanentExchangeError

log = logging.getLogger(__name__)

# Binance closes connections at 24 h; rotating a little earlier keeps us in charge of the moment.
DEFAULT_MAX_CONNECTION_AGE_S = 23.5 * 3600
# Binance accepts at most 5 incoming messages per second per connection.
_METHOD_FRAME_SPACING_S = 0.25


def kline_stream(symbol: str, interval: str) -> str:
    return f"{symbol.lower()}@kline_{interval}"


def trade_stream(symbol: str) -> str:
    return f"{symbol.lower()}@trade"


class BinanceStreamClient:
    def __init__(
        self,
        ws_base_url: str,
        streams: Iterable[str] = (),
        *,
        max_connection_age_s: float = DEFAULT_MAX_CONNECTION_AGE_S,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        open_timeout_s: float = 10.0,
        bad_data: BadDataCounter | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if max_connection_age_s <= 0 or backoff_initial_s <= 0 or backoff_max_s < backoff_initial_s:
            raise ValueError("connection age and backoff times must be positive, with max >= initial")
        self.ws_base_url = ws_base_url.rstrip("/")
        self.streams: set[str] = {s.lower() for s in streams}
        self.max_connection_age_s = max_connection_age_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.open_timeout_s = open_timeout_s
        self.bad_data = bad_data or BadDataCounter()
        self._rng = rng or random.Random()
        self._connection: ClientConnection | None = None
        self._closed = False
        self._last_closed_open_time: dict[tuple[str, str], int] = {}
        self._request_id = 0
        self._last_method_frame = 0.0
        self.connections_made = 0
        self.failures = 0

    # -- subscriptions --------------------------------------------------------------------------
    async def subscribe(self, streams: Iterable[str]) -> None:
        names = sorted({s.lower() for s in streams} - self.streams)
        self.streams.update(names)
        if names:
            await self._send_method("SUBSCRIBE", names)

    async def unsubscribe(self, streams: Iterable[str]) -> None:
        names = sorted({s.lower() for s in streams} & self.streams)
        self.streams.difference_update(names)
        if names:
            await self._send_method("UNSUBSCRIBE", names)

    async def _send_method(self, method: str, params: list[str]) -> None:
        connection = self._connection
        if connection is None:
            return  # the next connection's URL carries the current set
        wait = self._last_method_frame + _METHOD_FRAME_SPACING_S - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._request_id += 1
        self._last_method_frame = time.monotonic()
        try:
            await connection.send(json.dumps({"method": method, "params": params, "id": self._request_id}))
        except websockets.ConnectionClosed:
            log.info("binance stream: connection closed while sending %s; the reconnect resubscribes", method)

    def _url(self) -> str:
        return (
            f"{self.ws_base_url}/stream?streams={'/'.join(sorted(self.streams))}"
            if self.streams
            else f"{self.ws_base_url}/stream"
        )

    # -- life cycle -----------------------------------------------------------------------------
    async def close(self) -> None:
        """Stop streaming; a running ``events()`` loop ends."""
        self._closed = True
        if self._connection is not None:
            _drop(self._connection)

    def _backoff_delay(self) -> float:
        ceiling = min(self.backoff_max_s, self.backoff_initial_s * 2 ** max(self.failures - 1, 0))
        return ceiling * self._rng.uniform(0.5, 1.0)

    async def events(self) -> AsyncIterator[StreamEvent]:
        """Stream events until ``close()``; never ends on a connection failure."""
        reason = "initial"
        while not self._closed:
            try:
                async with websockets.connect(
                    self._url(), open_timeout=self.open_timeout_s, ping_interval=None, max_queue=64
                ) as connection:
                    self._connection = connection
                    self.connections_made += 1
                    opened_at = time.monotonic()
                    yield StreamConnected(self.connections_made, reason)
                    while True:
                        remaining = self.max_connection_age_s - (time.monotonic() - opened_at)
                        if remaining <= 0:
                            break
                        try:
                            raw = await asyncio.wait_for(connection.recv(), timeout=remaining)
                        except TimeoutError:
                            break
                        # Only a connection that delivers resets the backoff: one that is accepted
                        # and dropped at once must still back off further each time.
                        self.failures = 0
                        for event in self._parse(raw):
                            yield event
                    log.info("binance stream: rotating the connection after %.0f s", self.max_connection_age_s)
                    reason = "rotation"
                    _drop(connection)
            except websockets.InvalidURI as exc:
                raise PermanentExchangeError(f"bad stream base URL {self.ws_base_url!r}: {exc}") from exc
            except (
                websockets.ConnectionClosed,
                websockets.InvalidHandshake,
                OSError,
                TimeoutError,
            ) as exc:
                self._connection = None
                if self._closed:
                    return
                self.failures += 1
                delay = self._backoff_delay()
                log.warning("binance stream: connection lost (%r); reconnecting in %.2f s", exc, delay)
                reason = "reconnect"
                await asyncio.sleep(delay)
            finally:
                self._connection = None

    # -- parsing --------------------------------------------------------------------------------
    def _parse(self, raw: str | bytes) -> list[StreamEvent]:
        try:
            message = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self.bad_data.reject("stream", BadExchangeData("malformed_json", str(exc)), raw)
            return []
        if isinstance(message, dict) and "data" in message and "stream" in message:
            message = message["data"]
        if not isinstance(message, dict):
            self.bad_data.reject("stream", BadExchangeData("bad_shape", "a stream message must be an object"), raw)
            return []
        if "result" in message or "code" in message:
            if "code" in message:
                log.warning("binance stream: the exchange refused a request: %s", raw)
            return []
        kind = message.get("e")
        try:
            if kind == "kline":
                return self._closed_kline(message)
            if kind == "trade":
                symbol, trade_id, price, qty, when, maker = trade_event_fields(message)
                return [TradeTick(symbol, trade_id, price, qty, when, maker)]
        except BadExchangeData as bad:
            self.bad_data.reject(f"stream {kind}", bad, raw)
            return []
        log.debug("binance stream: ignoring event type %r", kind)
        return []

    def _closed_kline(self, message: dict[str, Any]) -> list[StreamEvent]:
        symbol, interval, candle, closed = kline_event_candle(message)
        if not closed:
            return []
        key = (symbol, interval)
        previous = self._last_closed_open_time.get(key)
        if previous is not None and candle.open_time <= previous:
            raise BadExchangeData(
                "duplicate" if candle.open_time == previous else "out_of_order",
                f"{symbol} {interval}: closed kline {candle.open_time} does not follow {previous}",
            )
        self._last_closed_open_time[key] = candle.open_time
        return [ClosedKline(symbol, interval, candle)]


def _drop(connection: ClientConnection) -> None:
    """Close the socket at once. A closing handshake would wait for the server's close frame behind
    market data we no longer read (reading pauses while the receive queue is full)."""
    connection.transport.abort()
