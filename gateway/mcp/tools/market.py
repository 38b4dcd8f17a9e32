"""Market: prices, candles, charts with indicators and the exchange's symbols (PUBLIC), and adding a
symbol to the paper session (SENSITIVE)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Literal

from pydantic import Field

from gateway.mcp.registry import IdempotencyKey, current, tool
from gateway.paper.schemas import SymbolsOut
from gateway.routers.market import (
    CandlesResponse,
    ChartResponse,
    OverviewItem,
    PriceOut,
    SymbolFiltersOut,
    Timeframe,
    get_candles,
    get_chart,
    get_overview,
    get_prices,
)
from services.errors import NotFound, Rejected
from services.market import INDICATORS

Symbol = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{2,20}$", description="e.g. BTCUSDT")]
MarketName = Annotated[Literal["futures", "spot"], Field(description="futures: USDⓈ-M perpetuals; spot")]


@tool("Market", "public", title="Latest prices", read_only=True)
async def get_market_prices() -> list[PriceOut]:
    """The latest price of every symbol the market feed follows, with its market time (ms)."""
    return await get_prices(current().services.market)


@tool("Market", "public", title="Latest price of a symbol", read_only=True)
async def get_price(symbol: Symbol) -> PriceOut:
    """The latest price of one symbol the market feed follows (not found when it follows no such symbol)."""
    wanted = symbol.upper()
    for price in await get_prices(current().services.market):
        if price.symbol == wanted:
            return price
    raise NotFound(f"the market feed follows no {wanted}")


@tool("Market", "public", title="Market overview", read_only=True)
async def get_market_overview() -> list[OverviewItem]:
    """Each followed symbol's price with its 24-hour change, high, low and volume."""
    return await get_overview(current().services.market)


@tool("Market", "public", title="Candles", read_only=True)
async def get_market_candles(
    symbol: Symbol, timeframe: Timeframe = "1h",
    limit: Annotated[int, Field(ge=1, le=1000)] = 200,
    start: Annotated[int | None, Field(ge=0, le=2**53, description="open time ≥ this (ms)")] = None,
    end: Annotated[int | None, Field(ge=0, le=2**53, description="open time ≤ this (ms)")] = None,
) -> CandlesResponse:
    """OHLCV candles of a symbol (market time, ms), the newest `limit` in the range; larger timeframes are
    aggregated from the stored interval."""
    return await get_candles(current().services.market, symbol, timeframe, limit, start, end)


@tool("Market", "public", title="Chart with indicators", read_only=True)
async def get_chart_data(
    symbol: Symbol, timeframe: Timeframe = "1h",
    indicators: Annotated[list[str], Field(max_length=10, description=f"any of {', '.join(INDICATORS)}")] = [],  # noqa: B006
    limit: Annotated[int, Field(ge=1, le=1000)] = 300,
) -> ChartResponse:
    """Candles with technical indicators computed over them (default RSI and MACD), aligned by candle."""
    for name in indicators:
        if name not in INDICATORS:
            raise Rejected("indicators", f"unknown indicator {name!r}; choose from {', '.join(INDICATORS)}")
    return await get_chart(current().services.market, symbol, timeframe, ",".join(indicators or ["rsi", "macd"]),
                           limit)


@tool("Market", "public", title="Exchange symbols", read_only=True, open_world=True)
async def list_exchange_symbols(
    market: MarketName = "futures",
    quote_asset: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9]{2,10}$", description="e.g. USDT")] = None,
) -> list[SymbolFiltersOut]:
    """The symbols the exchange lists on a market, with the filters every order must pass (tick size, step
    size, minimum quantity and notional)."""
    found = await current().services.exchange.symbols(market, quote_asset)
    return [SymbolFiltersOut(**asdict(f)) for f in found]


@tool("Market", "public", title="A symbol's order filters", read_only=True, open_world=True)
async def get_symbol_filters(symbol: Symbol, market: MarketName = "futures") -> SymbolFiltersOut:
    """One symbol's trading status and order filters on the exchange."""
    return SymbolFiltersOut(**asdict(await current().services.exchange.symbol(symbol, market)))


@tool("Market", "sensitive", title="Add a symbol to the paper session", idempotent=True)
async def add_symbol(symbol: Symbol, idempotency_key: IdempotencyKey) -> SymbolsOut:
    """Add a symbol the exchange lists to the paper session's traded symbols (already there: unchanged)."""
    call = current()
    paper = call.services.paper
    now = await paper.symbols(call.principal)
    wanted = symbol.upper()
    chosen = list(now.symbols) if wanted in now.symbols else [*now.symbols, wanted]
    return SymbolsOut(**asdict(await paper.update_symbols(call.principal, chosen, idempotency_key)))
