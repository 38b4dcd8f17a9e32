"""Refusing bad exchange data: every rejected payload is logged raw and counted, never passed on."""

from __future__ import annotations

import logging
import math
from collections import Counter
from typing import Any

from trading.candle import INTERVAL_MS, Candle, candle_problem

log = logging.getLogger(__name__)

_RAW_LOG_LIMIT = 2000


class BadExchangeData(ValueError):
    """Why one payload was refused; ``category`` names the metric bucket."""

    def __init__(self, category: str, reason: str) -> None:
        super().__init__(reason)
        self.category = category
        self.reason = reason


class BadDataCounter:
    """The bad-data metric: counts of refused payloads per category (``malformed_json``,
    ``bad_shape``, ``bad_value``, ``out_of_order``, ``duplicate``)."""

    def __init__(self) -> None:
        self.by_category: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.by_category.values())

    def reject(self, source: str, error: BadExchangeData, raw: object) -> None:
        self.by_category[error.category] += 1
        text = raw if isinstance(raw, str) else repr(raw)
        log.warning(
            "refused bad exchange data from %s (%s: %s); raw payload: %s",
            source,
            error.category,
            error.reason,
            text[:_RAW_LOG_LIMIT],
        )


def number(value: Any, name: str) -> float:
    """A Binance decimal string (or JSON number) as a float; anything else is bad data."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadExchangeData("bad_shape", f"{name} is not a number: {value!r}")
    try:
        return float(value)
    except ValueError:
        raise BadExchangeData("bad_value", f"{name} is not a number: {value!r}") from None


def integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadExchangeData("bad_shape", f"{name} is not an integer: {value!r}")
    return value


def positive(value: float, name: str) -> float:
    if not math.isfinite(value) or value <= 0:
        raise BadExchangeData("bad_value", f"{name} must be a positive finite number, got {value}")
    return value


def checked_candle(candle: Candle) -> Candle:
    problem = candle_problem(candle)
    if problem:
        raise BadExchangeData("bad_value", problem)
    return candle


def _interval_ms(open_time: int, close_time_minus_one: int, interval: str) -> int:
    step = INTERVAL_MS.get(interval)
    if step is None:
        raise BadExchangeData("bad_shape", f"unknown interval {interval!r}")
    if close_time_minus_one + 1 - open_time != step:
        raise BadExchangeData(
            "bad_value",
            f"close time {close_time_minus_one} does not end a {interval} candle opened at {open_time}",
        )
    return step


def kline_row_candle(row: Any, symbol: str, interval: str) -> Candle:
    """One ``GET /klines`` row: [openTime, o, h, l, c, v, closeTime, ...]."""
    if not isinstance(row, list) or len(row) < 7:
        raise BadExchangeData("bad_shape", "a kline row must be a list of at least 7 fields")
    open_time = integer(row[0], "open time")
    step = _interval_ms(open_time, integer(row[6], "close time"), interval)
    return checked_candle(
        Candle(
            open_time,
            number(row[1], "open"),
            number(row[2], "high"),
            number(row[3], "low"),
            number(row[4], "close"),
            number(row[5], "volume"),
            step,
            symbol,
        )
    )


def kline_event_candle(data: Any) -> tuple[str, str, Candle, bool]:
    """A ``kline`` stream event → (symbol, interval, candle, closed)."""
    if not isinstance(data, dict) or not isinstance(data.get("k"), dict):
        raise BadExchangeData("bad_shape", "a kline event needs a 'k' object")
    k = data["k"]
    symbol, interval, closed = k.get("s"), k.get("i"), k.get("x")
    if not isinstance(symbol, str) or not symbol or not isinstance(interval, str) or not isinstance(closed, bool):
        raise BadExchangeData("bad_shape", "a kline needs string 's' and 'i' and a boolean 'x'")
    open_time = integer(k.get("t"), "t")
    step = _interval_ms(open_time, integer(k.get("T"), "T"), interval)
    candle = Candle(
        open_time,
        number(k.get("o"), "o"),
        number(k.get("h"), "h"),
        number(k.get("l"), "l"),
        number(k.get("c"), "c"),
        number(k.get("v"), "v"),
        step,
        symbol,
    )
    return symbol, interval, checked_candle(candle), closed


def trade_event_fields(data: Any) -> tuple[str, int, float, float, int, bool]:
    """A ``trade`` stream event → (symbol, trade id, price, quantity, time, buyer is maker)."""
    if not isinstance(data, dict):
        raise BadExchangeData("bad_shape", "a trade event must be an object")
    symbol, maker = data.get("s"), data.get("m")
    if not isinstance(symbol, str) or not symbol or not isinstance(maker, bool):
        raise BadExchangeData("bad_shape", "a trade needs a string 's' and a boolean 'm'")
    return (
        symbol,
        integer(data.get("t"), "t"),
        positive(number(data.get("p"), "p"), "price"),
        positive(number(data.get("q"), "q"), "quantity"),
        integer(data.get("T"), "T"),
        maker,
    )
