"""Throughput of the analysis path (indicators → strategies → consensus) in candles per second.

Input: data/candles/BTCUSD-1h-2017-2019-coinbase.csv.gz tiled end to end to 1,000,000 candles,
each copy's prices scaled to start at the previous copy's last close (multiplicative, so prices
stay positive) and its times continuing on the hour. Run: ``.venv/bin/python bench/analysis.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from core.datafiles import load_candles
from trading.analysis import AnalysisSettings, CandleArrays, compute_signal_series, compute_signals
from trading.candle import Candle

DATA = Path(__file__).resolve().parents[1] / "data" / "candles" / "BTCUSD-1h-2017-2019-coinbase.csv.gz"
ROWS = 1_000_000
OBJECT_ROWS = 100_000  # building every Signal object is ~100x slower; measured on a slice


def tiled(rows: int) -> CandleArrays:
    source = CandleArrays.from_candles(load_candles(DATA))
    step = int(source.open_time[1] - source.open_time[0])
    span = int(source.open_time[-1] - source.open_time[0]) + step
    copies = -(-rows // len(source))
    prices: dict[str, list[np.ndarray]] = {name: [] for name in ("open", "high", "low", "close")}
    times: list[np.ndarray] = []
    volumes: list[np.ndarray] = []
    scale = 1.0
    for copy in range(copies):
        for name in prices:
            prices[name].append(getattr(source, name) * scale)
        times.append(source.open_time + copy * span)
        volumes.append(source.volume)
        scale *= source.close[-1] / source.open[0]
    return CandleArrays(
        symbol=source.symbol,
        open_time=np.concatenate(times)[:rows],
        volume=np.concatenate(volumes)[:rows],
        **{name: np.concatenate(parts)[:rows] for name, parts in prices.items()},
    )


def best_of(runs: int, action: Callable[[], object]) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def main() -> None:
    settings = AnalysisSettings()
    data = tiled(ROWS)
    candles = [
        Candle(int(t), float(o), float(h), float(lo), float(c), float(v), 3_600_000, data.symbol)
        for t, o, h, lo, c, v in zip(
            data.open_time, data.open, data.high, data.low, data.close, data.volume, strict=True
        )
    ]
    compute_signal_series(data, settings)  # warm imports and caches
    arrays_s = best_of(3, lambda: compute_signal_series(data, settings))
    candles_s = best_of(3, lambda: compute_signal_series(candles, settings))
    objects = candles[:OBJECT_ROWS]
    objects_s = best_of(1, lambda: compute_signals(objects, settings))
    print(f"{ROWS:,} candles (BTCUSD 1h tiled), default settings")
    print(f"SignalSeries from CandleArrays: {arrays_s * 1000:8.1f} ms  {ROWS / arrays_s:12,.0f} candles/s")
    print(f"SignalSeries from list[Candle]: {candles_s * 1000:8.1f} ms  {ROWS / candles_s:12,.0f} candles/s")
    print(
        f"list[Signal] ({OBJECT_ROWS:,} candles):  {objects_s * 1000:8.1f} ms  "
        f"{OBJECT_ROWS / objects_s:12,.0f} candles/s"
    )


if __name__ == "__main__":
    main()
