"""A rule-based review of one closed trade, until AI analysis arrives.

Input: a ``paper_trading_trades`` row of a closed trade — ``trade`` (``Trade.to_dict()``) and the
analysis snapshots taken at entry and at exit (consensus direction, confidence, reason and each
strategy's verdict; None for a manual order or close). Output: a plain record of what happened and
why, and a one-line verdict. Rules:

- **Backing at entry**: the strategies whose entry verdict pointed the trade's way agreed, those
  pointing the other way opposed, the rest were neutral. No entry snapshot: a manual entry.
- **Backing at exit**: the strategies whose exit verdict pointed against the trade confirmed the
  exit.
- **Indicator state**: every indicator's value on the entry and on the exit candle, as the analysis
  recorded it (RSI, MACD line/signal/histogram, Bollinger bands, %B and bandwidth, stochastic K/D,
  volume ratio, ATR).
- **Excursions**: MFE and MAE in quote currency and as a percentage of the entry notional;
  ``captured`` is the net PnL as a share of the MFE (1.0: the whole best move was kept).
- **Verdict**: "<how it closed> with a <win|loss|flat> of <net PnL>, <backing>", plus a note when a
  losing trade had been in profit by more than its final loss ("gave back ...").

Pure Python: no I/O, no numpy, so the gateway computes reviews on read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

CLOSE_LABELS = {
    "stop_loss": "stopped out",
    "take_profit": "took profit",
    "trailing_stop": "trailed out",
    "signal": "closed on an opposite signal",
    "liquidation": "liquidated",
    "manual": "closed by hand",
}
OPPOSITE = {"long": "short", "short": "long"}


@dataclass(frozen=True)
class Backing:
    """How the strategies stood on the trade at one moment."""

    direction: str | None  # the consensus
    confidence: float | None
    reason: str | None
    agreeing: tuple[str, ...]
    opposing: tuple[str, ...]
    neutral: tuple[str, ...]
    indicators: dict[str, float | None]  # every indicator on that candle ({} for a record without them)


@dataclass(frozen=True)
class TradeReview:
    trade_id: int
    symbol: str
    side: str
    outcome: str  # win | loss | flat
    close_reason: str
    entry_time: int
    exit_time: int
    duration_ms: int
    entry_price: float
    exit_price: float
    quantity: float
    net_pnl: float
    gross_pnl: float
    fees: float
    return_pct: float  # net PnL over the margin (notional / leverage), in percent
    mfe: float
    mae: float
    mfe_pct: float  # of the entry notional, in percent
    mae_pct: float
    captured: float | None
    manual_entry: bool
    entry: Backing | None
    exit: Backing | None
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def backing(snapshot: dict[str, Any] | None, side: str) -> Backing | None:
    """The strategies that agreed with ``side``, opposed it or stayed neutral at a snapshot."""
    if not snapshot:
        return None
    agreeing, opposing, neutral = [], [], []
    for verdict in snapshot.get("verdicts") or ():
        direction = str(verdict.get("direction"))
        name = str(verdict.get("strategy"))
        if direction == side:
            agreeing.append(name)
        elif direction == OPPOSITE.get(side):
            opposing.append(name)
        else:
            neutral.append(name)
    return Backing(snapshot.get("direction"), snapshot.get("confidence"), snapshot.get("reason"),
                   tuple(agreeing), tuple(opposing), tuple(neutral), dict(snapshot.get("indicators") or {}))


def _pct(value: float, notional: float) -> float:
    return value / notional * 100 if notional > 0 else 0.0


def review_trade(row: dict[str, Any]) -> TradeReview:
    """The review of a closed trade row; raises ValueError for a row that is not a closed trade."""
    trade = row.get("trade")
    if row.get("status") != "closed" or not isinstance(trade, dict):
        raise ValueError("only closed trades have a review")
    side = str(trade["side"])
    net, gross = float(trade["net_pnl"]), float(trade["gross_pnl"])
    fees = float(trade["entry_fee"]) + float(trade["exit_fee"])
    notional = float(trade["entry_price"]) * float(trade["quantity"])
    margin = notional / max(1, int(trade["leverage"]))
    mfe, mae = float(trade["max_favorable"]), float(trade["max_adverse"])
    outcome = "win" if net > 0 else "loss" if net < 0 else "flat"
    entry = backing(row.get("entry_analysis"), side)
    exit_ = backing(row.get("exit_analysis"), side)
    reason = str(trade["close_reason"])
    return TradeReview(
        trade_id=int(trade["id"]), symbol=str(trade["symbol"]), side=side, outcome=outcome, close_reason=reason,
        entry_time=int(trade["entry_time"]), exit_time=int(trade["exit_time"]),
        duration_ms=int(trade["exit_time"]) - int(trade["entry_time"]),
        entry_price=float(trade["entry_price"]), exit_price=float(trade["exit_price"]),
        quantity=float(trade["quantity"]), net_pnl=net, gross_pnl=gross, fees=fees,
        return_pct=_pct(net, margin), mfe=mfe, mae=mae, mfe_pct=_pct(mfe, notional), mae_pct=_pct(mae, notional),
        captured=net / mfe if mfe > 0 else None, manual_entry=entry is None, entry=entry, exit=exit_,
        verdict=verdict_text(reason, outcome, net, mfe, entry),
    )


def verdict_text(reason: str, outcome: str, net: float, mfe: float, entry: Backing | None) -> str:
    label = CLOSE_LABELS.get(reason, reason)
    if entry is None:
        backed = "a manual entry"
    else:
        total = len(entry.agreeing) + len(entry.opposing) + len(entry.neutral)
        backed = f"entered with {len(entry.agreeing)} of {total} strategies agreeing"
        if entry.opposing:
            backed += f" and {len(entry.opposing)} against"
    text = f"{label} with a {outcome} of {net:.8g}, {backed}"
    if outcome == "loss" and mfe > -net:
        text += f"; it had been {mfe:.8g} in profit and gave it back"
    return text
