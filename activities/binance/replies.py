"""Parsing Binance REST replies into our models; a bad entry raises ``BadExchangeData``."""

from __future__ import annotations

import math
from typing import Any

from activities.binance.models import BookTicker, FundingRate, SymbolInfo, Ticker24h
from activities.binance.validation import BadExchangeData, number, positive


def _filter(entry: dict[str, Any], filter_type: str) -> dict[str, Any]:
    for f in entry.get("filters", []):
        if isinstance(f, dict) and f.get("filterType") == filter_type:
            return f
    raise BadExchangeData("bad_shape", f"{entry.get('symbol')}: no {filter_type} filter")


def parse_symbol_info(entry: Any) -> SymbolInfo:
    if not isinstance(entry, dict) or not isinstance(entry.get("symbol"), str):
        raise BadExchangeData("bad_shape", "a symbol entry needs a 'symbol' string")
    price, lot = _filter(entry, "PRICE_FILTER"), _filter(entry, "LOT_SIZE")
    notional = next(
        (
            f
            for f in entry.get("filters", [])
            if isinstance(f, dict) and f.get("filterType") in ("NOTIONAL", "MIN_NOTIONAL")
        ),
        {"minNotional": "0"},
    )
    # Spot NOTIONAL says minNotional; USDⓈ-M MIN_NOTIONAL says notional.
    min_notional = notional.get("minNotional", notional.get("notional"))
    return SymbolInfo(
        entry["symbol"],
        str(entry.get("status", "")),
        str(entry.get("baseAsset", "")),
        str(entry.get("quoteAsset", "")),
        positive(number(price.get("tickSize"), "tickSize"), "tickSize"),
        number(price.get("minPrice"), "minPrice"),
        number(price.get("maxPrice"), "maxPrice"),
        positive(number(lot.get("stepSize"), "stepSize"), "stepSize"),
        number(lot.get("minQty"), "minQty"),
        number(lot.get("maxQty"), "maxQty"),
        number(min_notional, "minNotional"),
    )


def parse_ticker(entry: Any) -> Ticker24h:
    if not isinstance(entry, dict) or not isinstance(entry.get("symbol"), str):
        raise BadExchangeData("bad_shape", "a ticker needs a 'symbol' string")
    open_time, close_time = entry.get("openTime"), entry.get("closeTime")
    if not isinstance(open_time, int) or not isinstance(close_time, int):
        raise BadExchangeData("bad_shape", "a ticker needs integer openTime and closeTime")
    volume = number(entry.get("volume"), "volume")
    if not volume >= 0:
        raise BadExchangeData("bad_value", f"volume must not be negative, got {volume}")
    change = number(entry.get("priceChangePercent"), "priceChangePercent")
    if not math.isfinite(change):
        raise BadExchangeData("bad_value", f"priceChangePercent is {change}")
    return Ticker24h(
        entry["symbol"],
        positive(number(entry.get("lastPrice"), "lastPrice"), "lastPrice"),
        positive(number(entry.get("openPrice"), "openPrice"), "openPrice"),
        positive(number(entry.get("highPrice"), "highPrice"), "highPrice"),
        positive(number(entry.get("lowPrice"), "lowPrice"), "lowPrice"),
        volume,
        number(entry.get("quoteVolume"), "quoteVolume"),
        change,
        open_time,
        close_time,
    )


def parse_funding_rate(entry: Any) -> FundingRate:
    if not isinstance(entry, dict) or not isinstance(entry.get("symbol"), str):
        raise BadExchangeData("bad_shape", "a funding row needs a 'symbol' string")
    funding_time = entry.get("fundingTime")
    if not isinstance(funding_time, int) or isinstance(funding_time, bool):
        raise BadExchangeData("bad_shape", "a funding row needs an integer fundingTime")
    rate = number(entry.get("fundingRate"), "fundingRate")
    if not math.isfinite(rate):
        raise BadExchangeData("bad_value", f"fundingRate is {rate}")
    mark = entry.get("markPrice")
    return FundingRate(
        entry["symbol"],
        funding_time,
        rate,
        None if mark in (None, "") else positive(number(mark, "markPrice"), "markPrice"),
    )


def parse_book_ticker(entry: Any) -> BookTicker:
    if not isinstance(entry, dict) or not isinstance(entry.get("symbol"), str):
        raise BadExchangeData("bad_shape", "a book ticker needs a 'symbol' string")
    bid = positive(number(entry.get("bidPrice"), "bidPrice"), "bidPrice")
    ask = positive(number(entry.get("askPrice"), "askPrice"), "askPrice")
    if ask < bid:
        raise BadExchangeData("bad_value", f"askPrice {ask} is below bidPrice {bid}")
    time = entry.get("time")
    if time is not None and not isinstance(time, int):
        raise BadExchangeData("bad_shape", "a book ticker's time must be an integer")
    return BookTicker(entry["symbol"], bid, ask, time)
