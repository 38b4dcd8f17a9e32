"""Consensus of strategy verdicts: N-of-M, weights, conflicts, confidence formula, reasons."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.consensus import combine
from trading.strategies import LONG, NEUTRAL, SHORT, STRATEGY_NAMES, StrategyResult


def result(name: str, directions: list[int], confidences: list[float]) -> StrategyResult:
    return StrategyResult(
        name=name,
        direction=np.asarray(directions, dtype=np.int8),
        confidence=np.asarray(confidences, dtype=np.float64),
        explain=lambda i: f"{name} candle {i}",
    )


def five(columns: list[list[int]], confidence: float = 0.8) -> list[StrategyResult]:
    """One row per strategy (rsi, macd, bollinger, volume, stochastic), one column per candle."""
    return [
        result(name, row, [confidence if d != NEUTRAL else 0.0 for d in row])
        for name, row in zip(STRATEGY_NAMES, columns, strict=True)
    ]


L, S, N = LONG, SHORT, NEUTRAL


def test_three_of_five_by_default() -> None:
    consensus = combine(
        five(
            [
                [L, L, S, L],
                [L, L, S, N],
                [L, N, S, S],
                [N, N, N, S],
                [N, S, L, N],
            ]
        )
    )
    assert consensus.direction.tolist() == [LONG, NEUTRAL, SHORT, NEUTRAL]
    assert consensus.long_vote.tolist() == [3, 2, 1, 1]
    assert consensus.short_vote.tolist() == [0, 1, 3, 2]
    # 3 strategies at 0.8 out of 5 → 2.4 / 5.
    np.testing.assert_allclose(consensus.confidence, [0.48, 0, 0.48, 0])


def test_reason_names_who_agreed() -> None:
    results = [
        result("rsi", [L], [0.82]),
        result("macd", [N], [0.0]),
        result("bollinger", [L], [0.64]),
        result("volume", [L], [0.71]),
        result("stochastic", [S], [0.9]),
    ]
    consensus = combine(results)
    assert consensus.direction.tolist() == [LONG]
    assert consensus.reason_at(0) == "long: 3 of 5 agree (rsi 0.82, bollinger 0.64, volume 0.71)"
    assert consensus.confidence[0] == pytest.approx((0.82 + 0.64 + 0.71) / 5)


def test_neutral_reason_counts_votes() -> None:
    consensus = combine(five([[L], [S], [N], [N], [L]]))
    assert consensus.reason_at(0) == "neutral: 2 long, 1 short; need 3 of 5"


def test_conflict_when_both_sides_reach_the_threshold() -> None:
    consensus = combine(five([[L], [L], [S], [S], [N]]), min_agree=2)
    assert consensus.direction.tolist() == [NEUTRAL]
    assert consensus.confidence.tolist() == [0.0]
    assert consensus.reason_at(0) == "neutral: conflict, 2 long and 2 short both reach 2 of 5"


def test_unanimous_full_confidence_is_one() -> None:
    consensus = combine(five([[S]] * 5, confidence=1.0), min_agree=5)
    assert consensus.direction.tolist() == [SHORT]
    assert consensus.confidence.tolist() == [1.0]


def test_subset_of_strategies() -> None:
    results = five([[L], [L], [N], [N], [N]])[:2]
    consensus = combine(results, min_agree=2)
    assert consensus.direction.tolist() == [LONG]
    assert consensus.reason_at(0) == "long: 2 of 2 agree (rsi 0.80, macd 0.80)"


def test_weights_default_threshold_keeps_the_min_agree_share() -> None:
    # Total weight 2+1+1+1+1 = 6; 3 of 5 → threshold 3.6. rsi (2) + macd (1) = 3 is short of it,
    # rsi + macd + bollinger = 4 reaches it.
    weights = {"rsi": 2.0}
    two = combine(five([[L], [L], [N], [N], [N]]), weights=weights)
    three = combine(five([[L], [L], [L], [N], [N]]), weights=weights)
    assert two.threshold == pytest.approx(3.6)
    assert two.direction.tolist() == [NEUTRAL]
    assert three.direction.tolist() == [LONG]
    assert three.confidence[0] == pytest.approx((2 * 0.8 + 0.8 + 0.8) / 6)
    assert three.reason_at(0) == "long: vote 4 >= 3.6 of 6 (rsi 0.80, macd 0.80, bollinger 0.80)"


def test_explicit_weighted_threshold() -> None:
    weights = {"rsi": 3.0, "macd": 1.0, "bollinger": 1.0, "volume": 1.0, "stochastic": 1.0}
    consensus = combine(five([[L, N], [N, S], [N, S], [N, S], [S, N]]), weights=weights, min_vote_weight=3)
    # Candle 0: rsi alone carries 3 long; candle 1: three weight-1 shorts make 3.
    assert consensus.direction.tolist() == [LONG, SHORT]
    assert consensus.reason_at(1).startswith("short: vote 3 >= 3 of 7")


def test_weighted_threshold_survives_float_rounding() -> None:
    weights = {"rsi": 0.1, "macd": 0.7, "bollinger": 0.3, "volume": 1.0, "stochastic": 1.0}
    consensus = combine(five([[L], [L], [L], [N], [N]]), weights=weights, min_vote_weight=1.1)
    assert consensus.long_vote[0] < 1.1  # 0.1 + 0.7 + 0.3 in floating point is 1.0999999999999999
    assert consensus.direction.tolist() == [LONG]


def test_validation_errors() -> None:
    results = five([[L], [L], [L], [N], [N]])
    with pytest.raises(ValueError, match="min_agree must be an integer from 1 to 5"):
        combine(results, min_agree=6)
    with pytest.raises(ValueError, match="min_agree must be an integer from 1 to 5"):
        combine(results, min_agree=0)
    with pytest.raises(
        ValueError, match=r"weights given for strategies that are not enabled: \['momentum'\]"
    ):
        combine(results, weights={"momentum": 1.0})
    with pytest.raises(ValueError, match="weight for 'rsi' must be a finite number > 0"):
        combine(results, weights={"rsi": 0.0})
    with pytest.raises(ValueError, match="min_vote_weight must be > 0 and at most the total weight 5"):
        combine(results, weights={}, min_vote_weight=6)
    with pytest.raises(ValueError, match="min_vote_weight only applies together with weights"):
        combine(results, min_vote_weight=2)
    with pytest.raises(ValueError, match="at least one enabled strategy"):
        combine([])
    with pytest.raises(ValueError, match="strategy names must be unique"):
        combine([results[0], results[0]], min_agree=1)
    with pytest.raises(ValueError, match="strategy results differ in length"):
        combine([results[0], result("macd", [L, L], [1.0, 1.0])], min_agree=1)


@settings(max_examples=200, deadline=None, database=None)
@given(
    votes=st.lists(st.lists(st.sampled_from([L, S, N]), min_size=5, max_size=5), min_size=1, max_size=30),
    confidence=st.floats(0.5, 1.0),
    min_agree=st.integers(1, 5),
    rsi_weight=st.sampled_from([None, 0.5, 1.0, 2.5]),
)
def test_consensus_invariants(votes: list[list[int]], confidence: float, min_agree: int, rsi_weight) -> None:
    columns = [list(row) for row in zip(*votes, strict=True)]
    weights = None if rsi_weight is None else {"rsi": rsi_weight}
    consensus = combine(five(columns, confidence), min_agree=min_agree, weights=weights)
    total = 5 if rsi_weight is None else 4 + rsi_weight
    for i, column in enumerate(votes):
        w = [total - 4, 1, 1, 1, 1]
        long_vote = sum(wi for wi, d in zip(w, column, strict=True) if d == L)
        short_vote = sum(wi for wi, d in zip(w, column, strict=True) if d == S)
        assert consensus.long_vote[i] == pytest.approx(long_vote)
        assert consensus.short_vote[i] == pytest.approx(short_vote)
        code = consensus.direction[i]
        if code == LONG:
            assert long_vote >= consensus.threshold > short_vote
            assert consensus.confidence[i] == pytest.approx(confidence * long_vote / total)
        elif code == SHORT:
            assert short_vote >= consensus.threshold > long_vote
            assert consensus.confidence[i] == pytest.approx(confidence * short_vote / total)
        else:
            assert consensus.confidence[i] == 0
            # Neither side reached the threshold, or both did (a conflict).
            assert (long_vote < consensus.threshold) == (short_vote < consensus.threshold)
