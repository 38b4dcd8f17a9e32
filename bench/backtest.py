"""Backtest throughput: our full path and a simple SMA-cross strategy on ours, backtesting.py and vectorbt.

Input: data/candles/BTCUSD-1h-2017-2019-coinbase.csv.gz mirror-tiled to at least ``--candles``
candles: copies alternate forward and time-reversed (a reversed candle swaps open and close), so
each copy opens where the previous one closed, timestamps continue, and prices stay the source's
own (1,758 .. 19,892 USD) however long the series. An earlier multiplicative tiling compounded
BTC's ~3.2x per copy into prices near 1e28, which needed a cash of 1e32 that EngineSettings no
longer accepts (starting_balance <= 1e9); with mirror tiling a cash of 1,000,000 keeps the fixed
0.25 BTC (at most ~5,000 USD) affordable on every candle for all three engines, which see the same
candles, fees, fill rule (at the signal candle's close) and cash.

One process, one core, timed in process CPU time (``--wall``: wall-clock time; on a quiet machine
they agree, on a shared one only CPU time is a measure of our code); each figure is the median of
``--runs`` runs after one warm-up run, each run's result dropped before the next
(backtesting.py: ``--peer-runs`` runs, no warm-up; its pure-Python loop has nothing to warm). The
warm-up compiles vectorbt's numba kernels and, for every contender, faults in the memory that a
million-row run's arrays need: the first numpy-heavy runs of a process pay the kernel for fresh
pages (transparent huge pages with compaction on this machine), up to twice the analysis' steady
time. Our first run in the fresh process is printed separately ("first run"). Verdicts against the
floors and goals of issue 18 are printed for every figure.

    .venv/bin/python bench/backtest.py [--candles 1000000] [--runs 3] [--peer-runs 3] [--wall] [--ours-only]
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bar: noise, and it costs the peer time
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.datafiles import load_candles  # noqa: E402
from trading.backtest import run_backtest  # noqa: E402
from trading.candle import Candle  # noqa: E402
from trading.models import SymbolSpec  # noqa: E402
from trading.settings import EngineSettings, FillPrice, FundingMode, PositionSizing, RiskSettings  # noqa: E402
from trading.simple_signals import sma_cross  # noqa: E402

SOURCE = REPO / "data" / "candles" / "BTCUSD-1h-2017-2019-coinbase.csv.gz"
FEE = 0.001
QUANTITY = 0.25
UNIT = 2.0**-20
FAST, SLOW = 10, 30


def tile(candles: list[Candle], minimum: int) -> list[Candle]:
    """Forward, reversed, forward, ... copies of ``candles`` on one continuing hourly clock."""
    step = candles[0].interval_ms
    out = list(candles)
    reversed_copy = [Candle(0, c.close, c.high, c.low, c.open, c.volume, step, c.symbol) for c in reversed(candles)]
    forward = True
    while len(out) < minimum:
        forward = not forward
        start = out[-1].open_time + step
        copy = candles if forward else reversed_copy
        out.extend(
            Candle(start + k * step, c.open, c.high, c.low, c.close, c.volume, step, c.symbol)
            for k, c in enumerate(copy)
        )
    return out


# The process's CPU time by default: every contender is single-threaded, so it is the one-core cost
# the floors are about, and unlike wall-clock time it does not count the time other processes on a
# shared machine hold the core. --wall switches to wall-clock time.
clock = time.process_time


def timed(fn: Callable[[], Any], runs: int, warm_up: bool = True) -> tuple[float, float, Any]:
    """(first run, median of ``runs`` runs after it, last result). With ``warm_up`` the first run is
    extra and not in the median. Each run's result is dropped before the next starts (a run that
    still held the previous one's arrays would need fresh memory pages where a single run does not),
    and a full collection runs before each, untimed, so that no run pays for its predecessors'
    garbage. The collector stays on during the runs (unlike timeit): allocation costs are real."""
    times: list[float] = []
    result: Any = None
    for _ in range(runs + warm_up):
        result = None
        gc.collect()
        start = clock()
        result = fn()
        times.append(clock() - start)
    return times[0], statistics.median(times[warm_up:]), result


def simple_settings(cash: float, symbol: str) -> EngineSettings:
    return EngineSettings(
        leverage=1,
        starting_balance=cash,
        taker_fee=FEE,
        maker_fee=FEE,
        stop_loss_pct=None,
        take_profit_pct=None,
        fill_price=FillPrice.CLOSE,  # as the peers: backtesting.py trade_on_close, vectorbt at the close
        position_sizing=PositionSizing.FIXED_QUANTITY,
        fixed_quantity=QUANTITY,
        funding_mode=FundingMode.OFF,
        risk=RiskSettings(enabled=()),
        symbols=(SymbolSpec(symbol, step_size=UNIT),),
    )


def run_backtesting_py(candles: list[Candle], cash: float) -> tuple[int, float]:
    import pandas as pd
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest, crossover

    def sma(values: Any, n: int) -> Any:
        return pd.Series(values).rolling(n).mean()

    class SmaCross(Strategy):
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, FAST)
            self.slow = self.I(sma, self.data.Close, SLOW)

        def next(self) -> None:
            units = round(QUANTITY / UNIT)
            if crossover(self.fast, self.slow):
                self.position.close()
                self.buy(size=units)
            elif crossover(self.slow, self.fast):
                self.position.close()
                self.sell(size=units)

    frame = pd.DataFrame(
        {
            "Open": [c.open for c in candles],
            "High": [c.high for c in candles],
            "Low": [c.low for c in candles],
            "Close": [c.close for c in candles],
            "Volume": [c.volume for c in candles],
        },
        index=pd.to_datetime([c.close_time for c in candles], unit="ms"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stats = FractionalBacktest(
            frame, SmaCross, cash=cash, commission=FEE, trade_on_close=True, fractional_unit=UNIT
        ).run()
    return len(stats["_trades"]), float(stats["Equity Final [$]"])


def import_vectorbt() -> Any:
    # vectorbt 1.0.0's light theme names 'scattermapbox', which the installed plotly no longer
    # accepts; let its template skip unknown trace types so the package imports.
    import plotly.graph_objects as go

    original = go.layout.Template

    class LenientTemplate(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs.setdefault("skip_invalid", True)
            super().__init__(*args, **kwargs)

    go.layout.Template = LenientTemplate
    import vectorbt

    return vectorbt


def run_vectorbt(vbt: Any, candles: list[Candle], cash: float) -> tuple[int, float]:
    import pandas as pd

    close = pd.Series([c.close for c in candles])
    fast, slow = close.rolling(FAST).mean(), close.rolling(SLOW).mean()
    up = (fast.shift() < slow.shift()) & (fast > slow)
    down = (fast.shift() > slow.shift()) & (fast < slow)
    portfolio = vbt.Portfolio.from_signals(
        close,
        entries=up,
        exits=down,
        short_entries=down,
        short_exits=up,
        size=QUANTITY,
        fees=FEE,
        init_cash=cash,
        freq="1h",
    )
    return int(portfolio.trades.count()), float(portfolio.final_value())


def verdict(value: float, floor: float | None, goal: float, unit: str) -> str:
    parts = [] if floor is None else [f"floor {floor:,.0f}{unit}: {'met' if value >= floor else 'MISSED'}"]
    parts.append(f"goal {goal:,.0f}{unit}: {'met' if value >= goal else 'MISSED'}")
    return "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candles", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--peer-runs", type=int, default=3, help="runs of backtesting.py (slow)")
    parser.add_argument("--wall", action="store_true", help="time with the wall clock instead of CPU time")
    parser.add_argument(
        "--ours-only", action="store_true", help="skip the peers (to profile ours: docs/performance.md)"
    )
    args = parser.parse_args()
    global clock
    if args.wall:
        clock = time.perf_counter

    base = load_candles(SOURCE)
    candles = tile(base, args.candles)
    n = len(candles)
    print(f"input: {SOURCE.name} ({len(base):,} candles) mirror-tiled to {n:,} candles")
    print("       (copies alternate forward and time-reversed; timestamps continue; prices stay the source's)")
    print(
        f"one process, one core; medians of {args.runs} runs ({args.peer_runs} for backtesting.py) "
        f"after a warm-up run; {'wall-clock' if args.wall else 'CPU'} time"
    )
    print("candles validated once at load (load_candles); mirroring keeps them valid\n")

    from trading.analysis import AnalysisSettings, compute_signal_series

    analysis_settings = AnalysisSettings()
    full_settings = EngineSettings()
    cold_analysis, analysis_time, series = timed(lambda: compute_signal_series(candles, analysis_settings), args.runs)
    cold_engine, engine_time, full = timed(
        lambda: run_backtest(candles, series, full_settings, candles_validated=True), args.runs
    )
    full_total = analysis_time + engine_time
    share = full.candles_in_position / n
    full_rate = n / full_total
    print("full path (indicators + five strategies + consensus via trading.analysis, seven risk checks, broker):")
    print(f"  analysis {analysis_time:.2f} s, engine {engine_time:.2f} s, total {full_total:.2f} s")
    print(f"  {full_rate:,.0f} candles/s overall; engine alone {n / engine_time:,.0f} candles/s")
    print(
        f"  first run: analysis {cold_analysis:.2f} s, engine {cold_engine:.2f} s, "
        f"{n / (cold_analysis + cold_engine):,.0f} candles/s"
    )
    print(
        f"  {len(full.trades):,} trades, {share:.1%} of candles in a position, "
        f"return {full.metrics['total_return']:.2%}"
    )
    print(f"  {verdict(full_rate, 600_000, 1_000_000, ' candles/s')}\n")

    cash = 1_000_000.0
    settings = simple_settings(cash, candles[0].symbol)

    def ours() -> Any:
        return run_backtest(candles, sma_cross(candles, FAST, SLOW), settings, candles_validated=True)

    cold_ours, ours_time, simple = timed(ours, args.runs)
    print(f"simple SMA({FAST})/SMA({SLOW}) cross, always in the market, {QUANTITY} BTC, fee {FEE}, cash {cash:,.0f}:")
    print(
        f"  ours            {n / ours_time:>12,.0f} candles/s  "
        f"({ours_time:.2f} s, {len(simple.trades):,} closed trades, "
        f"final equity {simple.metrics['final_equity']:,.2f}, {simple.candles_in_position / n:.1%} in a position)"
    )
    print(f"  ours first run  {n / cold_ours:>12,.0f} candles/s  ({cold_ours:.2f} s)")

    if args.ours_only:
        return
    _, peer_time, (peer_trades, peer_equity) = timed(
        lambda: run_backtesting_py(candles, cash), args.peer_runs, warm_up=False
    )
    print(
        f"  backtesting.py  {n / peer_time:>12,.0f} candles/s  ({peer_time:.2f} s, {peer_trades:,} closed trades, "
        f"final equity {peer_equity:,.2f})"
    )

    vbt = import_vectorbt()
    # The first run compiles its numba kernels.
    cold_vbt, vbt_time, (vbt_trades, vbt_equity) = timed(lambda: run_vectorbt(vbt, candles, cash), args.runs)
    print(
        f"  vectorbt        {n / vbt_time:>12,.0f} candles/s  ({vbt_time:.2f} s, {vbt_trades:,} trades incl. open, "
        f"final equity {vbt_equity:,.2f}); first run with compilation {cold_vbt:.2f} s"
    )
    print(f"\nours / backtesting.py = {peer_time / ours_time:.1f}x ({verdict(peer_time / ours_time, 8, 10, 'x')})")
    print(f"ours / vectorbt = {vbt_time / ours_time:.2f}x ({verdict(vbt_time / ours_time, None, 1, 'x')})")


if __name__ == "__main__":
    main()
