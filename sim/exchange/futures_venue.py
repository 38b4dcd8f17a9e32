"""What the USDⓈ-M trading routes share: keys, book, engine, listen keys, order faults, persistence,
and Binance's per-account order-count limits."""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from decimal import Decimal, InvalidOperation

from starlette.datastructures import QueryParams
from starlette.requests import Request

from sim.exchange.account import SimApiKey, SimKeyStore, authenticate
from sim.exchange.errors import BinanceApiError, illegal_chars, invalid_symbol, mandatory_missing
from sim.exchange.futures_book import Account, AlgoOrder, FuturesBook
from sim.exchange.futures_engine import FuturesEngine
from sim.exchange.lockstep import Lockstep
from sim.exchange.order_faults import OrderFaults
from sim.exchange.params import symbol_param
from sim.exchange.trading_state import TradingStore
from sim.exchange.user_stream import ListenKeys

_DECIMAL = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
DECIMAL_RANGE = "^([0-9]{1,20})(\\.[0-9]{1,20})?$"


class FuturesVenue:
    def __init__(
        self,
        keys: SimKeyStore,
        book: FuturesBook,
        engine: FuturesEngine,
        listen_keys: ListenKeys,
        faults: OrderFaults,
        store: TradingStore,
        order_limits: tuple[int, int],
        lockstep: Lockstep,
    ) -> None:
        self.keys = keys
        self.book = book
        self.engine = engine
        self.listen_keys = listen_keys
        self.faults = faults
        self.store = store
        self.limit_10s, self.limit_1m = order_limits
        self.lockstep = lockstep
        self._order_times: dict[str, deque[float]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def now_ms(self) -> int:
        return self.engine.market.now_ms

    async def signed(self, request: Request) -> tuple[SimApiKey, Account, QueryParams]:
        """Authenticate a signed futures request (query or form body); the key needs futures."""
        body = (await request.body()).decode() if request.method != "GET" else ""
        key = authenticate(request, self.keys, body)
        if not key.enable_futures:
            raise BinanceApiError(-2015, "Invalid API-key, IP, or permissions for action.", http_status=401)
        params = QueryParams("&".join(p for p in (request.scope.get("query_string", b"").decode(), body) if p))
        wallet = Decimal(key.balances.get("USDT", "0"))
        return key, self.book.account(key.api_key, wallet), params

    def symbol(self, params: QueryParams, required: bool = True) -> str | None:
        symbol = symbol_param(params, required=required)
        if symbol is not None and symbol not in self.engine.market.catalog.futures_symbols:
            raise invalid_symbol()
        return symbol

    async def commit(self) -> None:
        """Persist the trading state and send the user-data events of the last change."""
        self.store.save()
        await self.listen_keys.publish(self.book.take_events())

    def lose_later(self, algo: AlgoOrder, seconds: float, status: str) -> None:
        """The ``lose_protective`` fault: the accepted algo order silently ends after ``seconds``."""

        async def lose() -> None:
            await asyncio.sleep(seconds)
            if algo.is_open:
                self.book.set_algo_status(algo, status, self.now_ms)
                await self.commit()

        task = asyncio.get_running_loop().create_task(lose())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def count_order(self, api_key: str) -> dict[str, str]:
        """Count one new order against the account's limits; past them: 429 -1015."""
        now = time.monotonic()
        times = self._order_times.setdefault(api_key, deque())
        while times and now - times[0] > 60:
            times.popleft()
        in_10s = sum(1 for t in times if now - t <= 10)
        if in_10s >= self.limit_10s or len(times) >= self.limit_1m:
            limit, window = (self.limit_10s, "TEN_SECONDS") if in_10s >= self.limit_10s else (self.limit_1m, "MINUTE")
            raise BinanceApiError(-1015, f"Too many new orders; current limit is {limit} orders per {window}.", 429)
        times.append(now)
        return {"X-MBX-ORDER-COUNT-10S": str(in_10s + 1), "X-MBX-ORDER-COUNT-1M": str(len(times))}


def decimal_param(params: QueryParams, name: str, *, required: bool) -> Decimal | None:
    value = params.get(name)
    if value is None or value == "":
        if required:
            raise mandatory_missing(name)
        return None
    if not _DECIMAL.match(value):
        raise illegal_chars(name, DECIMAL_RANGE)
    try:
        return Decimal(value).normalize()
    except InvalidOperation:
        raise illegal_chars(name, DECIMAL_RANGE) from None


def enum_param(
    params: QueryParams, name: str, allowed: tuple[str, ...], error: BinanceApiError, default: str | None = None
) -> str:
    value = params.get(name) or default
    if value is None:
        raise mandatory_missing(name)
    if value not in allowed:
        raise error
    return value


def bool_param(params: QueryParams, name: str) -> bool:
    value = (params.get(name) or "false").lower()
    if value not in ("true", "false"):
        raise BinanceApiError(-1130, f"Data sent for parameter '{name}' is not valid.")
    return value == "true"
