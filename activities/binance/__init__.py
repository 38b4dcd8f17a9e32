"""The product's Binance client: REST (httpx) and market streams (websockets)."""

from activities.binance.models import (
    BanAlert,
    BookTicker,
    ClosedKline,
    FundingRate,
    StreamConnected,
    StreamEvent,
    SymbolInfo,
    Ticker24h,
    TradeTick,
)
from activities.binance.rate_limit import RequestGate
from activities.binance.rest import BinanceRestClient
from activities.binance.stream import BinanceStreamClient, kline_stream, trade_stream
from activities.binance.validation import BadDataCounter

__all__ = [
    "BadDataCounter",
    "BanAlert",
    "BinanceRestClient",
    "BinanceStreamClient",
    "BookTicker",
    "ClosedKline",
    "FundingRate",
    "RequestGate",
    "StreamConnected",
    "StreamEvent",
    "SymbolInfo",
    "Ticker24h",
    "TradeTick",
    "kline_stream",
    "trade_stream",
]
