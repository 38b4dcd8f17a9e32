"""The backtest report, one pure function for the CLI and the web backtests alike.

``build_report`` turns a run (``trading.backtest`` or ``trading.backtest_multi``) into a plain JSON
document: the parameters used, what was traded, the metrics, the tables a freqtrade user looks for
(per pair, per exit reason, trade durations of winners and losers, per month), every trade and the
equity curve (at most 1,000 points). Nothing in it depends on where the candles came from, on the
wall clock or on an ID, so the same settings and candles give the same bytes (``report_json``) from
the CLI's ``--json`` and from the web's JSON export. ``trades_csv`` writes the same trades as CSV.

Per-trade return is the net PnL over the margin (notional / leverage), in percent, as the trade
review computes it; sums use ``math.fsum`` so no table depends on the order it was added up in.
Months are UTC calendar months of the trades' exit times; every month the run spans has a row.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from trading.analysis_settings import AnalysisSettings, warmup_candles
from trading.candle import Candle
from trading.models import Trade

REPORT_FORMAT = "durabot-backtest-report"
REPORT_VERSION = 1
MAX_EQUITY_POINTS = 1000
TRADE_COLUMNS = tuple(Trade.__dataclass_fields__)
CSV_COLUMNS = (*TRADE_COLUMNS, "entry_date", "exit_date", "duration_s", "return_pct")
TABLES = ("per_pair", "per_exit_reason", "durations", "per_month")


class Run(Protocol):
    """What a report reads of a run: ``trading.backtest.BacktestResult`` or ``MultiBacktestResult``."""

    @property
    def trades(self) -> tuple[Trade, ...]: ...
    @property
    def close_times(self) -> tuple[int, ...]: ...
    @property
    def equity(self) -> tuple[float, ...]: ...
    @property
    def metrics(self) -> dict[str, float | int | None]: ...
    @property
    def candles_in_position(self) -> int: ...
    @property
    def entries_rejected(self) -> int: ...
    @property
    def final_state(self) -> dict[str, Any]: ...


def downsample(close_times: Sequence[int], equity: Sequence[float],
               limit: int = MAX_EQUITY_POINTS) -> tuple[list[int], list[float]]:
    """At most ``limit`` points of the curve, evenly spaced, always the first and the last; the
    values are the run's own, never interpolated."""
    n = len(equity)
    if n <= limit:
        return list(close_times), list(equity)
    picks = [k * (n - 1) // (limit - 1) for k in range(limit)]
    return [close_times[i] for i in picks], [equity[i] for i in picks]


def report_parameters(settings_document: Mapping[str, Any], analysis: AnalysisSettings, *,
                      signals: str = "consensus", warmup_from: int | None = None, trade_from: int | None = None,
                      trade_to: int | None = None) -> dict[str, Any]:
    """Every parameter of a run: the settings document (``core.settings_document``), the time range
    (ms, open times) and what the signals were."""
    return {
        "settings": dict(settings_document),
        "signals": signals,
        "warmup_from": warmup_from,
        "trade_from": trade_from,
        "trade_to": trade_to,
        "warmup_candles": warmup_candles(analysis) if signals == "consensus" else None,
        "analysis_settings_hash": analysis.settings_hash() if signals == "consensus" else None,
    }


def report_for(run: Run, candles: Mapping[str, Sequence[Candle]], interval: str,
               parameters: Mapping[str, Any]) -> dict[str, Any]:
    """``build_report`` with each symbol's anchor and traded candles read from the candles the run
    was given (from the anchor on) and the window in ``parameters``."""
    start, stop = parameters.get("trade_from"), parameters.get("trade_to")
    traded = {}
    for symbol, series in candles.items():
        times = [c.open_time for c in series]
        first = bisect.bisect_left(times, start) if start is not None else 0
        last = bisect.bisect_left(times, stop) if stop is not None else len(times)
        traded[symbol] = max(0, last - first)
    return build_report(run, parameters=parameters, symbols=list(candles), interval=interval,
                        anchors={s: series[0].open_time for s, series in candles.items()}, candles_traded=traded)


def build_report(run: Run, *, parameters: Mapping[str, Any], symbols: Sequence[str], interval: str,
                 anchors: Mapping[str, int], candles_traded: Mapping[str, int]) -> dict[str, Any]:
    """The whole report (module docstring). ``anchors``: each symbol's first candle (where its
    indicators start); ``candles_traded``: each symbol's candles inside the traded window."""
    trades = [t.to_dict() for t in run.trades]
    starting = float(run.metrics["starting_balance"] or 0.0)
    times, equity = downsample(run.close_times, run.equity)
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "parameters": dict(parameters),
        "data": {
            "symbols": sorted(symbols),
            "interval": interval,
            "anchors": {s: anchors[s] for s in sorted(anchors)},
            "candles_traded": {s: candles_traded[s] for s in sorted(candles_traded)},
            "time_slots": len(run.close_times),
            "traded_from": run.close_times[0],
            "traded_to": run.close_times[-1],
        },
        "metrics": {**run.metrics, "candles_in_position": run.candles_in_position,
                    "entries_rejected": run.entries_rejected,
                    # The Engine never closes a position for the end of the data, as a session would not.
                    "open_positions_at_end": len(run.final_state["positions"]),
                    "unrealised_pnl_at_end": run.equity[-1] - run.final_state["cash"]},
        "tables": tables(trades, starting, symbols, run.close_times),
        "trades": trades,
        "equity_curve": {"close_times": times, "equity": equity, "points_of": len(run.equity)},
    }


def tables(trades: Sequence[Mapping[str, Any]], starting_balance: float, symbols: Sequence[str],
           close_times: Sequence[int]) -> dict[str, Any]:
    """The four tables of trade dicts (``Trade.to_dict()``)."""
    by_symbol = {s: [t for t in trades if t["symbol"] == s] for s in sorted(symbols)}
    reasons = sorted({str(t["close_reason"]) for t in trades})
    return {
        "per_pair": [{"symbol": s, **summary(rows, starting_balance)} for s, rows in by_symbol.items()]
        + [{"symbol": "TOTAL", **summary(trades, starting_balance)}],
        "per_exit_reason": [{"reason": r, **summary([t for t in trades if str(t["close_reason"]) == r],
                                                    starting_balance)} for r in reasons],
        "durations": {
            "all": durations(trades),
            "winners": durations([t for t in trades if t["net_pnl"] > 0]),
            "draws": durations([t for t in trades if t["net_pnl"] == 0]),
            "losers": durations([t for t in trades if t["net_pnl"] < 0]),
        },
        "per_month": per_month(trades, starting_balance, close_times),
    }


def return_pct(trade: Mapping[str, Any]) -> float:
    margin = trade["entry_price"] * trade["quantity"] / max(1, int(trade["leverage"]))
    return trade["net_pnl"] / margin * 100 if margin > 0 else 0.0


def summary(trades: Sequence[Mapping[str, Any]], starting_balance: float) -> dict[str, Any]:
    n = len(trades)
    net = math.fsum(t["net_pnl"] for t in trades)
    wins = sum(1 for t in trades if t["net_pnl"] > 0)
    losses = sum(1 for t in trades if t["net_pnl"] < 0)
    gross_profit = math.fsum(t["net_pnl"] for t in trades if t["net_pnl"] > 0)
    gross_loss = -math.fsum(t["net_pnl"] for t in trades if t["net_pnl"] < 0)
    return {
        "trades": n,
        "wins": wins,
        "draws": n - wins - losses,
        "losses": losses,
        "win_rate": wins / n if n else None,
        "net_pnl": net,
        "net_pnl_pct": net / starting_balance * 100 if starting_balance > 0 else None,
        "avg_net_pnl": net / n if n else None,
        "avg_return_pct": math.fsum(return_pct(t) for t in trades) / n if n else None,
        "profit_factor": gross_profit / gross_loss if gross_loss > 0 else None,
        "fees": math.fsum(t["entry_fee"] + t["exit_fee"] for t in trades),
        "avg_duration_ms": _mean_ms(trades),
    }


def durations(trades: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    spans = [t["exit_time"] - t["entry_time"] for t in trades]
    return {"trades": len(spans), "avg_ms": _mean_ms(trades), "min_ms": min(spans, default=None),
            "max_ms": max(spans, default=None)}


def _mean_ms(trades: Sequence[Mapping[str, Any]]) -> int | None:
    # Whole milliseconds, rounded half to even: the same integer on every platform.
    return round(sum(t["exit_time"] - t["entry_time"] for t in trades) / len(trades)) if trades else None


def month_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m")


def _months(first: str, last: str) -> list[str]:
    year, month = int(first[:4]), int(first[5:])
    out = []
    while f"{year:04d}-{month:02d}" <= last:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def per_month(trades: Sequence[Mapping[str, Any]], starting_balance: float,
              close_times: Sequence[int]) -> list[dict[str, Any]]:
    if not close_times:
        return []
    # A candle closing exactly at midnight ends the month before (its last millisecond is in it).
    first, last = month_of(close_times[0] - 1), month_of(close_times[-1] - 1)
    by_month: dict[str, list[Mapping[str, Any]]] = {m: [] for m in _months(first, last)}
    for t in trades:
        by_month.setdefault(month_of(t["exit_time"] - 1), []).append(t)
    return [{"month": m, **summary(rows, starting_balance)} for m, rows in sorted(by_month.items())]


def report_json(report: Mapping[str, Any]) -> str:
    """Canonical JSON: the same report gives the same bytes."""
    return json.dumps(report, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float
    return str(value)


def trades_csv(trades: Iterable[Mapping[str, Any]]) -> str:
    """One row per trade: every field of the trade record (times in epoch ms, floats exact), then the
    UTC dates, the duration in seconds and the return on margin in percent."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for t in trades:
        extra = (_iso(t["entry_time"]), _iso(t["exit_time"]), (t["exit_time"] - t["entry_time"]) // 1000,
                 return_pct(t))
        writer.writerow([_cell(t[c]) for c in TRADE_COLUMNS] + [_cell(v) for v in extra])
    return out.getvalue()


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"engine": {"risk": {"x": 1}}}`` → ``{"engine.risk.x": 1}``; lists stay whole values."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def differences(parameter_sets: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The parameters (flattened paths) whose values differ between runs, each with every run's
    value (None where a run lacks it), in path order."""
    flat = [flatten(p) for p in parameter_sets]
    paths = sorted({path for f in flat for path in f})
    out = []
    for path in paths:
        values = [f.get(path) for f in flat]
        if any(v != values[0] for v in values[1:]):
            out.append({"parameter": path, "values": values})
    return out
