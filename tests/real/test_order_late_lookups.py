"""A "no such order" that was true when asked but arrives late never ends an order NOT_PLACED.

The chaos test found it: an order's reply was lost, its first lookups were falsely denied (-2013) for
less than the protection window, and the worker was killed after a denial was answered; the restarted
worker handled that stale denial past the window and called a filled order NOT_PLACED. Here the sim
slows every lookup reply instead (``late_lookup_reply``), which makes the same stale denial arrive past
the window on every run."""

from __future__ import annotations

import pytest

from .conftest import SYMBOL, order_requests, sim_call
from .test_order_outcomes import buy, place, settled, sim_orders

WINDOW_S = 5.0
HIDDEN_S = 4.5  # shorter than the window: a correct order finds itself before it could give up
LATE_S = 2.5  # the second lookup is asked inside the hiding, and its answer lands past the window


@pytest.fixture
def real_settings(real_settings):
    return real_settings.model_copy(update={"order_protection_window_s": WINDOW_S, "order_request_timeout_s": 4.0})


async def test_a_denial_answered_after_the_window_but_asked_inside_it_does_not_end_the_order(gateway, sign_up, sim):
    trader = await sign_up()
    for fault in ({"kind": "unknown_after_accept"}, {"kind": "false_not_found", "seconds": HIDDEN_S},
                  {"kind": "late_lookup_reply", "seconds": LATE_S, "count": 20, "symbol": SYMBOL}):
        await sim_call(sim, "POST", "/sim/order_faults", json=fault)
    order = await settled(gateway, trader, (await place(gateway, trader, buy()))["order_id"], within_s=40)

    assert [t["status"] for t in order["history"]] == ["AWAITING_CONFIRMATION", "SUBMITTING", "UNKNOWN", "FILLED"], \
        order["history"]
    unknown_at, filled_at = (t["at_ms"] for t in order["history"][-2:])
    # A denial did arrive past the window before the order was found: the case under test happened.
    assert filled_at - unknown_at >= WINDOW_S * 1000
    [booked] = await sim_orders(sim, order["order_id"])
    assert booked["status"] == "FILLED" and order["exchange_order_id"] == booked["orderId"]
    assert len(await order_requests(sim)) == 1
    lookups = [r for r in await sim_call(sim, "GET", "/sim/requests")
               if r["path"] == "/fapi/v1/order" and r["method"] == "GET"]
    assert [r["status"] for r in lookups][:2] == [400, 400] and lookups[-1]["status"] == 200, lookups
