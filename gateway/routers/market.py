"""Public market data: latest prices, an overview, candles, and chart data with indicators. An
adapter over ``services.market.MarketData``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from gateway.deps import ExchangeDep, MarketDep
from gateway.errors import RejectedOut
from services.market import INDICATORS
from trading.candle import Candle

router = APIRouter(prefix="/api", tags=["market"])

Timeframe = Literal["1m", "5m", "15m", "1h", "4h", "1d"]
Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: {"description": "No data for this symbol"}}
BAD_INPUT: Responses = {422: {"model": RejectedOut, "description": "Invalid timeframe, range or indicator"}}
EXCHANGE_DOWN: Responses = {503: {"description": "The exchange cannot be reached right now"}}
MarketName = Annotated[Literal["futures", "spot"], Query(description="futures: USDⓈ-M perpetuals; spot")]

SymbolPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9]{2,20}$", description="e.g. BTCUSDT")]


class CandleOut(BaseModel):
    open_time: int = Field(description="ms since the epoch, UTC (market time)")
    close_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class CandlesResponse(BaseModel):
    symbol: str
    timeframe: str
    source_interval: str = Field(description="the stored interval the candles come from (aggregated when larger)")
    candles: list[CandleOut]


class ChartResponse(CandlesResponse):
    indicators: dict[str, list[float | None]]


class PriceOut(BaseModel):
    symbol: str
    price: float
    time: int = Field(description="market time of the price, ms")


class OverviewItem(BaseModel):
    symbol: str
    interval: str
    price: float
    time: int
    price_change_24h: float
    price_change_pct_24h: float
    high_24h: float
    low_24h: float
    volume_24h: float


def _out(c: Candle) -> CandleOut:
    return CandleOut(open_time=c.open_time, close_time=c.close_time, open=c.open, high=c.high, low=c.low,
                     close=c.close, volume=c.volume)


@router.get("/candles/{symbol}/{timeframe}", response_model=CandlesResponse, responses={**NOT_FOUND, **BAD_INPUT})
async def get_candles(
    market: MarketDep,
    symbol: SymbolPath,
    timeframe: Timeframe,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    start: Annotated[int | None, Query(alias="from", ge=0, le=2**53, description="open time ≥ this (ms)")] = None,
    end: Annotated[int | None, Query(alias="to", ge=0, le=2**53, description="open time ≤ this (ms)")] = None,
) -> CandlesResponse:
    found = await market.candles(symbol, timeframe, limit, start, end)
    return CandlesResponse(symbol=found.symbol, timeframe=timeframe, source_interval=found.source_interval,
                           candles=[_out(c) for c in found.candles])


@router.get("/chart/{symbol}/{timeframe}", response_model=ChartResponse, responses={**NOT_FOUND, **BAD_INPUT})
async def get_chart(
    market: MarketDep,
    symbol: SymbolPath,
    timeframe: Timeframe,
    indicators: Annotated[str, Query(description=f"comma-separated: {', '.join(INDICATORS)}")] = "rsi,macd",
    limit: Annotated[int, Query(ge=1, le=1000)] = 300,
) -> ChartResponse:
    wanted = [name.strip() for name in indicators.split(",") if name.strip()]
    found = await market.chart(symbol, timeframe, wanted, limit)
    return ChartResponse(symbol=found.symbol, timeframe=timeframe, source_interval=found.source_interval,
                         candles=[_out(c) for c in found.candles], indicators=found.indicators)


@router.get("/prices", response_model=list[PriceOut])
async def get_prices(market: MarketDep) -> list[PriceOut]:
    return [PriceOut(**asdict(p)) for p in await market.prices()]


@router.get("/overview", response_model=list[OverviewItem])
async def get_overview(market: MarketDep) -> list[OverviewItem]:
    return [OverviewItem(**asdict(item)) for item in await market.overview()]


class SymbolFiltersOut(BaseModel):
    """A symbol the exchange lists, with the filters every order on it must pass."""

    symbol: str
    market: Literal["futures", "spot"]
    status: str = Field(description="TRADING when orders are accepted")
    base_asset: str
    quote_asset: str = Field(description="the currency prices, fees and profit are in")
    tick_size: float = Field(description="prices are multiples of this")
    step_size: float = Field(description="quantities are multiples of this")
    min_qty: float
    min_notional: float = Field(description="smallest order value, in the quote asset")
    price_decimals: int = Field(description="decimals a price shows (from the tick size)")
    quantity_decimals: int


@router.get("/market/symbols", response_model=list[SymbolFiltersOut], responses={**BAD_INPUT, **EXCHANGE_DOWN})
async def list_symbols(
    exchange: ExchangeDep,
    market: MarketName = "futures",
    quote_asset: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9]{2,10}$", description="e.g. USDT")] = None,
) -> list[SymbolFiltersOut]:
    return [SymbolFiltersOut(**asdict(f)) for f in await exchange.symbols(market, quote_asset)]


@router.get("/market/symbols/{symbol}", response_model=SymbolFiltersOut,
            responses={**NOT_FOUND, **BAD_INPUT, **EXCHANGE_DOWN})
async def get_symbol(exchange: ExchangeDep, symbol: SymbolPath, market: MarketName = "futures") -> SymbolFiltersOut:
    return SymbolFiltersOut(**asdict(await exchange.symbol(symbol, market)))
