"""Lockstep mode: the clock holds after each candle close until the client has acknowledged it and no
order request is in flight, so a system that trades on closed candles gets the fills of a backtest
whose fill rule is "next open" (README "Lockstep").

The hold sits after every event of the close instant: at that instant the closing candle's successor
has opened too (a candle closes when its successor opens), so the price orders fill at during the
hold is the successor's open. ``/sim/lockstep`` shows and acknowledges; order handlers wrapped in
``tracked`` count as in flight from their first byte to their reply (held replies included)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from sim.exchange.rest_common import Endpoint

log = logging.getLogger(__name__)
ACK_BODY = 'the body must be {"up_to": <virtual ms>}: the closeTime (kline "T") of the last candle handled'


class Lockstep:
    def __init__(self, enabled: bool, timeout_s: float) -> None:
        self.enabled = enabled
        self.timeout_s = timeout_s
        # Binance closeTime (close instant - 1 ms) of the last candle closed, and of the last acknowledged.
        self.closed_up_to: int | None = None
        self.acked_up_to: int | None = None
        self.in_flight = 0
        self.timeouts = 0
        self.holding = False
        self._changed = asyncio.Event()

    def candle_closed(self, close_ms: int) -> None:
        if self.enabled:
            self.closed_up_to = max(close_ms - 1, self.closed_up_to or close_ms - 1)

    def _free(self) -> bool:
        acked = self.closed_up_to is None or (self.acked_up_to is not None and self.acked_up_to >= self.closed_up_to)
        return acked and self.in_flight == 0

    async def hold_before(self, event_ms: int) -> bool:
        """Wait before an event later than the last close instant until that close is acknowledged and
        no order request is in flight, or until the timeout. True when the clock had to wait."""
        if not self.enabled or self.closed_up_to is None or event_ms <= self.closed_up_to + 1 or self._free():
            return False
        deadline = time.monotonic() + self.timeout_s
        self.holding = True
        try:
            while not self._free():
                self._changed.clear()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.timeouts += 1
                    log.warning(
                        "sim exchange lockstep: no acknowledgement of %d (in flight: %d) within %.1f s; moving on",
                        self.closed_up_to,
                        self.in_flight,
                        self.timeout_s,
                    )
                    break
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    continue
        finally:
            self.holding = False
        self.closed_up_to = None
        return True

    def ack(self, up_to: int) -> None:
        self.acked_up_to = max(up_to, self.acked_up_to if self.acked_up_to is not None else up_to)
        self._changed.set()

    def tracked(self, handler: Endpoint) -> Endpoint:
        """Count the handler's requests as order requests in flight."""

        async def endpoint(request: Request) -> Response:
            self.in_flight += 1
            try:
                return await handler(request)
            finally:
                self.in_flight -= 1
                self._changed.set()

        endpoint.__name__ = handler.__name__
        return endpoint

    def view(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "timeout_s": self.timeout_s,
            "holding": self.holding,
            "waiting_for": self.closed_up_to if self.holding else None,
            "acked_up_to": self.acked_up_to,
            "in_flight": self.in_flight,
            "lockstep_timeouts": self.timeouts,
        }


def lockstep_routes(lockstep: Lockstep) -> list[Route]:
    async def show(request: Request) -> Response:
        return JSONResponse(lockstep.view())

    async def ack(request: Request) -> Response:
        if not lockstep.enabled:
            return JSONResponse({"error": "lockstep is off (start the sim with lockstep=True)"}, status_code=409)
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = None
        up_to = body.get("up_to") if isinstance(body, dict) else None
        if not isinstance(body, dict) or set(body) != {"up_to"} or type(up_to) is not int:
            return JSONResponse({"error": ACK_BODY}, status_code=400)
        lockstep.ack(up_to)
        return JSONResponse(lockstep.view())

    return [Route("/sim/lockstep", show), Route("/sim/lockstep/ack", ack, methods=["POST"])]
