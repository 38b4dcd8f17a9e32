"""A backtest replaying a session's AI decision records (``ai_decisions``): on each candle the record
names, the backtest trades the signal the session decided (Grok's answer, or the fallback it used,
late answers included); a candle with a technical signal but no record uses the fallback (the
consensus alone) and is counted, so a report says how much of the run was replayed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from trading.signals import Direction, Signal


@dataclass
class ReplayCount:
    session_id: str
    records_used: int = 0
    candles_without_record: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "records_used": self.records_used,
                "candles_without_record": self.candles_without_record}


async def decided_signals(db: AsyncDatabase, session_id: str, symbol: str, interval: str,
                          first: int, last: int) -> dict[int, Signal]:
    """open time -> the signal the session decided there; of a session reset in between, the latest
    account's (generation) record wins."""
    cursor = db.ai_decisions.find(
        {"session_id": session_id, "symbol": symbol, "interval": interval,
         "open_time": {"$gte": first, "$lte": last}},
        {"_id": 0, "open_time": 1, "generation": 1, "decided": 1}).sort([("generation", 1)])
    found: dict[int, Signal] = {}
    async for doc in cursor:
        decided = doc["decided"]
        found[doc["open_time"]] = Signal(symbol, doc["open_time"], Direction(decided["direction"]),
                                         float(decided["confidence"]), decided["reason"])
    return found


def replayed(signals: list[Signal | None], decided: dict[int, Signal], count: ReplayCount,
             trade_from: int | None, trade_to: int | None) -> list[Signal | None]:
    """``signals`` (the technical series) with each recorded candle's decision in its place."""
    out = list(signals)
    for i, signal in enumerate(out):
        if signal is None:
            continue  # warming up: the session had no decision to make either
        record = decided.get(signal.open_time)
        if record is not None:
            out[i] = record
            count.records_used += 1
        elif (trade_from is None or signal.open_time >= trade_from) and \
                (trade_to is None or signal.open_time < trade_to):
            count.candles_without_record += 1
    return out
