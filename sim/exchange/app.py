"""Assembly of one sim exchange: data, clock, REST guard, routers (one per API area), streams."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.types import ASGIApp

from sim.exchange.account import SimKeyStore, account_routes
from sim.exchange.catalog import load_catalog
from sim.exchange.clock import MarketClock
from sim.exchange.config import SimExchangeConfig
from sim.exchange.control import control_routes
from sim.exchange.faults import Faults, RequestLog
from sim.exchange.guard import RestGuard
from sim.exchange.market import MarketView
from sim.exchange.rest_futures import futures_routes
from sim.exchange.rest_spot import spot_routes
from sim.exchange.state import load_or_create_state
from sim.exchange.streams import StreamHub, stream_routes

log = logging.getLogger(__name__)


class SimExchange:
    """Everything one running sim holds; ``asgi`` is what uvicorn serves."""

    def __init__(self, config: SimExchangeConfig) -> None:
        self.config = config
        state = load_or_create_state(config.state_dir, int(time.time() * 1000))
        self.catalog = load_catalog(config, state.origin_ms)
        self.faults = Faults()
        self.request_log = RequestLog()
        self.hub = StreamHub(self.faults, queue_size=config.ws_send_queue_size, max_lifetime_s=config.ws_max_lifetime_s)
        self.clock = MarketClock(
            self.catalog,
            state,
            state_dir=config.state_dir,
            speed=config.speed,
            start_offset_candles=config.start_offset_candles,
            publish=self.hub.publish,
            wait_for_subscribers=self.hub.wait_for_kline_subscribers,
            save_interval_s=config.state_save_interval_s,
        )
        self.market = MarketView(self.catalog, lambda: self.clock.virtual_now_ms)
        self.keys = SimKeyStore()
        routes = [
            *spot_routes(self.market, config.weight_limit_per_minute),
            *futures_routes(self.market, config.weight_limit_per_minute),
            *account_routes(self.keys),
            *stream_routes(self.hub),
            *control_routes(self.clock, self.hub, self.faults, self.request_log, config.tiling),
        ]
        self.starlette = Starlette(routes=routes, lifespan=self._lifespan)
        self.asgi: ASGIApp = RestGuard(self.starlette, self.faults, self.request_log, config.weight_limit_per_minute)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        clock_task = asyncio.create_task(self.clock.run(), name="sim-exchange-clock")
        log.info(
            "sim exchange: origin %d, virtual now %d, speed %s",
            self.clock.origin_ms,
            self.clock.virtual_now_ms,
            self.config.speed,
        )
        try:
            yield
        finally:
            await self.hub.close_all()
            clock_task.cancel()
            await asyncio.gather(clock_task, return_exceptions=True)
