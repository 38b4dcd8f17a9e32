"""Binance JSON shapes: numbers as decimal strings, times as integer milliseconds."""

from __future__ import annotations

from typing import Any

from sim.exchange.trades import TradeRecord
from trading.candle import Candle


def decimal_text(value: float) -> str:
    """Binance's 8-decimal text when it round-trips exactly, else the shortest exact text."""
    fixed = f"{value:.8f}"
    return fixed if float(fixed) == value else repr(value)


def quote_volume_estimate(candle: Candle) -> float:
    # The files hold base volume only; quote volume is estimated at the typical price.
    return round(candle.volume * (candle.high + candle.low + candle.close) / 3.0, 8)


def kline_row(candle: Candle) -> list[Any]:
    """One ``GET /api/v3/klines`` row. Trade counts and taker volumes are not in the data: 0."""
    return [
        candle.open_time,
        decimal_text(candle.open),
        decimal_text(candle.high),
        decimal_text(candle.low),
        decimal_text(candle.close),
        decimal_text(candle.volume),
        candle.close_time - 1,
        decimal_text(quote_volume_estimate(candle)),
        0,
        "0",
        "0",
        "0",
    ]


def mark_kline_row(candle: Candle) -> list[Any]:
    """``GET /fapi/v1/markPriceKlines``: prices only; Binance sends the volume fields as "0"."""
    return [
        candle.open_time,
        decimal_text(candle.open),
        decimal_text(candle.high),
        decimal_text(candle.low),
        decimal_text(candle.close),
        "0",
        candle.close_time - 1,
        "0",
        0,
        "0",
        "0",
        "0",
    ]


def opening_candle(candle: Candle) -> Candle:
    """What is known of a candle at its first instant: its open price, no volume."""
    return Candle(
        candle.open_time,
        candle.open,
        candle.open,
        candle.open,
        candle.open,
        0.0,
        candle.interval_ms,
        candle.symbol,
    )


def kline_event(candle: Candle, interval: str, event_time_ms: int, closed: bool) -> dict[str, Any]:
    return {
        "e": "kline",
        "E": event_time_ms,
        "s": candle.symbol,
        "k": {
            "t": candle.open_time,
            "T": candle.close_time - 1,
            "s": candle.symbol,
            "i": interval,
            "f": -1,
            "L": -1,
            "o": decimal_text(candle.open),
            "c": decimal_text(candle.close),
            "h": decimal_text(candle.high),
            "l": decimal_text(candle.low),
            "v": decimal_text(candle.volume),
            "n": 0,
            "x": closed,
            "q": decimal_text(quote_volume_estimate(candle)),
            "V": "0",
            "Q": "0",
            "B": "0",
        },
    }


def trade_event(symbol: str, trade: TradeRecord) -> dict[str, Any]:
    return {
        "e": "trade",
        "E": trade.time_ms,
        "s": symbol,
        "t": trade.trade_id,
        "p": decimal_text(trade.price),
        "q": decimal_text(trade.quantity),
        "T": trade.time_ms,
        "m": trade.buyer_is_maker,
        "M": True,
    }


def ticker_24h(symbol: str, window: list[Candle], now_ms: int) -> dict[str, Any]:
    first, last = window[0], window[-1]
    volume = round(sum(c.volume for c in window), 8)
    quote_volume = round(sum(quote_volume_estimate(c) for c in window), 8)
    change = last.close - first.open
    return {
        "symbol": symbol,
        "priceChange": decimal_text(change),
        "priceChangePercent": f"{100.0 * change / first.open:.3f}",
        "weightedAvgPrice": decimal_text(round(quote_volume / volume, 8) if volume > 0 else last.close),
        "prevClosePrice": decimal_text(first.open),
        "lastPrice": decimal_text(last.close),
        "lastQty": "0.00000000",
        "bidPrice": decimal_text(last.close),
        "bidQty": "0.00000000",
        "askPrice": decimal_text(last.close),
        "askQty": "0.00000000",
        "openPrice": decimal_text(first.open),
        "highPrice": decimal_text(max(c.high for c in window)),
        "lowPrice": decimal_text(min(c.low for c in window)),
        "volume": decimal_text(volume),
        "quoteVolume": decimal_text(quote_volume),
        "openTime": first.open_time,
        "closeTime": now_ms,
        "firstId": -1,
        "lastId": -1,
        "count": 0,
    }


def book_row(symbol: str, price: float) -> dict[str, Any]:
    """A book ticker whose best bid and ask are both ``price`` (the sim keeps no order book)."""
    text = decimal_text(price)
    return {"symbol": symbol, "bidPrice": text, "bidQty": "1000000.00000000", "askPrice": text,
            "askQty": "1000000.00000000"}
