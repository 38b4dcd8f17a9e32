"""The backtester's skipping gives byte-identical results to stepping every candle, on all of data/."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from core.datafiles import load_candles
from trading.analysis import AnalysisSettings, compute_signal_series
from trading.backtest import run_backtest
from trading.models import SymbolSpec
from trading.settings import EngineSettings, FillPrice, MarketType
from trading.simple_signals import rsi_threshold, sma_cross

REPO = Path(__file__).resolve().parents[2]
CANDLE_FILES = sorted((REPO / "data" / "candles").glob("*.csv.gz")) + sorted(
    p for p in (REPO / "data" / "futures").glob("*.csv.gz") if "funding" not in p.name
)


@pytest.mark.parametrize("path", CANDLE_FILES, ids=lambda p: p.name)
def test_skipping_equals_stepping_every_candle_simple_signals(
    path: Path, engine_plain_settings: EngineSettings
) -> None:
    candles = load_candles(path)
    base = EngineSettings(trailing_stop_pct=3.0, slippage_bps=1.0)
    # The bench's and the peer cross-check's configuration: always in the market, every cross a
    # reversal, a fixed size on a step of 2**-20, fees, no levels, no funding, no risk checks.
    reversing = replace(
        engine_plain_settings,
        starting_balance=1e6,
        taker_fee=0.001,
        maker_fee=0.001,
        fixed_quantity=0.25,
        symbols=(SymbolSpec(candles[0].symbol, step_size=2.0**-20),),
    )
    for signals, settings in (
        (sma_cross(candles), base),
        (sma_cross(candles), replace(base, fill_price=FillPrice.CLOSE)),
        (sma_cross(candles), reversing),
        (rsi_threshold(candles), replace(base, market=MarketType.SPOT, leverage=1, min_confidence=0.5)),
        (
            rsi_threshold(candles),
            replace(base, market=MarketType.SPOT, leverage=1, min_confidence=0.5, fill_price=FillPrice.CLOSE),
        ),
    ):
        skipped = run_backtest(candles, signals, settings)
        stepped = run_backtest(candles, signals, settings, skip_idle=False)
        assert skipped.to_json() == stepped.to_json()
        assert skipped.equity == stepped.equity
    assert len(skipped.close_times) == len(candles)


@pytest.mark.parametrize("path", CANDLE_FILES, ids=lambda p: p.name)
def test_skipping_equals_stepping_every_candle_five_strategies(path: Path) -> None:
    candles = load_candles(path)
    series = compute_signal_series(candles, AnalysisSettings())
    settings = EngineSettings()
    skipped = run_backtest(candles, series, settings)
    stepped = run_backtest(candles, series.signals(), settings, skip_idle=False)
    assert skipped.to_json() == stepped.to_json()
    assert skipped.equity == stepped.equity
    if len(candles) > 5000:
        assert skipped.trades, "the consensus must trade on real data for this test to mean anything"


def test_warmup_anchor_and_trading_window() -> None:
    candles = load_candles(REPO / "data" / "candles" / "BTCUSDT-5m-2023-01.csv.gz")
    signals = sma_cross(candles)
    start, stop = candles[2000].open_time, candles[6000].open_time
    result = run_backtest(candles, signals, EngineSettings(), trade_from=start, trade_to=stop)
    assert len(result.close_times) == 4000
    assert all(start < t.entry_time <= stop + 300_000 for t in result.trades)
    with pytest.raises(ValueError, match="one per candle"):
        run_backtest(candles, sma_cross(candles[:-1]), EngineSettings())
    with pytest.raises(ValueError, match="no candle to trade"):
        run_backtest(candles, signals, EngineSettings(), trade_from=stop, trade_to=start)


def test_bad_rows_are_named() -> None:
    candles = load_candles(REPO / "data" / "candles" / "XRPETH-1m-2019-10.csv.gz")
    broken = list(candles)
    broken[10] = replace(broken[10], high=broken[10].low / 2)
    with pytest.raises(ValueError, match="bad candle at row 11"):
        run_backtest(broken, [None] * len(broken), EngineSettings())
    duplicated = candles[:5] + [candles[4]] + candles[5:]
    with pytest.raises(ValueError, match="row 6 .*duplicate open_time"):
        run_backtest(duplicated, [None] * len(duplicated), EngineSettings())


def test_one_symbol_and_one_interval_per_backtest() -> None:
    candles = load_candles(REPO / "data" / "candles" / "XRPETH-1m-2019-10.csv.gz")[:50]
    mixed = candles[:20] + [replace(c, symbol="OTHER") for c in candles[20:]]
    with pytest.raises(ValueError, match="one symbol per backtest: row 21 is OTHER, not XRPETH"):
        run_backtest(mixed, [None] * len(mixed), EngineSettings())
    stretched = candles[:10] + [replace(c, interval_ms=120_000) for c in candles[10:]]
    with pytest.raises(ValueError, match=r"one interval per backtest, got \[60000, 120000\]"):
        run_backtest(stretched, [None] * len(stretched), EngineSettings())
