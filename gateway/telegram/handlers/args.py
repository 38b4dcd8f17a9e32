"""Command arguments, checked before anything is called: everything from Telegram is untrusted input."""

from __future__ import annotations

import math
import re

from services.errors import Rejected

SYMBOL = re.compile(r"^[A-Za-z0-9]{2,20}$")
MAX_ID = 2**53


def words(args: str | None) -> list[str]:
    return (args or "").split()


def count(args: str | None, default: int, most: int) -> int:
    """An optional count (``/trades 5``): 1 to ``most``."""
    given = words(args)
    if not given:
        return default
    if len(given) > 1 or not given[0].isdigit() or not 1 <= int(given[0]) <= most:
        raise Rejected("n", f"give a number from 1 to {most}, or nothing for {default}")
    return int(given[0])


def symbol(text: str) -> str:
    if not SYMBOL.match(text):
        raise Rejected("symbol", "a symbol is 2 to 20 letters and digits, e.g. BTCUSDT")
    return text.upper()


def quantity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise Rejected("quantity", "the quantity is a number in the base asset, e.g. 0.01") from None
    if not math.isfinite(value) or value <= 0:
        raise Rejected("quantity", "the quantity is a positive number, e.g. 0.01")
    return value


def trade_id(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise Rejected("id", "a trade ID is a whole number, as /status shows it")
    return int(text)
