"""Price prediction: a ridge regression on recent returns, scored walk-forward against a random walk.

**Features** of candle ``t``, all known at its close (``L`` = lookback): the last ``L`` log returns
``r_t … r_{t-L+1}`` (``r_t = ln(close_t / close_{t-1})``), their standard deviation (recent
volatility), the candle's log range ``ln(high_t / low_t)`` and its ``ln(1 + volume)`` against the mean
of the ``L`` candles before it. **Target**: the log return over the next ``horizon`` candles,
``ln(close_{t+h} / close_t)``. Candles are taken as consecutive; a gap in the stored series is read as
one long candle.

**Model**: ridge regression in closed form on features standardised by the training rows, with an
unpenalised intercept (the training mean of the target): minimise
``mean((y - ȳ - Z·w)²) + ridge·|w|²``, i.e. solve ``(ZᵀZ/m + ridge·I) w = Zᵀ(y - ȳ)/m``. ``ridge`` is
in units of a standardised feature's variance, so 1.0 shrinks hard and 0.01 hardly at all.

**Evaluation**: walk-forward. The samples are cut into ``folds + 1`` equal blocks; fold ``k`` trains on
every sample before block ``k`` (less the last ``horizon``, whose targets reach into the block: no
look-ahead) and predicts block ``k``. The baseline is the random walk, which predicts a zero return.
Scores over all predicted samples and per fold: MAE and RMSE of model and baseline, the model's
directional accuracy (a zero prediction or a zero move counts as a miss; ``up_fraction``, the share of
moves up, is what always saying "up" would score) and its skill ``1 - MSE_model / MSE_baseline``,
reported as it comes: a negative skill means the model predicts worse than "no change".

**Determinism**: the same candles and parameters give the same bits on any machine. Arithmetic on
arrays is element by element (IEEE-exact), every sum is ``math.fsum`` (correctly rounded, so no
summation order, SIMD width or BLAS thread count enters), logarithms are ``math.log`` and the linear
system is solved by a small Cholesky in Python. No randomness anywhere.

Pure: numpy and the standard library; no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trading.candle import Candle

type Matrix = npt.NDArray[np.float64]

MIN_FOLD_SAMPLES = 30  # fewer test samples in a fold say nothing
MIN_TRAIN_PER_FEATURE = 5  # training samples per feature in the first fold, at least


@dataclass(frozen=True)
class ModelParams:
    lookback: int
    horizon: int
    ridge: float


def feature_names(lookback: int) -> list[str]:
    return [f"return_lag_{k}" for k in range(lookback)] + ["volatility", "log_range", "log_volume_vs_mean"]


@dataclass(frozen=True)
class Dataset:
    """Feature rows and targets of every candle that has both; ``open_times[i]`` is row i's candle."""

    x: Matrix
    y: Matrix
    open_times: list[int]


@dataclass(frozen=True)
class FoldSpan:
    """Sample indexes: train on ``[0, train_end)``, test on ``[test_start, test_end)``."""

    fold: int
    train_end: int
    test_start: int
    test_end: int


@dataclass(frozen=True)
class FoldStats:
    """One fold's out-of-sample sums, from which every score follows (and which add up over folds)."""

    fold: int
    train_samples: int
    test_samples: int
    test_from: int  # open time of the first candle predicted from
    test_to: int  # open time of the last
    abs_error: float
    squared_error: float
    abs_baseline: float
    squared_baseline: float
    hits: int  # predicted the sign of a non-zero move
    moves: int  # samples with a non-zero move
    ups: int  # moves up


@dataclass(frozen=True)
class Ridge:
    """A fitted model: ``intercept + Σ weights · (x - mean) / scale``."""

    mean: list[float]
    scale: list[float]
    weights: list[float]
    intercept: float

    def predict(self, x: Matrix) -> list[float]:
        z = (x - np.asarray(self.mean)) / np.asarray(self.scale)
        products = (z * np.asarray(self.weights)).tolist()
        return [self.intercept + math.fsum(row) for row in products]


# ---------------------------------------------------------------------------------------------- data
def _checked(candles: Sequence[Candle]) -> None:
    for i, c in enumerate(candles):
        prices = (c.open, c.high, c.low, c.close)
        if not all(math.isfinite(p) and p > 0 for p in prices) or not (math.isfinite(c.volume) and c.volume >= 0):
            raise ValueError(f"candle {c.open_time} has a non-positive or non-finite price or volume")
        if c.high < c.low:
            raise ValueError(f"candle {c.open_time} has high < low")
        if i and c.open_time <= candles[i - 1].open_time:
            raise ValueError(f"candle {c.open_time} is not after the one before it")


def feature_rows(candles: Sequence[Candle], lookback: int) -> Matrix:
    """The feature row of every candle from index ``lookback`` on (row i: candle ``lookback + i``)."""
    if lookback < 1:
        raise ValueError("lookback must be at least 1")
    _checked(candles)
    n = len(candles)
    if n <= lookback:
        return np.empty((0, lookback + 3))
    log_close = [math.log(c.close) for c in candles]
    returns = [0.0] + [log_close[t] - log_close[t - 1] for t in range(1, n)]
    log_volume = [math.log1p(c.volume) for c in candles]
    rows = []
    for t in range(lookback, n):
        lags = returns[t - lookback + 1:t + 1][::-1]
        mean = math.fsum(lags) / lookback
        volatility = math.sqrt(math.fsum((r - mean) ** 2 for r in lags) / lookback)
        log_range = math.log(candles[t].high) - math.log(candles[t].low)
        volume = log_volume[t] - math.fsum(log_volume[t - lookback:t]) / lookback
        rows.append([*lags, volatility, log_range, volume])
    return np.asarray(rows, dtype=np.float64)


def dataset(candles: Sequence[Candle], params: ModelParams) -> Dataset:
    rows = feature_rows(candles, params.lookback)
    count = max(0, len(candles) - params.lookback - params.horizon)
    log_close = [math.log(c.close) for c in candles]
    starts = range(params.lookback, params.lookback + count)
    y = np.asarray([log_close[t + params.horizon] - log_close[t] for t in starts], dtype=np.float64)
    return Dataset(rows[:count], y, [candles[t].open_time for t in starts])


def fold_spans(samples: int, folds: int, horizon: int) -> list[FoldSpan]:
    block = samples // (folds + 1)
    return [FoldSpan(k, max(0, k * block - horizon + 1), k * block, samples if k == folds else (k + 1) * block)
            for k in range(1, folds + 1)]


def min_candles(params: ModelParams, folds: int) -> int:
    """The fewest candles these parameters can be evaluated on (first fold: enough to train on; every
    fold: enough to test)."""
    features = params.lookback + 3
    block = max(MIN_FOLD_SAMPLES, MIN_TRAIN_PER_FEATURE * features + params.horizon)
    return block * (folds + 1) + params.lookback + params.horizon


# --------------------------------------------------------------------------------------------- model
def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _solve_spd(a: list[list[float]], b: list[float]) -> list[float]:
    """``a x = b`` for a symmetric positive-definite ``a`` (Cholesky, sums by ``math.fsum``)."""
    n = len(b)
    low = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1):
            s = a[i][j] - math.fsum(low[i][k] * low[j][k] for k in range(j))
            if i == j:
                if s <= 0:
                    raise ValueError("the ridge system is not positive definite")
                low[i][i] = math.sqrt(s)
            else:
                low[i][j] = s / low[j][j]
    z: list[float] = []
    for i in range(n):
        z.append((b[i] - math.fsum(low[i][k] * z[k] for k in range(i))) / low[i][i])
    x = [0.0] * n
    for i in reversed(range(n)):
        x[i] = (z[i] - math.fsum(low[k][i] * x[k] for k in range(i + 1, n))) / low[i][i]
    return x


def fit(x: Matrix, y: Matrix, ridge: float) -> Ridge:
    m, p = x.shape
    if m < 2:
        raise ValueError("at least two training samples are needed")
    if not (math.isfinite(ridge) and ridge > 0):
        raise ValueError("ridge must be a positive number")
    columns = [x[:, j] for j in range(p)]
    mean = [_mean(col.tolist()) for col in columns]
    scale = [math.sqrt(math.fsum(((col - mu) ** 2).tolist()) / m) or 1.0 for col, mu in zip(columns, mean, strict=True)]
    z = [(col - mu) / sd for col, mu, sd in zip(columns, mean, scale, strict=True)]
    intercept = _mean(y.tolist())
    centred = y - intercept
    gram = [[0.0] * p for _ in range(p)]
    for i in range(p):
        for j in range(i + 1):
            gram[i][j] = gram[j][i] = math.fsum((z[i] * z[j]).tolist()) / m
        gram[i][i] += ridge
    rhs = [math.fsum((zi * centred).tolist()) / m for zi in z]
    return Ridge(mean, scale, _solve_spd(gram, rhs), intercept)


# ---------------------------------------------------------------------------------------- evaluation
def evaluate_fold(data: Dataset, span: FoldSpan, ridge: float) -> FoldStats:
    model = fit(data.x[:span.train_end], data.y[:span.train_end], ridge)
    predicted = model.predict(data.x[span.test_start:span.test_end])
    actual = data.y[span.test_start:span.test_end].tolist()
    errors = [a - p for a, p in zip(actual, predicted, strict=True)]
    moves = [(a, p) for a, p in zip(actual, predicted, strict=True) if a != 0]
    return FoldStats(
        fold=span.fold, train_samples=span.train_end, test_samples=len(actual),
        test_from=data.open_times[span.test_start], test_to=data.open_times[span.test_end - 1],
        abs_error=math.fsum(abs(e) for e in errors), squared_error=math.fsum(e * e for e in errors),
        abs_baseline=math.fsum(abs(a) for a in actual), squared_baseline=math.fsum(a * a for a in actual),
        hits=sum(1 for a, p in moves if (a > 0 and p > 0) or (a < 0 and p < 0)),
        moves=len(moves), ups=sum(1 for a, _ in moves if a > 0),
    )


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _scores_of(n: int, abs_error: float, squared_error: float, abs_baseline: float, squared_baseline: float,
               hits: int, moves: int, ups: int) -> dict[str, object]:
    mse_ratio = _ratio(squared_error, squared_baseline)
    return {
        "samples": n,
        "model": {"mae": abs_error / n, "rmse": math.sqrt(squared_error / n),
                  "directional_accuracy": _ratio(hits, moves)},
        "baseline": {"mae": abs_baseline / n, "rmse": math.sqrt(squared_baseline / n)},
        "skill": None if mse_ratio is None else 1.0 - mse_ratio,
        "up_fraction": _ratio(ups, moves),
    }


def scores(folds: Sequence[FoldStats]) -> dict[str, object]:
    """Scores over every predicted sample, and each fold's with its test window."""
    if not folds:
        raise ValueError("no fold to score")
    total = _scores_of(
        sum(f.test_samples for f in folds), math.fsum(f.abs_error for f in folds),
        math.fsum(f.squared_error for f in folds), math.fsum(f.abs_baseline for f in folds),
        math.fsum(f.squared_baseline for f in folds), sum(f.hits for f in folds), sum(f.moves for f in folds),
        sum(f.ups for f in folds))
    per_fold = [{"fold": f.fold, "train_samples": f.train_samples, "test_from": f.test_from, "test_to": f.test_to,
                 **_scores_of(f.test_samples, f.abs_error, f.squared_error, f.abs_baseline, f.squared_baseline,
                              f.hits, f.moves, f.ups)} for f in folds]
    return {**total, "folds": per_fold}


def walk_forward(candles: Sequence[Candle], params: ModelParams, folds: int) -> dict[str, object]:
    """The whole evaluation in one call (the training workflow runs it fold by fold)."""
    data = dataset(candles, params)
    return scores([evaluate_fold(data, span, params.ridge) for span in fold_spans(len(data.y), folds, params.horizon)])


def predict_latest(model: Ridge, candles: Sequence[Candle], lookback: int) -> float:
    """The predicted log return from the last candle's close over the model's horizon."""
    rows = feature_rows(candles, lookback)
    if not len(rows):
        raise ValueError(f"a prediction needs at least {lookback + 1} candles")
    return model.predict(rows[-1:])[0]
