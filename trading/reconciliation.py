"""Reconciliation: what Durabot expects of an exchange account against what the exchange reports.

Pure (no I/O). It fails closed: anything the exchange shows that Durabot did not expect, anything
Durabot expects that the exchange does not show, and any setting Durabot cannot confirm is a
difference, and a report with a difference is not ok. Quantities match within half a step of the
symbol's quantity grid (what separates two quantities that could both be sent); a symbol whose step
is unknown must match exactly, up to binary noise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

POSITION_MISMATCH = "position_mismatch"
UNKNOWN_POSITION = "unknown_position"
MISSING_POSITION = "missing_position"
UNKNOWN_ORDER = "unknown_order"
MISSING_ORDER = "missing_order"
UNKNOWN_ALGO_ORDER = "unknown_algo_order"
MISSING_ALGO_ORDER = "missing_algo_order"
HEDGE_MODE = "hedge_mode"
MARGIN_TYPE = "margin_type"
LEVERAGE = "leverage"
KINDS = (POSITION_MISMATCH, UNKNOWN_POSITION, MISSING_POSITION, UNKNOWN_ORDER, MISSING_ORDER, UNKNOWN_ALGO_ORDER,
         MISSING_ALGO_ORDER, HEDGE_MODE, MARGIN_TYPE, LEVERAGE)

HEDGE_MODE_REASON = "hedge mode is not supported: switch the account to one-way mode"
# Binary noise between two decimal quantities that are really equal.
EXACT_TOLERANCE = 1e-12

Value = float | int | str | None


@dataclass(frozen=True)
class ExpectedAccount:
    """What Durabot believes: signed position quantities by symbol; open orders by client order ID
    and open algo orders by clientAlgoId, each naming its symbol; margin types (ISOLATED/CROSSED)
    and leverage for the symbols where Durabot set them."""

    positions: Mapping[str, float] = field(default_factory=dict)
    open_orders: Mapping[str, str] = field(default_factory=dict)
    open_algo_orders: Mapping[str, str] = field(default_factory=dict)
    margin_types: Mapping[str, str] = field(default_factory=dict)
    leverage: Mapping[str, int] = field(default_factory=dict)
    # Why Durabot expects an order (shown with a missing order), e.g. "status UNKNOWN".
    order_notes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReportedAccount:
    """What the exchange reports (positions with a zero quantity may be left out). ``margin_types`` and
    ``leverage`` hold what the exchange was asked about; a symbol missing there is unconfirmed."""

    positions: Mapping[str, float] = field(default_factory=dict)
    open_orders: Mapping[str, str] = field(default_factory=dict)
    open_algo_orders: Mapping[str, str] = field(default_factory=dict)
    hedge_mode: bool = False
    margin_types: Mapping[str, str] = field(default_factory=dict)
    leverage: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Difference:
    kind: str
    symbol: str | None
    expected: Value
    actual: Value
    detail: str


@dataclass(frozen=True)
class ReconciliationReport:
    ok: bool
    differences: tuple[Difference, ...]


def reconcile(expected: ExpectedAccount, reported: ReportedAccount,
              step_sizes: Mapping[str, float] | None = None) -> ReconciliationReport:
    """Every difference, in a stable order: position mode, positions, orders, algo orders, settings."""
    differences: list[Difference] = []
    if reported.hedge_mode:
        differences.append(Difference(HEDGE_MODE, None, "one-way", "hedge", HEDGE_MODE_REASON))
    differences += _positions(expected.positions, reported.positions, step_sizes or {})
    differences += _orders(expected.open_orders, reported.open_orders, expected.order_notes,
                           unknown=UNKNOWN_ORDER, missing=MISSING_ORDER, what="order")
    differences += _orders(expected.open_algo_orders, reported.open_algo_orders, expected.order_notes,
                           unknown=UNKNOWN_ALGO_ORDER, missing=MISSING_ALGO_ORDER, what="algo order")
    differences += _settings(MARGIN_TYPE, "margin type", expected.margin_types, reported.margin_types)
    differences += _settings(LEVERAGE, "leverage", expected.leverage, reported.leverage)
    return ReconciliationReport(ok=not differences, differences=tuple(differences))


def quantity_tolerance(symbol: str, step_sizes: Mapping[str, float]) -> float:
    step = step_sizes.get(symbol)
    return step / 2 if step and step > 0 else EXACT_TOLERANCE


def _positions(expected: Mapping[str, float], reported: Mapping[str, float],
               step_sizes: Mapping[str, float]) -> list[Difference]:
    differences = []
    for symbol in sorted(set(expected) | set(reported)):
        want, have = expected.get(symbol, 0.0), reported.get(symbol, 0.0)
        tolerance = quantity_tolerance(symbol, step_sizes)
        if abs(want - have) <= tolerance:
            continue
        if abs(want) <= tolerance:
            differences.append(Difference(UNKNOWN_POSITION, symbol, want, have,
                                          f"the exchange holds {have:g} {symbol} that Durabot did not open"))
        elif abs(have) <= tolerance:
            differences.append(Difference(MISSING_POSITION, symbol, want, have,
                                          f"Durabot expects {want:g} {symbol}; the exchange holds none"))
        else:
            differences.append(Difference(POSITION_MISMATCH, symbol, want, have,
                                          f"Durabot expects {want:g} {symbol}; the exchange holds {have:g}"))
    return differences


def _orders(expected: Mapping[str, str], reported: Mapping[str, str], notes: Mapping[str, str], *,
            unknown: str, missing: str, what: str) -> list[Difference]:
    differences = []
    for client_id in sorted(set(reported) - set(expected)):
        differences.append(Difference(unknown, reported[client_id], None, client_id,
                                      f"an open {what} {client_id} on the exchange that Durabot did not place"))
    for client_id in sorted(set(expected) - set(reported)):
        note = f" ({notes[client_id]})" if client_id in notes else ""
        differences.append(Difference(missing, expected[client_id], client_id, None,
                                      f"Durabot expects the {what} {client_id}{note} open; the exchange does not "
                                      "list it"))
    return differences


def _settings(kind: str, what: str, expected: Mapping[str, str] | Mapping[str, int],
              reported: Mapping[str, str] | Mapping[str, int]) -> list[Difference]:
    differences = []
    for symbol in sorted(expected):
        want, have = expected[symbol], reported.get(symbol)
        if have is None:
            differences.append(Difference(kind, symbol, want, None,
                                          f"the exchange did not confirm the {what} of {symbol}"))
        elif str(have).upper() != str(want).upper():
            differences.append(Difference(kind, symbol, want, have,
                                          f"{symbol}: Durabot expects {what} {want}; the exchange has {have}"))
    return differences
