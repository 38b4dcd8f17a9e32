"""Assembly of one sim exchange: data, clock, REST guard, routers (one per API area), streams."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal

from starlette.applications import Starlette
from starlette.types import ASGIApp

from sim.exchange.account import SimApiKey, SimKeyStore, account_routes
from sim.exchange.catalog import load_catalog
from sim.exchange.clock import MarketClock, MarketEvent
from sim.exchange.config import SimExchangeConfig
from sim.exchange.control import control_routes
from sim.exchange.faults import Faults, RequestLog
from sim.exchange.futures_account import futures_account_routes
from sim.exchange.futures_book import FeeSchedule, FuturesBook
from sim.exchange.futures_engine import FuturesEngine
from sim.exchange.futures_trading import futures_trading_routes
from sim.exchange.futures_venue import FuturesVenue
from sim.exchange.guard import RestGuard
from sim.exchange.lockstep import Lockstep, lockstep_routes
from sim.exchange.market import MarketView
from sim.exchange.order_faults import OrderFaults
from sim.exchange.rest_futures import futures_routes
from sim.exchange.rest_spot import spot_routes
from sim.exchange.spot_book import SpotBook, fixed
from sim.exchange.spot_engine import SpotEngine
from sim.exchange.spot_stream import SpotStreams, spot_stream_routes
from sim.exchange.spot_trading import spot_trading_routes
from sim.exchange.state import load_or_create_state
from sim.exchange.streams import StreamHub, stream_routes
from sim.exchange.trading_control import trading_control_routes
from sim.exchange.trading_state import TradingStore
from sim.exchange.user_stream import ListenKeys, listen_key_routes

log = logging.getLogger(__name__)


class SimExchange:
    """Everything one running sim holds; ``asgi`` is what uvicorn serves."""

    def __init__(self, config: SimExchangeConfig) -> None:
        self.config = config
        state = load_or_create_state(config.state_dir, int(time.time() * 1000))
        self.catalog = load_catalog(config, state.origin_ms)
        self.faults = Faults()
        self.request_log = RequestLog()
        self.lockstep = Lockstep(config.lockstep, config.lockstep_timeout_s)
        self.hub = StreamHub(self.faults, queue_size=config.ws_send_queue_size, max_lifetime_s=config.ws_max_lifetime_s)
        self.clock = MarketClock(
            self.catalog,
            state,
            state_dir=config.state_dir,
            speed=config.speed,
            start_offset_candles=config.start_offset_candles,
            publish=self._publish,
            wait_for_subscribers=self.hub.wait_for_kline_subscribers,
            save_interval_s=config.state_save_interval_s,
            lockstep=self.lockstep,
        )
        self.market = MarketView(self.catalog, lambda: self.clock.virtual_now_ms)
        self.keys = SimKeyStore()
        self.book = FuturesBook(FeeSchedule(Decimal(repr(config.taker_fee_rate)), Decimal(repr(config.maker_fee_rate))))
        self.engine = FuturesEngine(self.book, self.market, config.slippage_bps)
        self.spot_book = SpotBook(Decimal(repr(config.spot_fee_rate)))
        self.spot_engine = SpotEngine(self.spot_book, self.market, config.slippage_bps)
        self.spot_streams = SpotStreams(self.keys)
        self.listen_keys = ListenKeys(self.hub)
        self.hub.is_user_stream = self.listen_keys.is_live
        self.trading_store = TradingStore(config.state_dir, self.keys, self.book, self.spot_book, self.listen_keys)
        self.trading_store.load()
        for cursor_owner in (self.book, self.spot_book):
            if cursor_owner.matched_through_ms is None:
                cursor_owner.matched_through_ms = self.clock.virtual_now_ms
        order_faults = OrderFaults()
        self.venue = FuturesVenue(
            self.keys,
            self.book,
            self.engine,
            self.listen_keys,
            order_faults,
            self.trading_store,
            (config.order_limit_per_10s, config.order_limit_per_minute),
            self.lockstep,
        )
        routes = [
            *spot_routes(self.market, config.weight_limit_per_minute),
            *futures_routes(self.market, config.weight_limit_per_minute),
            *account_routes(self.keys, self._spot_balances),
            *spot_trading_routes(self.keys, self.spot_engine, order_faults, self.lockstep, self._spot_commit),
            *futures_trading_routes(self.venue),
            *futures_account_routes(self.venue),
            *listen_key_routes(self.keys, self.listen_keys),
            *trading_control_routes(self.venue, self.spot_book),
            *stream_routes(self.hub),
            *spot_stream_routes(self.spot_streams),
            *control_routes(self.clock, self.hub, self.faults, self.request_log, config.tiling, self.lockstep),
            *lockstep_routes(self.lockstep),
        ]
        self.starlette = Starlette(routes=routes, lifespan=self._lifespan)
        self.asgi: ASGIApp = RestGuard(self.starlette, self.faults, self.request_log, config.weight_limit_per_minute)

    def _spot_balances(self, key: SimApiKey) -> list[tuple[str, str, str]]:
        wallet = self.spot_book.wallet(key.api_key, key.balances)
        return [(asset, fixed(free), fixed(locked)) for asset, free, locked in wallet.balances()]

    async def _spot_commit(self) -> None:
        """Persist the trading state and send the spot user-data events of the last change."""
        self.trading_store.save()
        await self.spot_streams.publish(self.spot_book.take_events())

    async def _publish(self, event: MarketEvent) -> None:
        """Market events go out first; then the books match what the clock has closed."""
        await self.hub.publish(event)
        self.engine.on_market_time(event.time_ms)
        self.spot_engine.on_market_time(event.time_ms)
        if self.book.outbox:
            await self.venue.commit()
        if self.spot_book.outbox:
            await self._spot_commit()

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
            await self.spot_streams.close_all()
            await self.hub.close_all()
            clock_task.cancel()
            await asyncio.gather(clock_task, return_exceptions=True)
