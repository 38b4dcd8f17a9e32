"""USDⓈ-M user-data streams: ``POST/PUT/DELETE /fapi/v1/listenKey`` and delivery of account events.

One listen key per API key, valid 60 wall minutes, extended by ``PUT``; an unknown or lapsed key
answers -1125. The stream is ``/ws/<listenKey>`` on the market stream server (so the
``drop_ws_every`` fault applies); events go to every connection on a live key."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sim.exchange.account import SimKeyStore, api_key_of
from sim.exchange.errors import BinanceApiError
from sim.exchange.rest_common import binance_endpoint, json_reply
from sim.exchange.streams import StreamHub

VALIDITY_MS = 60 * 60_000


class ListenKeys:
    def __init__(self, hub: StreamHub) -> None:
        self.hub = hub
        # api key -> [listen key, wall expiry ms]
        self.by_api_key: dict[str, list[Any]] = {}
        self.on_change: Callable[[], None] = lambda: None

    def _now(self) -> int:
        return int(time.time() * 1000)

    def create(self, api_key: str) -> str:
        current = self.by_api_key.get(api_key)
        listen_key = current[0] if current and current[1] > self._now() else secrets.token_hex(32)
        self.by_api_key[api_key] = [listen_key, self._now() + VALIDITY_MS]
        self.on_change()
        return listen_key

    def extend(self, api_key: str) -> str:
        current = self.by_api_key.get(api_key)
        if current is None or current[1] <= self._now():
            raise BinanceApiError(-1125, "This listenKey does not exist.")
        current[1] = self._now() + VALIDITY_MS
        self.on_change()
        return current[0]

    def is_live(self, name: str) -> bool:
        """Whether ``name`` is a listen key in force (the stream hub asks, for the user-stream fault)."""
        return any(key == name and expiry > self._now() for key, expiry in self.by_api_key.values())

    def close(self, api_key: str) -> None:
        if self.by_api_key.pop(api_key, None) is None:
            raise BinanceApiError(-1125, "This listenKey does not exist.")
        self.on_change()

    async def publish(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        for api_key, payload in events:
            current = self.by_api_key.get(api_key)
            if current is not None and current[1] > self._now():
                await self.hub.publish_raw(current[0], payload)


def listen_key_routes(keys: SimKeyStore, listen_keys: ListenKeys) -> list[Route]:
    @binance_endpoint
    async def listen_key(request: Request) -> Response:
        key = api_key_of(request, keys)
        if not key.enable_futures:
            raise BinanceApiError(-2015, "Invalid API-key, IP, or permissions for action.", http_status=401)
        if request.method == "POST":
            return json_reply({"listenKey": listen_keys.create(key.api_key)})
        if request.method == "PUT":
            return json_reply({"listenKey": listen_keys.extend(key.api_key)})
        listen_keys.close(key.api_key)
        return json_reply({})

    return [Route("/fapi/v1/listenKey", listen_key, methods=["POST", "PUT", "DELETE"])]
