"""Reconciliation fails closed: every kind of difference between what Durabot expects and what the
exchange reports, quantities within half a step, hedge mode always a difference."""

from __future__ import annotations

import pytest

from trading.reconciliation import (
    HEDGE_MODE_REASON,
    KINDS,
    Difference,
    ExpectedAccount,
    ReportedAccount,
    reconcile,
)

BTC, ETH = "BTCUSDT", "ETHUSDT"
STEPS = {BTC: 0.001, ETH: 0.01}


def only(expected: ExpectedAccount, reported: ReportedAccount) -> Difference:
    report = reconcile(expected, reported, STEPS)
    assert not report.ok
    [difference] = report.differences
    return difference


def test_the_same_account_on_both_sides_is_ok():
    same = dict(positions={BTC: 0.02, ETH: -1.5}, open_orders={"m-1": BTC}, open_algo_orders={"sl-1": ETH})
    report = reconcile(ExpectedAccount(**same, margin_types={BTC: "ISOLATED"}, leverage={BTC: 5}),
                       ReportedAccount(**same, margin_types={BTC: "isolated"}, leverage={BTC: 5}), STEPS)
    assert report.ok and report.differences == ()
    assert reconcile(ExpectedAccount(), ReportedAccount()).ok


@pytest.mark.parametrize(("expected", "reported", "kind"), [
    ({BTC: 0.02}, {BTC: 0.03}, "position_mismatch"),
    ({BTC: 0.02}, {BTC: -0.02}, "position_mismatch"),
    ({}, {ETH: -0.5}, "unknown_position"),
    ({ETH: 0.0}, {ETH: 0.5}, "unknown_position"),
    ({BTC: 0.02}, {}, "missing_position"),
])
def test_positions(expected, reported, kind):
    difference = only(ExpectedAccount(positions=expected), ReportedAccount(positions=reported))
    symbol = next(iter(reported or expected))
    assert (difference.kind, difference.symbol) == (kind, symbol)
    assert (difference.expected, difference.actual) == (expected.get(symbol, 0.0), reported.get(symbol, 0.0))


def test_quantities_match_within_half_a_step_and_exactly_without_one():
    assert reconcile(ExpectedAccount(positions={BTC: 0.02}), ReportedAccount(positions={BTC: 0.0204}), STEPS).ok
    assert reconcile(ExpectedAccount(positions={BTC: 0.1 + 0.2}), ReportedAccount(positions={BTC: 0.3}), STEPS).ok
    assert only(ExpectedAccount(positions={BTC: 0.02}), ReportedAccount(positions={BTC: 0.0206})).kind == \
        "position_mismatch"
    # Less than half a step held where nothing is expected is not a position.
    assert reconcile(ExpectedAccount(), ReportedAccount(positions={BTC: 0.0004}), STEPS).ok
    # An unknown step: exact (binary noise aside).
    assert reconcile(ExpectedAccount(positions={"XRPUSDT": 0.3}), ReportedAccount(positions={"XRPUSDT": 0.1 + 0.2})).ok
    assert not reconcile(ExpectedAccount(positions={"XRPUSDT": 10}), ReportedAccount(positions={"XRPUSDT": 10.0004})).ok


def test_orders_and_algo_orders_by_client_id():
    unknown = only(ExpectedAccount(), ReportedAccount(open_orders={"theirs": BTC}))
    assert (unknown.kind, unknown.symbol, unknown.expected, unknown.actual) == ("unknown_order", BTC, None, "theirs")
    missing = only(ExpectedAccount(open_orders={"m-1": BTC}, order_notes={"m-1": "status UNKNOWN"}), ReportedAccount())
    assert (missing.kind, missing.symbol, missing.expected) == ("missing_order", BTC, "m-1")
    assert "status UNKNOWN" in missing.detail
    assert only(ExpectedAccount(), ReportedAccount(open_algo_orders={"x": ETH})).kind == "unknown_algo_order"
    assert only(ExpectedAccount(open_algo_orders={"sl": ETH}), ReportedAccount()).kind == "missing_algo_order"
    # A plain order is not an algo order with the same client ID.
    report = reconcile(ExpectedAccount(open_algo_orders={"same": BTC}), ReportedAccount(open_orders={"same": BTC}))
    assert [d.kind for d in report.differences] == ["unknown_order", "missing_algo_order"]


def test_hedge_mode_is_always_a_difference():
    hedge = only(ExpectedAccount(), ReportedAccount(hedge_mode=True))
    assert (hedge.kind, hedge.symbol, hedge.detail) == ("hedge_mode", None, HEDGE_MODE_REASON)
    assert HEDGE_MODE_REASON == "hedge mode is not supported: switch the account to one-way mode"


def test_margin_type_and_leverage_differ_or_are_unconfirmed():
    margin = only(ExpectedAccount(margin_types={BTC: "ISOLATED"}), ReportedAccount(margin_types={BTC: "CROSSED"}))
    assert (margin.kind, margin.expected, margin.actual) == ("margin_type", "ISOLATED", "CROSSED")
    leverage = only(ExpectedAccount(leverage={BTC: 5}), ReportedAccount(leverage={BTC: 20}))
    assert (leverage.kind, leverage.expected, leverage.actual) == ("leverage", 5, 20)
    unconfirmed = only(ExpectedAccount(leverage={ETH: 3}), ReportedAccount(leverage={BTC: 3}))
    assert (unconfirmed.kind, unconfirmed.symbol, unconfirmed.actual) == ("leverage", ETH, None)
    # Settings Durabot has no expectation of are not compared.
    assert reconcile(ExpectedAccount(), ReportedAccount(margin_types={BTC: "ISOLATED"}, leverage={BTC: 7})).ok


def test_every_kind_at_once_in_a_stable_order():
    expected = ExpectedAccount(positions={BTC: 0.02, ETH: 1.0}, open_orders={"m-1": BTC}, open_algo_orders={"sl": BTC},
                               margin_types={BTC: "ISOLATED"}, leverage={BTC: 5})
    reported = ReportedAccount(positions={BTC: 0.05, "XRPUSDT": 10.0}, open_orders={"x": ETH},
                               open_algo_orders={"y": ETH}, hedge_mode=True, margin_types={BTC: "CROSSED"},
                               leverage={BTC: 10})
    report = reconcile(expected, reported, STEPS)
    assert not report.ok
    assert [d.kind for d in report.differences] == [
        "hedge_mode", "position_mismatch", "missing_position", "unknown_position", "unknown_order", "missing_order",
        "unknown_algo_order", "missing_algo_order", "margin_type", "leverage"]
    assert sorted(d.kind for d in report.differences) == sorted(KINDS)
