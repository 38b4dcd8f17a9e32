"""exchangeInfo entries (spot and USDⓈ-M) whose filters are derived from the replayed data."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sim.exchange.catalog import split_symbol
from sim.exchange.formats import decimal_text
from sim.exchange.series import ReplaySeries

_MIN_NOTIONAL_BY_QUOTE = {"BTC": 0.0001, "ETH": 0.001, "BNB": 0.01}


def _decimals(values: list[float]) -> int:
    """How many decimals the data uses (at most Binance's 8). Values are read at 12 significant
    digits so binary noise in a file (1.2147000000000001) does not count as precision."""
    most = 0
    for value in values:
        text = f"{value:.12g}"
        if "e" in text:
            return 8
        if "." in text:
            most = max(most, len(text.split(".")[1]))
    return min(most, 8)


def _step_text(decimals: int) -> str:
    return decimal_text(10.0**-decimals)


@dataclass(frozen=True)
class DataFilters:
    tick_size: str
    step_size: str
    max_price: str
    price_decimals: int
    quantity_decimals: int


def data_filters(series: ReplaySeries) -> DataFilters:
    """Tick and step sizes are the finest decimals the file actually uses."""
    sample = list(series.source[:2000])
    price_decimals = _decimals([p for c in sample for p in (c.open, c.high, c.low, c.close)])
    quantity_decimals = _decimals([c.volume for c in sample])
    top = max(c.high for c in series.source)
    return DataFilters(
        _step_text(price_decimals),
        _step_text(quantity_decimals),
        decimal_text(float(10 ** math.ceil(math.log10(top * 1000)))),
        price_decimals,
        quantity_decimals,
    )


def symbol_info(symbol: str, series: ReplaySeries) -> dict[str, Any]:
    """A spot exchangeInfo entry with filters derived from the data."""
    base, quote = split_symbol(symbol)
    filters = data_filters(series)
    tick, step, max_price = filters.tick_size, filters.step_size, filters.max_price
    return {
        "symbol": symbol,
        "status": "TRADING",
        "baseAsset": base,
        "baseAssetPrecision": 8,
        "quoteAsset": quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": [
            "LIMIT",
            "LIMIT_MAKER",
            "MARKET",
            "STOP_LOSS",
            "STOP_LOSS_LIMIT",
            "TAKE_PROFIT",
            "TAKE_PROFIT_LIMIT",
        ],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick, "maxPrice": max_price, "tickSize": tick},
            {"filterType": "LOT_SIZE", "minQty": step, "maxQty": "9000000.00000000", "stepSize": step},
            {
                "filterType": "NOTIONAL",
                "minNotional": decimal_text(_MIN_NOTIONAL_BY_QUOTE.get(quote, 5.0)),
                "applyMinToMarket": True,
                "maxNotional": "9000000.00000000",
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def futures_symbol_info(symbol: str, series: ReplaySeries) -> dict[str, Any]:
    """A USDⓈ-M exchangeInfo entry: a perpetual contract margined in its quote asset."""
    base, quote = split_symbol(symbol)
    filters = data_filters(series)
    return {
        "symbol": symbol,
        "pair": symbol,
        "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000,
        "onboardDate": series.first_open_time,
        "status": "TRADING",
        "baseAsset": base,
        "quoteAsset": quote,
        "marginAsset": quote,
        "pricePrecision": filters.price_decimals,
        "quantityPrecision": filters.quantity_decimals,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": filters.tick_size,
                "maxPrice": filters.max_price,
                "tickSize": filters.tick_size,
            },
            {"filterType": "LOT_SIZE", "minQty": filters.step_size, "maxQty": "9000000", "stepSize": filters.step_size},
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": filters.step_size,
                "maxQty": "9000000",
                "stepSize": filters.step_size,
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MIN_NOTIONAL", "notional": "5"},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": [
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
            "TRAILING_STOP_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }
