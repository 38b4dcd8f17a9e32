"""Cross-check against a peer: SMA-cross run by our Engine and by backtesting.py on real data.

Conventions aligned (and why the numbers still must agree exactly):
* backtesting.py with ``trade_on_close=True`` fills a market order placed in ``next()`` at that
  bar's close, which is our fill rule (a signal on candle t fills at close(t)). Its Trade records
  the signal bar, so we index its data by candle *close* time, our market time.
* ``FractionalBacktest`` trades whole ``fractional_unit``s. We use 2**-20 BTC: a power of two,
  so its price and size scaling is exact in binary floating point and prices come back bit-equal.
  Our fixed quantity (0.25 BTC) is a whole number of those units; our step size is 2**-20 too.
* Its ``commission`` is charged on entry and exit at the fill price, our taker fee; no spread,
  no slippage. Risk checks, SL/TP and funding are off on our side; leverage 1, fixed size; the
  cash is large enough that backtesting.py never cancels an order for margin.
* Reversal: on a cross it closes the open trade and opens the opposite one at the same close;
  our ``close_on_opposite_signal`` does the same.
* A signal on the very last candle cannot fill in backtesting.py (it would fill on the next bar's
  processing, which never comes); we drop that one signal on our side.
* Its open trade at the end is not in ``_trades`` (``finalize_trades=False``) but is in its final
  equity, marked at the last close, exactly like our equity (cash + unrealised PnL).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest
from backtesting import Strategy
from backtesting.lib import FractionalBacktest, crossover

from core.datafiles import load_candles
from trading.backtest import run_backtest
from trading.models import SymbolSpec
from trading.settings import EngineSettings, FillPrice, FundingMode, PositionSizing, RiskSettings
from trading.simple_signals import sma_cross

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
UNIT = 2.0**-20
QUANTITY = 0.25
FEE = 0.001
FAST, SLOW = 10, 30


def _sma(values: pd.Series, n: int) -> pd.Series:
    return pd.Series(values).rolling(n).mean()


class SmaCross(Strategy):
    def init(self) -> None:
        self.fast = self.I(_sma, self.data.Close, FAST)
        self.slow = self.I(_sma, self.data.Close, SLOW)

    def next(self) -> None:
        units = round(QUANTITY / UNIT)
        if crossover(self.fast, self.slow):
            self.position.close()
            self.buy(size=units)
        elif crossover(self.slow, self.fast):
            self.position.close()
            self.sell(size=units)


@pytest.mark.parametrize("file_name", ["BTCUSDT-5m-2023-01.csv.gz", "BTCUSD-1h-2017-2019-coinbase.csv.gz"])
def test_sma_cross_matches_backtesting_py(file_name: str) -> None:
    candles = load_candles(DATA / file_name)
    cash = 1_000_000.0
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
        peer = FractionalBacktest(
            frame, SmaCross, cash=cash, commission=FEE, trade_on_close=True, fractional_unit=UNIT
        ).run()
    peer_trades = peer["_trades"]

    settings = EngineSettings(
        fill_price=FillPrice.CLOSE,  # as the peer runs: trade_on_close=True
        leverage=1,
        starting_balance=cash,
        taker_fee=FEE,
        maker_fee=FEE,
        stop_loss_pct=None,
        take_profit_pct=None,
        position_sizing=PositionSizing.FIXED_QUANTITY,
        fixed_quantity=QUANTITY,
        funding_mode=FundingMode.OFF,
        risk=RiskSettings(enabled=()),
        symbols=(SymbolSpec(candles[0].symbol, tick_size=0.0, step_size=UNIT),),
    )
    signals = sma_cross(candles, FAST, SLOW).signals()
    signals[-1] = None
    ours = run_backtest(candles, signals, settings)

    assert len(ours.trades) >= 20
    assert len(ours.trades) == len(peer_trades)
    for trade, (_, row) in zip(ours.trades, peer_trades.iterrows(), strict=True):
        assert trade.entry_time == row["EntryTime"].value // 1_000_000
        assert trade.exit_time == row["ExitTime"].value // 1_000_000
        assert trade.entry_price == row["EntryPrice"]
        assert trade.exit_price == row["ExitPrice"]
        assert trade.quantity == abs(row["Size"])
        assert (trade.side == "long") == (row["Size"] > 0)
        assert trade.net_pnl == pytest.approx(row["PnL"], rel=1e-9, abs=1e-9)
    final = ours.metrics["final_equity"]
    assert final == pytest.approx(peer["Equity Final [$]"], rel=1e-9)
    assert ours.final_state["positions"], "the last reversal stays open on both sides"
