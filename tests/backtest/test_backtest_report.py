"""The report and the multi-symbol backtester, pure: the tables add up to the trades they come from,
the CSV holds exactly the report's trades, and several symbols stepped in one account equal the
reference portfolio backtest (every candle through ``Engine.step``), one symbol the fast path."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime

import pytest

from trading.analysis import AnalysisSettings, compute_signal_series
from trading.backtest import run_backtest
from trading.backtest_multi import backtest_symbols, run_multi_backtest
from trading.backtest_report import (
    CSV_COLUMNS,
    TRADE_COLUMNS,
    differences,
    report_for,
    report_json,
    report_parameters,
    tables,
    trades_csv,
)
from trading.portfolio_backtest import run_portfolio_backtest
from trading.settings import EngineSettings

from .conftest import dataset, ms

DAY = 86_400_000
PAIRS = ("ETHBTC", "LTCBTC", "XLMBTC")
ANALYSIS = AnalysisSettings(min_agree=2)


def trade(n: int, symbol: str, entry: str, hours: float, net: float, reason: str = "signal") -> dict:
    start = ms(entry)
    return {"id": n, "symbol": symbol, "side": "long", "quantity": 2.0, "leverage": 4, "entry_time": start,
            "entry_price": 100.0, "exit_time": start + int(hours * 3_600_000), "exit_price": 100.0 + net / 2,
            "entry_fee": 0.25, "exit_fee": 0.25, "funding": 0.0, "gross_pnl": net + 0.5, "net_pnl": net,
            "max_favorable": max(net, 0.0), "max_adverse": min(net, 0.0), "close_reason": reason}


def test_tables_add_up_to_their_trades():
    trades = [trade(1, "ETHBTC", "2023-01-05T10:00", 2, 10.0, "take_profit"),
              trade(2, "LTCBTC", "2023-01-31T22:00", 4, -5.0, "stop_loss"),  # exits in February
              trade(3, "ETHBTC", "2023-02-02T00:00", 1, 0.0),
              trade(4, "ETHBTC", "2023-04-01T00:00", 6, 4.0)]
    closes = [ms("2023-01-01T00:05"), ms("2023-05-01T00:00")]  # the last candle closes at May's midnight
    t = tables(trades, 1000.0, ["LTCBTC", "ETHBTC", "XLMBTC"], closes)
    pairs = {row["symbol"]: row for row in t["per_pair"]}
    assert list(pairs) == ["ETHBTC", "LTCBTC", "XLMBTC", "TOTAL"]
    assert (pairs["ETHBTC"]["trades"], pairs["ETHBTC"]["wins"], pairs["ETHBTC"]["draws"]) == (3, 2, 1)
    assert pairs["ETHBTC"]["net_pnl"] == 14.0 and math.isclose(pairs["ETHBTC"]["net_pnl_pct"], 1.4)
    assert pairs["XLMBTC"]["trades"] == 0 and pairs["XLMBTC"]["win_rate"] is None
    assert pairs["TOTAL"]["net_pnl"] == 9.0 and pairs["TOTAL"]["profit_factor"] == 14.0 / 5.0
    # Return on margin: 10 / (100 * 2 / 4) = 20 %.
    assert [r["reason"] for r in t["per_exit_reason"]] == ["signal", "stop_loss", "take_profit"]
    assert [r["avg_return_pct"] for r in t["per_exit_reason"]] == [8.0 / 2, -10.0, 20.0]
    assert sum(r["trades"] for r in t["per_exit_reason"]) == 4
    assert t["durations"]["all"] == {"trades": 4, "avg_ms": 13 * 3_600_000 // 4, "min_ms": 3_600_000,
                                     "max_ms": 6 * 3_600_000}
    assert t["durations"]["winners"]["avg_ms"] == 4 * 3_600_000 and t["durations"]["losers"]["trades"] == 1
    assert t["durations"]["draws"]["min_ms"] == 3_600_000
    months = [(m["month"], m["trades"], m["net_pnl"]) for m in t["per_month"]]
    assert months == [("2023-01", 1, 10.0), ("2023-02", 2, -5.0), ("2023-03", 0, 0.0), ("2023-04", 1, 4.0)]


def test_differences_name_every_parameter_that_differs():
    a = {"settings": {"engine": {"leverage": 10, "risk": {"enabled": ["a", "b"]}}, "symbols": ["X"]}, "trade_to": 5}
    b = {"settings": {"engine": {"leverage": 3, "risk": {"enabled": ["a"]}}, "symbols": ["X"]}, "trade_to": 5}
    c = {"settings": {"engine": {"leverage": 3, "risk": {"enabled": ["a", "b"]}}, "symbols": ["X"]}}
    assert differences([a, b, c]) == [
        {"parameter": "settings.engine.leverage", "values": [10, 3, 3]},
        {"parameter": "settings.engine.risk.enabled", "values": [["a", "b"], ["a"], ["a", "b"]]},
        {"parameter": "trade_to", "values": [5, 5, None]},
    ]
    assert differences([a, a]) == []


@pytest.fixture(scope="module")
def pairs():
    candles = {s: dataset(f"{s}-5m-2018-01.csv.gz")[:2500] for s in PAIRS}
    candles["XLMBTC"] = candles["XLMBTC"][400:]  # joins the account later
    return candles, {s: compute_signal_series(c, ANALYSIS) for s, c in candles.items()}


def test_several_symbols_equal_the_reference_portfolio_backtest(pairs):
    candles, signals = pairs
    settings = EngineSettings(leverage=3, trailing_stop_pct=2.5)
    start = candles["ETHBTC"][300].open_time
    multi = run_multi_backtest(candles, signals, settings, trade_from=start)
    listed = {s: v.signals() for s, v in signals.items()}
    reference = run_portfolio_backtest(candles, listed, settings, trade_from=start)
    assert len(multi.trades) > 30 and {t.symbol for t in multi.trades} == set(PAIRS)
    assert [t.to_dict() for t in multi.trades] == [t.to_dict() for t in reference.trades]
    assert multi.final_state == reference.final_state
    # One equity point per open time (after its last candle), the reference's point of that candle.
    last_of_slot = [k for k in range(len(reference.close_times))
                    if k + 1 == len(reference.close_times) or reference.close_times[k + 1] != reference.close_times[k]]
    assert multi.close_times == tuple(reference.close_times[k] for k in last_of_slot)
    assert multi.equity == tuple(reference.equity[k] for k in last_of_slot)
    assert multi.metrics["trades"] == len(multi.trades) and 0 < multi.metrics["exposure"] <= 1


def test_one_symbol_through_the_multi_path_equals_the_fast_path(pairs):
    candles, signals = pairs
    settings = EngineSettings(slippage_bps=2.0)
    one = {"ETHBTC": candles["ETHBTC"]}
    start, stop = candles["ETHBTC"][200].open_time, candles["ETHBTC"][2000].open_time
    multi = run_multi_backtest(one, {"ETHBTC": signals["ETHBTC"]}, settings, trade_from=start, trade_to=stop)
    fast = run_backtest(one["ETHBTC"], signals["ETHBTC"], settings, trade_from=start, trade_to=stop)
    assert multi.trades == fast.trades and len(fast.trades) > 10
    for name in ("close_times", "equity", "metrics", "entries_rejected", "candles_in_position", "final_state"):
        assert getattr(multi, name) == getattr(fast, name), name
    assert backtest_symbols(one, {"ETHBTC": signals["ETHBTC"]}, settings, trade_from=start, trade_to=stop) == fast


def test_the_report_holds_every_trade_and_the_csv_exactly_them(pairs):
    candles, signals = pairs
    settings = EngineSettings(leverage=2)
    run = run_multi_backtest(candles, signals, settings)
    parameters = report_parameters({"engine": settings.to_dict()}, ANALYSIS)
    report = report_for(run, candles, "5m", parameters)
    assert report["trades"] == [t.to_dict() for t in run.trades]
    assert report["metrics"]["trades"] == len(run.trades) == report["tables"]["per_pair"][-1]["trades"]
    assert math.isclose(report["tables"]["per_pair"][-1]["net_pnl"], sum(t.net_pnl for t in run.trades))
    assert report["data"]["candles_traded"] == {s: len(c) for s, c in candles.items()}
    assert report["data"]["anchors"]["XLMBTC"] == candles["XLMBTC"][0].open_time
    assert report["parameters"]["warmup_candles"] > 0 and report["parameters"]["analysis_settings_hash"]
    assert json.loads(report_json(report)) == json.loads(json.dumps(report))
    assert report_json(report) == report_json(report_for(run, candles, "5m", parameters))

    rows = list(csv.DictReader(io.StringIO(trades_csv(report["trades"]))))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == len(report["trades"])
    for row, t in zip(rows, report["trades"], strict=True):
        read = {c: type(t[c])(row[c]) if not isinstance(t[c], str) else row[c] for c in TRADE_COLUMNS}
        assert read == {c: t[c] for c in TRADE_COLUMNS}  # floats exact: repr reads back as the same float
        entry = datetime.fromtimestamp(t["entry_time"] / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert row["entry_date"] == entry and int(row["duration_s"]) * 1000 == t["exit_time"] - t["entry_time"]
