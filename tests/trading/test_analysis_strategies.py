"""The five strategies on hand-made indicator arrays: direction, confidence formula, reason."""

from __future__ import annotations

import numpy as np
import pytest

from trading.signals import Direction
from trading.strategies import (
    LONG,
    NEUTRAL,
    SHORT,
    BollingerParams,
    MacdParams,
    RsiParams,
    StochasticParams,
    VolumeParams,
    bollinger_strategy,
    macd_strategy,
    rsi_strategy,
    stochastic_strategy,
    volume_strategy,
)

NAN = float("nan")


def arr(*values: float) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)


def test_rsi_thresholds_confidence_and_reasons() -> None:
    result = rsi_strategy(arr(NAN, 27.4, 30.0, 50.0, 70.0, 85.0, 0.0), RsiParams())
    assert result.direction.tolist() == [NEUTRAL, LONG, NEUTRAL, NEUTRAL, NEUTRAL, SHORT, LONG]
    expected = [0.0, 0.5 + 0.5 * 2.6 / 30, 0.0, 0.0, 0.0, 0.5 + 0.5 * 15 / 30, 1.0]
    np.testing.assert_allclose(result.confidence, expected)
    assert result.verdict_at(1).reason == "RSI 27.40 < 30 oversold"
    assert result.verdict_at(5).reason == "RSI 85.00 > 70 overbought"
    assert result.verdict_at(3).reason == "RSI 50.00 within 30..70"
    assert result.verdict_at(0).reason == "RSI(14) not available yet"
    verdict = result.verdict_at(1)
    assert (verdict.strategy, verdict.direction) == ("rsi", Direction.LONG)


def test_rsi_custom_levels() -> None:
    result = rsi_strategy(arr(22.0, 38.0, 62.0), RsiParams(length=7, oversold=40, overbought=60))
    assert result.direction.tolist() == [LONG, LONG, SHORT]
    assert result.verdict_at(1).reason == "RSI 38.00 < 40 oversold"


def test_macd_histogram_cross_with_trend_confidence() -> None:
    line = arr(NAN, -5.0, -4.0, -3.0, 2.0, 3.0, 1.0, -1.0)
    histogram = arr(NAN, -1.0, -0.5, 0.4, 0.6, -0.2, 0.3, -0.1)
    signal = line - histogram
    result = macd_strategy(line, signal, histogram, MacdParams())
    assert result.direction.tolist() == [NEUTRAL, NEUTRAL, NEUTRAL, LONG, NEUTRAL, SHORT, LONG, SHORT]
    # Long below the zero line is against the trend (0.6); short below it is with the trend (0.9).
    np.testing.assert_allclose(result.confidence, [0, 0, 0, 0.6, 0, 0.6, 0.9, 0.9])
    assert result.verdict_at(3).reason == (
        "MACD crossed above its signal (histogram -0.5 -> 0.4; line -3, signal -3.4); "
        "line below zero, against the trend"
    )
    assert result.verdict_at(7).reason.startswith("MACD crossed below its signal (histogram 0.3 -> -0.1")
    assert result.verdict_at(4).reason.startswith("MACD no cross")
    assert result.verdict_at(1).reason == "MACD(12,26,9) not available yet"


def test_bollinger_close_touching_bands() -> None:
    close = arr(100.0, 89.0, 95.0, 111.0, 130.0, 100.0)
    lower = arr(NAN, 90.0, 90.0, 90.0, 90.0, 90.0)
    upper = arr(NAN, 110.0, 110.0, 110.0, 110.0, 110.0)
    percent_b = (close - lower) / (upper - lower)
    result = bollinger_strategy(close, lower, upper, percent_b, BollingerParams())
    assert result.direction.tolist() == [NEUTRAL, LONG, NEUTRAL, SHORT, SHORT, NEUTRAL]
    # %b -0.05 → 0.5 + 0.5 × 0.1; %b 2.0 is past half a band width → 1.
    np.testing.assert_allclose(result.confidence, [0, 0.55, 0, 0.55, 1.0, 0])
    assert result.verdict_at(1).reason == "close 89 <= lower band 90 (%b -0.05)"
    assert result.verdict_at(3).reason == "close 111 >= upper band 110 (%b 1.05)"
    assert result.verdict_at(2).reason == "close 95 inside bands 90..110 (%b 0.25)"
    assert result.verdict_at(0).reason == "Bollinger(20,2) not available yet"


def test_bollinger_exactly_on_the_band_counts_as_a_touch() -> None:
    result = bollinger_strategy(
        arr(90.0, 110.0), arr(90.0, 90.0), arr(110.0, 110.0), arr(0.0, 1.0), BollingerParams()
    )
    assert result.direction.tolist() == [LONG, SHORT]
    np.testing.assert_allclose(result.confidence, [0.5, 0.5])


def test_volume_spike_takes_the_close_to_close_direction() -> None:
    close = arr(10.0, 11.0, 10.5, 10.5, 10.8, 10.0)
    ratio = arr(NAN, 2.0, 4.0, 3.0, 1.2, 1.5)
    result = volume_strategy(close, ratio, VolumeParams())
    assert result.direction.tolist() == [NEUTRAL, LONG, SHORT, NEUTRAL, NEUTRAL, SHORT]
    np.testing.assert_allclose(result.confidence, [0, 0.5 + 0.5 * 0.5 / 1.5, 1.0, 0, 0, 0.5])
    assert (
        result.verdict_at(1).reason == "volume 2.00x its 20-candle average >= 1.5 on a rising close 10 -> 11"
    )
    assert (
        result.verdict_at(2).reason
        == "volume 4.00x its 20-candle average >= 1.5 on a falling close 11 -> 10.5"
    )
    assert (
        result.verdict_at(3).reason
        == "volume 3.00x its 20-candle average >= 1.5 but close 10.5 -> 10.5 unchanged"
    )
    assert result.verdict_at(4).reason == "volume 1.20x its 20-candle average < 1.5, no spike"
    assert result.verdict_at(0).reason == "volume ratio vs SMA(20) not available yet"


def test_volume_without_a_baseline_is_neutral_and_says_why() -> None:
    params = VolumeParams(length=2)
    result = volume_strategy(arr(1.0, 1.0, 1.0, 2.0), arr(NAN, NAN, NAN, NAN), params)
    assert result.direction.tolist() == [NEUTRAL] * 4
    assert result.verdict_at(1).reason == "volume ratio vs SMA(2) not available yet"
    assert result.verdict_at(3).reason == "no volume in the previous 2 candles to compare with"


def test_stochastic_cross_inside_zones_only() -> None:
    k = arr(NAN, 10.0, 15.0, 50.0, 55.0, 90.0, 85.0, 85.0, 82.0)
    d = arr(NAN, 12.0, 12.0, 52.0, 52.0, 88.0, 88.0, 84.0, 86.0)
    result = stochastic_strategy(k, d, StochasticParams())
    # 2: %K over %D with %D 12 < 20 → long; 4: cross at 52 is outside the zones;
    # 6: %K under %D with %D 88 > 80 → short; 7: back above; 8: under again with %D 86.
    assert result.direction.tolist() == [
        NEUTRAL,
        NEUTRAL,
        LONG,
        NEUTRAL,
        NEUTRAL,
        NEUTRAL,
        SHORT,
        NEUTRAL,
        SHORT,
    ]
    np.testing.assert_allclose(
        result.confidence[[2, 6, 8]], [0.5 + 0.5 * 8 / 20, 0.5 + 0.5 * 8 / 20, 0.5 + 0.5 * 6 / 20]
    )
    assert result.verdict_at(2).reason == "Stochastic %K crossed above %D below 20 (%K 15.00, %D 12.00)"
    assert result.verdict_at(6).reason == "Stochastic %K crossed below %D above 80 (%K 85.00, %D 88.00)"
    assert result.verdict_at(4).reason == "Stochastic cross outside 20/80 zones (%K 55.00, %D 52.00)"
    assert result.verdict_at(5).reason == "Stochastic no cross (%K 90.00, %D 88.00)"
    assert result.verdict_at(1).reason == "Stochastic(14,3,3) not available yet"


def test_confidence_is_always_within_unit_interval() -> None:
    rng = np.random.default_rng(7)
    values = rng.uniform(-50, 150, 500)
    results = [
        rsi_strategy(values, RsiParams()),
        stochastic_strategy(values, np.roll(values, 1), StochasticParams()),
        volume_strategy(values, np.abs(values) / 10, VolumeParams()),
        bollinger_strategy(values, values - 1, values + 1, values / 50, BollingerParams()),
    ]
    for result in results:
        assert ((result.confidence >= 0) & (result.confidence <= 1)).all(), result.name
        assert (result.confidence[result.direction == NEUTRAL] == 0).all(), result.name
        assert (result.confidence[result.direction != NEUTRAL] >= 0.5).all(), result.name


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: RsiParams(length=1), r"RSI length must be a whole number from 2 to 100 candles, got 1"),
        (lambda: RsiParams(oversold=0), r"RSI oversold level must be a number above 0 and below 100, got 0"),
        (
            lambda: RsiParams(oversold=70, overbought=30),
            r"RSI oversold level \(70\) must be below the RSI overbought level \(30\)",
        ),
        (lambda: RsiParams(length=14.0), r"RSI length must be a whole number from 2 to 100 candles, got 14.0"),
        (lambda: MacdParams(fast=26, slow=12), r"MACD fast length \(26\) must be below the MACD slow length \(12\)"),
        (lambda: MacdParams(signal=True), r"MACD signal length must be a whole number from 2 to 100 candles, got True"),
        (lambda: BollingerParams(std=-1), r"Bollinger width must be a number above 0 and at most 5 standard"),
        (lambda: BollingerParams(std=float("nan")), r"Bollinger width must be a number above 0 .*, got nan"),
        (lambda: VolumeParams(min_ratio=0.8), r"Volume spike ratio must be a number above 1 .*, got 0.8"),
        (lambda: VolumeParams(length=0), r"Volume average length must be a whole number from 1 to 200 candles, got 0"),
        (lambda: StochasticParams(d=1), r"Stochastic %D length must be a whole number from 2 to 20 candles, got 1"),
        (lambda: RsiParams(length=100_000), r"RSI length must be a whole number from 2 to 100 candles, got 100000"),
        (
            lambda: StochasticParams(overbought=100),
            r"Stochastic overbought level must be a number above 0 and below 100, got 100",
        ),
    ],
)
def test_params_validation_names_the_field(build, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_params_store_levels_as_floats() -> None:
    assert RsiParams(oversold=25) == RsiParams(oversold=25.0)
    assert isinstance(BollingerParams(std=3).std, float)
