"""The rig of the real-session tests: the sim in lockstep at speed `max` replaying a real data slice,
every worker role (the feed, tuning approvals, the real session and its orders), and a pacer that
acknowledges each close only once every session under test has finished with that candle (its
orders answered), so an order sent on candle t's close fills at candle t+1's open, as in a backtest."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from sim.exchange import SimExchangeServer
from tests.sim.conftest import sim_state

INTERVAL = "5m"
FIVE_MINUTES = 300_000
SessionDone = Callable[[int], Awaitable[bool]]
# With DURABOT_RECORD_SESSION_HISTORIES=<dir>, every real session's history of a test is written there.
RECORD_ENV = "DURABOT_RECORD_SESSION_HISTORIES"


@contextlib.asynccontextmanager
async def every_worker(client: Any, settings: Any, db: Any, identity: str) -> AsyncIterator[None]:
    """Every worker role (the feed, tuning approvals, the real queue), recording the real sessions'
    histories at the end when ``RECORD_ENV`` names a folder."""
    from core.contracts import TASK_QUEUE_REAL, task_queue_name
    from tests.conftest import record_histories, running_all
    from worker.main import build_workers

    async with running_all(build_workers(client, settings, db, identity=identity)):
        yield
        queue = task_queue_name(TASK_QUEUE_REAL, settings.task_queue_prefix)
        ids = {w.id async for w in client.list_workflows(f"TaskQueue = '{queue}'") if w.id.startswith("session:")}
        await record_histories(client, sorted(ids), RECORD_ENV)


def feed_overrides(sim: SimExchangeServer, symbol: str, backfill: int) -> dict[str, Any]:
    return {"exchange_ws_url": sim.ws_url, "feed_streams": f"{symbol}@{INTERVAL}",
            "feed_backfill_candles": backfill, "feed_source": f"test-{uuid.uuid4().hex[:8]}",
            "feed_autostart": False}


class Pacer:
    """Acknowledges the sim's held closes once every ``done(open_time)`` says the candle that opened at
    ``open_time`` was handled; counts what it acknowledged."""

    def __init__(self, sim: SimExchangeServer, done: list[SessionDone]) -> None:
        self.sim = sim
        self.done = done
        self.acked = 0
        self.last_ack = -1

    async def _step(self, http: httpx.AsyncClient) -> None:
        lockstep = (await sim_state(self.sim))["lockstep"]
        waiting = lockstep.get("waiting_for")
        if not lockstep.get("holding") or waiting is None or waiting <= self.last_ack:
            return
        open_time = waiting + 1 - FIVE_MINUTES
        if all([await done(open_time) for done in self.done]):
            reply = await http.post("/sim/lockstep/ack", json={"up_to": waiting})
            assert reply.status_code == 200, reply.text
            self.acked += 1
            self.last_ack = waiting

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Pacer]:
        async def loop() -> None:
            async with httpx.AsyncClient(base_url=self.sim.rest_url, timeout=10) as http:
                while True:
                    await self._step(http)
                    await asyncio.sleep(0.05)

        task = asyncio.create_task(loop())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def wait_until(read: Callable[[], Awaitable[Any]], predicate: Callable[[Any], bool], within_s: float) -> Any:
    """``read()`` again and again until ``predicate`` holds of it; its last value in the failure."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        value = await read()
        if predicate(value):
            return value
        if loop.time() > deadline:
            raise AssertionError(f"not reached within {within_s} s; last: {value}")
        await asyncio.sleep(0.2)


async def sim_signed(sim: SimExchangeServer, api_key: str, api_secret: str, method: str, path: str,
                     **params: Any) -> Any:
    """A signed call with the user's key straight to the sim, behind Durabot's back."""
    from tests.sim.test_sim_futures_trading import Trader

    async with httpx.AsyncClient(base_url=sim.rest_url, timeout=10) as http:
        return await Trader(http, api_key, api_secret).ok(method, path, **params)


async def place_foreign_order(sim: SimExchangeServer, api_key: str, api_secret: str, symbol: str) -> dict[str, Any]:
    """A resting LIMIT buy far below the market, placed with the user's key directly on the sim."""
    from decimal import Decimal

    from tests.sim.test_sim_futures_trading import Trader, tick_size

    async with httpx.AsyncClient(base_url=sim.rest_url, timeout=10) as http:
        book = (await http.get("/fapi/v1/ticker/bookTicker", params={"symbol": symbol})).json()
        tick = await tick_size(http, symbol)
        price = (Decimal(book["bidPrice"]) / 2).quantize(tick)
        placed: dict[str, Any] = await Trader(http, api_key, api_secret).ok(
            "POST", "/fapi/v1/order", symbol=symbol, side="BUY", type="LIMIT", timeInForce="GTC",
            quantity="0.01", price=str(price), newClientOrderId="foreign-order-1")
    return placed
