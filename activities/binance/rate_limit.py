"""The request gate shared by every call of one REST client.

It reads the used weight from ``X-MBX-USED-WEIGHT-1M``, waits for the next minute when a request
would pass the limit, holds every request back until a 429's ``Retry-After`` has passed, and after
a 418 refuses to send at all until the ban ends (and raises the alert once per ban)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager

from activities.binance.models import BanAlert
from activities.exchange_errors import IpBannedError

log = logging.getLogger(__name__)

BanHook = Callable[[BanAlert], Awaitable[None] | None]


class RequestGate:
    def __init__(
        self,
        *,
        weight_limit: int = 6000,
        max_in_flight: int = 1,
        on_ban: BanHook | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if weight_limit < 1 or max_in_flight < 1:
            raise ValueError("weight_limit and max_in_flight must be at least 1")
        self.weight_limit = weight_limit
        self._on_ban = on_ban
        self._wall = wall_clock
        # One request at a time by default: a second request already in flight when a 429 arrives
        # would land inside the Retry-After window, which Binance answers with a ban.
        self._slots = asyncio.Semaphore(max_in_flight)
        self._resume_at = 0.0
        self._banned_until = 0.0
        self._ban_message = ""
        self.used_weight = 0
        self._weight_minute = -1
        self.server_offset_ms = 0
        self.ban_alerts = 0

    @property
    def banned(self) -> bool:
        return self._wall() < self._banned_until

    def _server_wall(self) -> float:
        return self._wall() + self.server_offset_ms / 1000.0

    def _raise_if_banned(self) -> None:
        if self.banned:
            raise IpBannedError(
                f"requests stopped: the exchange banned this IP ({self._ban_message})",
                retry_after_s=self._banned_until - self._wall(),
            )

    @asynccontextmanager
    async def slot(self, weight: int) -> AsyncIterator[None]:
        self._raise_if_banned()
        async with self._slots:
            while True:
                self._raise_if_banned()
                wait = self._resume_at - self._wall()
                minute = int(self._server_wall() // 60)
                if wait <= 0 and minute == self._weight_minute and self.used_weight + weight > self.weight_limit:
                    wait = (minute + 1) * 60 - self._server_wall() + 0.05
                if wait <= 0:
                    break
                log.info("binance: holding requests for %.2f s (rate limit)", wait)
                await asyncio.sleep(wait)
            yield

    def record_weight(self, headers: Mapping[str, str]) -> None:
        value = headers.get("x-mbx-used-weight-1m")
        if value is not None and value.isdigit():
            self.used_weight = int(value)
            self._weight_minute = int(self._server_wall() // 60)

    def record_retry_after(self, seconds: float) -> None:
        self._resume_at = max(self._resume_at, self._wall() + seconds)

    async def record_ban(self, seconds: float, message: str, code: int | None) -> BanAlert:
        self._banned_until = max(self._banned_until, self._wall() + seconds)
        self._ban_message = message
        self.ban_alerts += 1
        alert = BanAlert(message, code, seconds, int(self._banned_until * 1000))
        log.error("binance: IP banned for %.0f s (%s); all requests stopped", seconds, message)
        if self._on_ban is not None:
            result = self._on_ban(alert)
            if inspect.isawaitable(result):
                await result
        return alert
