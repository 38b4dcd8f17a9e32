"""Consensus: combine the enabled strategies' verdicts into one direction per candle.

Votes. Every enabled strategy votes with its weight (1 when no weights are given) for the
direction of its verdict; neutral verdicts vote for nothing. A direction wins when its vote
weight reaches the threshold: ``min_agree`` when no weights are given (at least N strategies
agree; default 3 of 5), else ``min_vote_weight`` (a weighted-vote threshold). "Reaches" allows
1e-9 of the total weight for float rounding (0.1 + 0.7 + 0.3 is 1.0999999999999999).

Conflict. If both directions reach the threshold (possible when the threshold is at most half
the total weight, e.g. 2 of 5), the candle is neutral: the strategies disagree too much to act.

Confidence. ``sum(weight × confidence of the strategies that agree) / sum(weight of all enabled
strategies)``: 1 only when every enabled strategy agrees with full confidence, and it grows both
with how many agree and with how sure they are. Neutral candles have confidence 0.

Reason. Names who agreed with their confidences, e.g. ``long: 3 of 5 agree (rsi 0.82,
bollinger 0.64, volume 0.71)``, or with weights ``long: vote 2.5 >= 2 of 4 ...``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from trading.indicators import FloatArray
from trading.strategies import LONG, SHORT, DirectionArray, StrategyResult


@dataclass(frozen=True, slots=True, eq=False)
class Consensus:
    """The combined direction per candle, as arrays, with the inputs kept to explain any candle."""

    direction: DirectionArray
    confidence: FloatArray
    long_vote: FloatArray
    short_vote: FloatArray
    conflict: npt.NDArray[np.bool_]  # both sides reached the threshold
    threshold: float
    weighted: bool
    results: tuple[StrategyResult, ...]
    weights: tuple[float, ...]

    def reason_at(self, i: int) -> str:
        long_vote, short_vote = float(self.long_vote[i]), float(self.short_vote[i])
        if self.direction[i] == LONG:
            return self._agreement("long", LONG, long_vote, i)
        if self.direction[i] == SHORT:
            return self._agreement("short", SHORT, short_vote, i)
        if self.conflict[i]:
            return (
                f"neutral: conflict, {self._votes(long_vote)} long and {self._votes(short_vote)} short "
                f"both reach {self._threshold()}"
            )
        votes = f"{self._votes(long_vote)} long, {self._votes(short_vote)} short"
        return f"neutral: {votes}; need {self._threshold()}"

    def _agreement(self, side: str, code: int, vote: float, i: int) -> str:
        agreeing = ", ".join(
            f"{r.name} {r.confidence[i]:.2f}" for r in self.results if r.direction[i] == code
        )
        if self.weighted:
            return f"{side}: vote {vote:g} >= {self.threshold:g} of {sum(self.weights):g} ({agreeing})"
        return f"{side}: {vote:g} of {len(self.results)} agree ({agreeing})"

    def _votes(self, vote: float) -> str:
        return f"vote {vote:g}" if self.weighted else f"{vote:g}"

    def _threshold(self) -> str:
        return f"vote {self.threshold:g}" if self.weighted else f"{self.threshold:g} of {len(self.results)}"


def combine(
    results: Sequence[StrategyResult],
    min_agree: int = 3,
    weights: Mapping[str, float] | None = None,
    min_vote_weight: float | None = None,
) -> Consensus:
    """Combine the results of the enabled strategies (all of the same length).

    Without ``weights`` a direction needs ``min_agree`` votes. With ``weights`` (strategy name →
    positive weight; missing names weigh 1) it needs ``min_vote_weight``, which defaults to the
    same share of the total weight as ``min_agree`` is of the strategy count.
    """
    if not results:
        raise ValueError("consensus needs at least one enabled strategy")
    names = [r.name for r in results]
    if len(set(names)) != len(names):
        raise ValueError(f"strategy names must be unique, got {names}")
    lengths = {len(r) for r in results}
    if len(lengths) != 1:
        raise ValueError(
            f"strategy results differ in length: {dict(zip(names, map(len, results), strict=True))}"
        )
    if isinstance(min_agree, bool) or not isinstance(min_agree, int) or not 1 <= min_agree <= len(results):
        raise ValueError(
            f"min_agree must be an integer from 1 to {len(results)} (the enabled strategies), "
            f"got {min_agree!r}"
        )

    weighted = weights is not None
    unknown = sorted(set(weights or {}) - set(names))
    if unknown:
        raise ValueError(f"weights given for strategies that are not enabled: {unknown}")
    vector = [float((weights or {}).get(name, 1.0)) for name in names]
    for name, weight in zip(names, vector, strict=True):
        if not (0 < weight < float("inf")):
            raise ValueError(f"weight for {name!r} must be a finite number > 0, got {weight}")
    total = sum(vector)
    if weighted and min_vote_weight is not None:
        if not (0 < min_vote_weight <= total):
            raise ValueError(
                f"min_vote_weight must be > 0 and at most the total weight {total:g}, got {min_vote_weight}"
            )
        threshold = float(min_vote_weight)
    elif weighted:
        threshold = total * min_agree / len(results)
    else:
        if min_vote_weight is not None:
            raise ValueError("min_vote_weight only applies together with weights")
        threshold = float(min_agree)

    n = lengths.pop()
    # Accumulating strategy by strategy touches each 1-D array once: faster than stacking.
    long_vote, short_vote = np.zeros(n), np.zeros(n)
    long_support, short_support = np.zeros(n), np.zeros(n)
    for result, weight in zip(results, vector, strict=True):
        is_long, is_short = result.direction == LONG, result.direction == SHORT
        support = weight * result.confidence
        long_vote += weight * is_long
        short_vote += weight * is_short
        long_support += np.where(is_long, support, 0.0)
        short_support += np.where(is_short, support, 0.0)
    # Weighted sums like 0.1 + 0.2 + 0.3 must still reach a threshold of 0.6.
    reach = threshold - 1e-9 * total
    long_reaches, short_reaches = long_vote >= reach, short_vote >= reach
    long_wins = long_reaches & ~short_reaches
    short_wins = short_reaches & ~long_reaches

    direction = np.zeros(n, dtype=np.int8)
    direction[long_wins] = LONG
    direction[short_wins] = SHORT
    confidence = np.where(long_wins, long_support, np.where(short_wins, short_support, 0.0)) / total
    return Consensus(
        direction=direction,
        confidence=confidence,
        long_vote=long_vote,
        short_vote=short_vote,
        conflict=long_reaches & short_reaches,
        threshold=threshold,
        weighted=weighted,
        results=tuple(results),
        weights=tuple(vector),
    )
