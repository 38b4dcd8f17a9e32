"""Indicators against independent straightforward loops, a textbook example and real data."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import numpy as np
import pandas_ta
import pytest
import talib

from core.datafiles import load_candles
from trading import indicators as ind

DATA = Path(__file__).resolve().parents[2] / "data" / "candles"
NAN = float("nan")

# Wilder's RSI worked example (New Concepts in Technical Trading Systems, as tabulated by
# StockCharts with closes rounded to cents): the first 14-period RSI is 70.46.
WILDER_CLOSES = [
    44.34,
    44.09,
    44.15,
    43.61,
    44.33,
    44.83,
    45.10,
    45.42,
    45.84,
    46.08,
    45.89,
    46.03,
    45.61,
    46.28,
    46.28,
    46.00,
    46.03,
    46.41,
    46.22,
    45.64,
    46.21,
    46.25,
    45.71,
    46.45,
    45.78,
    45.35,
    44.03,
    44.18,
    44.22,
    44.57,
    43.42,
    42.66,
    43.13,
]


# --- reference implementations: plain loops written from the textbook definitions -------------


def ref_rsi(close: list[float], n: int) -> list[float]:
    out = [NAN] * len(close)
    changes = [b - a for a, b in zip(close, close[1:], strict=False)]
    if len(changes) < n:
        return out
    gain = sum(max(c, 0.0) for c in changes[:n]) / n
    loss = sum(max(-c, 0.0) for c in changes[:n]) / n
    out[n] = 100 * gain / (gain + loss)
    for i in range(n + 1, len(close)):
        c = changes[i - 1]
        gain = (gain * (n - 1) + max(c, 0.0)) / n
        loss = (loss * (n - 1) + max(-c, 0.0)) / n
        out[i] = 100 * gain / (gain + loss)
    return out


def ref_ema(values: list[float], n: int, first: int | None = None) -> list[float]:
    """EMA seeded with the SMA of the n values ending at index ``first`` (default n - 1)."""
    first = n - 1 if first is None else first
    out = [NAN] * len(values)
    alpha = 2 / (n + 1)
    out[first] = sum(values[first - n + 1 : first + 1]) / n
    for i in range(first + 1, len(values)):
        out[i] = alpha * values[i] + (1 - alpha) * out[i - 1]
    return out


def ref_true_range(high: list[float], low: list[float], close: list[float]) -> list[float]:
    return [NAN] + [
        max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
        for i in range(1, len(close))
    ]


def ref_atr(high: list[float], low: list[float], close: list[float], n: int) -> list[float]:
    tr = ref_true_range(high, low, close)
    out = [NAN] * len(close)
    out[n] = sum(tr[1 : n + 1]) / n
    for i in range(n + 1, len(close)):
        out[i] = (out[i - 1] * (n - 1) + tr[i]) / n
    return out


def ref_sma(values: list[float], n: int) -> list[float]:
    return [NAN if i < n - 1 else sum(values[i - n + 1 : i + 1]) / n for i in range(len(values))]


def ref_stochastic(high, low, close, k: int, d: int, smooth: int) -> tuple[list[float], list[float]]:
    fast = [NAN] * len(close)
    for i in range(k - 1, len(close)):
        hh, ll = max(high[i - k + 1 : i + 1]), min(low[i - k + 1 : i + 1])
        fast[i] = 0.0 if hh == ll else 100 * (close[i] - ll) / (hh - ll)
    slow_k = [
        NAN if i < k + smooth - 2 else sum(fast[i - smooth + 1 : i + 1]) / smooth for i in range(len(close))
    ]
    first_d = k + smooth + d - 3
    slow_d = [NAN if i < first_d else sum(slow_k[i - d + 1 : i + 1]) / d for i in range(len(close))]
    return slow_k, slow_d


def assert_close(actual: np.ndarray, expected: list[float], rel: float = 1e-9, abs_: float = 1e-9) -> None:
    expected_arr = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected_arr.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected_arr), err_msg="NaN positions differ")
    np.testing.assert_allclose(
        actual[~np.isnan(actual)], expected_arr[~np.isnan(expected_arr)], rtol=rel, atol=abs_
    )


@pytest.fixture(scope="module")
def btc() -> dict[str, list[float]]:
    candles = load_candles(DATA / "BTCUSDT-5m-2023-01.csv.gz")[:3000]
    return {f: [getattr(c, f) for c in candles] for f in ("open", "high", "low", "close", "volume")}


@pytest.fixture(scope="module")
def alt() -> dict[str, list[float]]:
    """NXT/BTC: prices around 3e-5 BTC, where absolute-epsilon shortcuts would break."""
    candles = load_candles(DATA / "NXTBTC-5m-2018-01.csv.gz")[:3000]
    return {f: [getattr(c, f) for c in candles] for f in ("open", "high", "low", "close", "volume")}


def test_pandas_ta_runs_on_talib() -> None:
    assert pandas_ta.Imports["talib"] is True
    close = np.linspace(100, 120, 60) + np.sin(np.arange(60))
    np.testing.assert_array_equal(ind.rsi(close, 14), talib.RSI(close, 14))


def test_rsi_reproduces_wilders_worked_example() -> None:
    values = ind.rsi(WILDER_CLOSES, 14)
    assert np.isnan(values[:14]).all()
    assert round(values[14], 2) == 70.46
    assert_close(values, ref_rsi(WILDER_CLOSES, 14))


@pytest.mark.parametrize("series", ["btc", "alt"])
@pytest.mark.parametrize("length", [2, 14, 30])
def test_rsi_matches_wilder_loop_on_real_data(
    series: str, length: int, request: pytest.FixtureRequest
) -> None:
    close = request.getfixturevalue(series)["close"]
    assert_close(ind.rsi(close, length), ref_rsi(close, length), rel=1e-8, abs_=1e-8)


def test_rsi_hand_series_extremes() -> None:
    rising = [float(i) for i in range(1, 21)]
    assert ind.rsi(rising, 14)[-1] == pytest.approx(100.0)
    assert ind.rsi(rising[::-1], 14)[-1] == pytest.approx(0.0)
    # Nothing has moved yet: neither oversold nor overbought.
    flat = ind.rsi([5.0] * 20, 14)
    assert np.isnan(flat[:14]).all() and (flat[14:] == 50.0).all()


@pytest.mark.parametrize("length", [2, 9, 50])
def test_ema_matches_sma_seeded_loop(btc: dict[str, list[float]], length: int) -> None:
    assert_close(ind.ema(btc["close"], length), ref_ema(btc["close"], length))


def test_ema_hand_series() -> None:
    # EMA(3): seed (1+2+3)/3 = 2, then alpha 0.5: 0.5*4 + 0.5*2 = 3, 0.5*10 + 0.5*3 = 6.5.
    assert_close(ind.ema([1.0, 2.0, 3.0, 4.0, 10.0], 3), [NAN, NAN, 2.0, 3.0, 6.5])


def test_macd_matches_talib_seeding_convention(btc: dict[str, list[float]]) -> None:
    close = btc["close"]
    fast, slow, signal = 12, 26, 9
    fast_ema = ref_ema(close, fast, first=slow - 1)  # both EMAs start together on candle slow-1
    slow_ema = ref_ema(close, slow)
    line = [f - s for f, s in zip(fast_ema, slow_ema, strict=True)]
    first_signal = slow - 1 + signal - 1
    signal_line = [NAN] * (slow - 1) + ref_ema(line[slow - 1 :], signal)
    line = [NAN] * first_signal + line[first_signal:]
    histogram = [a - b for a, b in zip(line, signal_line, strict=True)]
    result = ind.macd(close, fast, slow, signal)
    assert_close(result.line, line, rel=1e-8, abs_=1e-8)
    assert_close(result.signal, signal_line, rel=1e-8, abs_=1e-8)
    assert_close(result.histogram, histogram, rel=1e-7, abs_=1e-8)


def test_macd_line_converges_to_standalone_emas(btc: dict[str, list[float]]) -> None:
    close = btc["close"]
    standalone = np.asarray(ref_ema(close, 12)) - np.asarray(ref_ema(close, 26))
    # The fast EMA's later seed is forgotten after a few hundred candles.
    np.testing.assert_allclose(ind.macd(close).line[500:], standalone[500:], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("series", ["btc", "alt"])
def test_bollinger_uses_population_std(series: str, request: pytest.FixtureRequest) -> None:
    close = request.getfixturevalue(series)["close"]
    n, k = 20, 2.0
    mid = ref_sma(close, n)
    std = [NAN if i < n - 1 else statistics.pstdev(close[i - n + 1 : i + 1]) for i in range(len(close))]
    lower = [m - k * s for m, s in zip(mid, std, strict=True)]
    upper = [m + k * s for m, s in zip(mid, std, strict=True)]
    bands = ind.bollinger(close, n, k)
    scale = max(close)
    assert_close(bands.mid, mid, abs_=1e-9 * scale)
    assert_close(bands.lower, lower, abs_=1e-6 * scale)
    assert_close(bands.upper, upper, abs_=1e-6 * scale)
    width = np.asarray(upper) - np.asarray(lower)
    assert_close(bands.bandwidth, list(100 * width / np.asarray(mid)), rel=1e-5)
    valid = width > 1e-3 * scale  # %b is ill-conditioned when the bands pinch together
    expected_b = (np.asarray(close) - np.asarray(lower)) / width
    np.testing.assert_allclose(bands.percent_b[valid], expected_b[valid], rtol=1e-5, atol=1e-5)


def test_bollinger_hand_series() -> None:
    bands = ind.bollinger([1.0, 2.0, 3.0, 4.0, 5.0], length=5, std=2.0)
    sigma = math.sqrt(2.0)  # population std of 1..5
    assert bands.mid[-1] == pytest.approx(3.0)
    assert bands.lower[-1] == pytest.approx(3.0 - 2 * sigma)
    assert bands.upper[-1] == pytest.approx(3.0 + 2 * sigma)
    assert bands.percent_b[-1] == pytest.approx((5.0 - (3.0 - 2 * sigma)) / (4 * sigma))
    assert bands.bandwidth[-1] == pytest.approx(100 * 4 * sigma / 3.0)


@pytest.mark.parametrize(("k", "d", "smooth"), [(14, 3, 3), (5, 3, 1), (9, 4, 2), (14, 5, 5)])
@pytest.mark.parametrize("series", ["btc", "alt"])
def test_stochastic_matches_loop(
    series: str, k: int, d: int, smooth: int, request: pytest.FixtureRequest
) -> None:
    data = request.getfixturevalue(series)
    expected_k, expected_d = ref_stochastic(data["high"], data["low"], data["close"], k, d, smooth)
    result = ind.stochastic(data["high"], data["low"], data["close"], k, d, smooth)
    first_d = k + smooth + d - 3
    # %K may start earlier on pandas-ta's rolling path; from %D's first candle both paths agree.
    assert_close(result.k[first_d:], expected_k[first_d:], rel=1e-7, abs_=1e-7)
    assert_close(result.d, expected_d, rel=1e-7, abs_=1e-7)


def test_stochastic_hand_series_with_flat_range() -> None:
    high = [10.0, 12.0, 14.0, 14.0, 14.0, 14.0]
    low = [8.0, 9.0, 10.0, 14.0, 14.0, 14.0]
    close = [9.0, 11.0, 13.0, 14.0, 14.0, 14.0]
    result = ind.stochastic(high, low, close, k=1, d=2, smooth_k=1)
    # Fast %K over one candle: (close - low) / (high - low); a zero range reads 0.
    assert_close(result.k, [50.0, 100 * 2 / 3, 75.0, 0.0, 0.0, 0.0])
    assert_close(result.d, [NAN, (50.0 + 100 * 2 / 3) / 2, (100 * 2 / 3 + 75.0) / 2, 37.5, 0.0, 0.0])


@pytest.mark.parametrize("length", [1, 14])
def test_atr_matches_wilder_loop(btc: dict[str, list[float]], length: int) -> None:
    h, lo, c = btc["high"], btc["low"], btc["close"]
    assert_close(ind.atr(h, lo, c, length), ref_atr(h, lo, c, length), rel=1e-8, abs_=1e-8)


def test_atr_hand_series_counts_gaps() -> None:
    # Candle 2 gaps up above the previous close: its true range is high - previous close.
    high, low, close = [10.0, 11.0, 20.0, 21.0], [9.0, 10.0, 18.0, 19.0], [9.5, 10.5, 19.0, 20.0]
    assert ref_true_range(high, low, close)[1:] == [1.5, 9.5, 2.0]
    assert_close(ind.atr(high, low, close, 2), [NAN, NAN, 5.5, 3.75])


def test_volume_sma_and_ratio(btc: dict[str, list[float]]) -> None:
    volume = btc["volume"]
    assert_close(ind.volume_sma(volume, 20), ref_sma(volume, 20), rel=1e-9, abs_=1e-6)
    baseline = [NAN] + ref_sma(volume[:-1], 20)
    expected = [v / b if b > 0 else NAN for v, b in zip(volume, baseline, strict=True)]
    assert_close(ind.volume_ratio(volume, 20), expected, rel=1e-9)


def test_volume_ratio_hand_series() -> None:
    ratio = ind.volume_ratio([1.0, 1.0, 1.0, 4.0, 0.0, 0.0, 0.0, 5.0], 3)
    # The spike is measured against the three candles before it; no baseline after three idle ones.
    assert_close(ratio, [NAN, NAN, NAN, 4.0, 0.0, 0.0, 0.0, NAN])


def test_short_input_gives_all_nan_aligned_output() -> None:
    close = [1.0, 2.0, 3.0]
    assert np.isnan(ind.rsi(close, 14)).all() and len(ind.rsi(close, 14)) == 3
    assert all(np.isnan(a).all() and len(a) == 3 for a in vars_of(ind.macd(close)))
    assert all(np.isnan(a).all() and len(a) == 3 for a in vars_of(ind.bollinger(close)))
    assert all(np.isnan(a).all() and len(a) == 3 for a in vars_of(ind.stochastic(close, close, close)))
    assert np.isnan(ind.atr(close, close, close)).all()
    assert len(ind.ema([], 5)) == 0


def vars_of(result: object) -> list[np.ndarray]:
    return [getattr(result, name) for name in result.__slots__]  # type: ignore[attr-defined]


def test_bad_parameters_are_rejected_with_their_name() -> None:
    with pytest.raises(ValueError, match="rsi length must be an integer >= 2"):
        ind.rsi([1.0] * 30, 1)
    with pytest.raises(ValueError, match="macd slow must be an integer >= 13"):
        ind.macd([1.0] * 30, fast=12, slow=10)
    with pytest.raises(ValueError, match="bollinger std must be a positive number"):
        ind.bollinger([1.0] * 30, std=0)
    with pytest.raises(ValueError, match="stochastic d must be an integer >= 2"):
        ind.stochastic([1.0] * 30, [1.0] * 30, [1.0] * 30, d=1)
    with pytest.raises(ValueError, match="columns differ in length"):
        ind.stochastic([1.0, 2.0], [1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="close must be one-dimensional"):
        ind.ema(np.ones((3, 3)), 2)
