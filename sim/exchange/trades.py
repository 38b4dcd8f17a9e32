"""Trade files (``data/trades/SYMBOL-trades-*.csv.gz``: timestamp, id, type, side, price, amount, cost).

``core.datafiles`` reads candle and value series only, so the trade format is read here.
"""

from __future__ import annotations

import csv
import gzip
import math
import re
from dataclasses import dataclass
from pathlib import Path

_TRADE_FILE = re.compile(r"^(?P<symbol>[A-Z0-9]+)-trades-")


@dataclass(frozen=True, slots=True)
class TradeRecord:
    trade_id: int
    time_ms: int
    price: float
    quantity: float
    buyer_is_maker: bool

    def shifted(self, shift_ms: int) -> TradeRecord:
        return TradeRecord(self.trade_id, self.time_ms + shift_ms, self.price, self.quantity, self.buyer_is_maker)


def trade_file_symbol(path: Path) -> str:
    match = _TRADE_FILE.match(path.name)
    if not match:
        raise ValueError(f"cannot tell the symbol from trade file name {path.name!r} (want SYMBOL-trades-…)")
    return match.group("symbol")


def load_trades(path: Path) -> list[TradeRecord]:
    """Load a trade file, refusing unusable rows by row number (no silent zeros)."""
    opener = gzip.open if path.suffix == ".gz" else open
    trades: list[TradeRecord] = []
    with opener(path, "rt", newline="") as fh:
        for row_no, row in enumerate(csv.DictReader(fh), start=1):
            try:
                trade = TradeRecord(
                    int(row["id"]),
                    int(row["timestamp"]),
                    float(row["price"]),
                    float(row["amount"]),
                    row["side"].strip().lower() == "sell",
                )
            except (KeyError, ValueError, TypeError) as exc:
                raise ValueError(f"{path}: unparsable trade row {row_no} {row!r}: {exc}") from None
            if not (
                math.isfinite(trade.price) and trade.price > 0 and math.isfinite(trade.quantity) and trade.quantity > 0
            ):
                raise ValueError(f"{path}: trade row {row_no} has a non-positive price or amount: {row!r}")
            if trades and trade.time_ms < trades[-1].time_ms:
                raise ValueError(f"{path}: trade row {row_no} is earlier than the row before it")
            trades.append(trade)
    return trades
