"""The Binance rate-limit gate every worker process shares through MongoDB (real SecantusDB, and the sim
exchange's 429s over real HTTP): what one process learns from a reply holds back the others, and what
reduces risk may use the last part of each budget."""

from __future__ import annotations

import pytest

from activities.binance.futures_orders import FuturesOrderClient
from activities.binance.key_vault import ApiCredentials
from activities.binance.shared_gate import GateLimits, SharedRequestGate
from activities.binance.signed import SignedBinanceClient
from activities.db import ensure_schema
from activities.exchange_errors import IpBannedError, RateLimitedError
from core.order_contracts import NOT_ACCEPTED, OrderTerms

from .conftest import sim_call

URL = "https://fapi.example"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(mongo_client, db_name):
    database = mongo_client[db_name]
    await ensure_schema(database)
    return database


def two_processes(db, clock: Clock, limits: GateLimits = GateLimits()) -> tuple[SharedRequestGate, SharedRequestGate]:
    return (SharedRequestGate(db, URL, "key-one", limits, clock), SharedRequestGate(db, URL, "key-one", limits, clock))


async def test_a_retry_after_or_a_ban_seen_by_one_process_holds_back_every_other(db):
    clock = Clock()
    first, second = two_processes(db, clock)
    await second.before(1, order=True, priority=False)
    await first.after(429, {"Retry-After": "7", "x-mbx-used-weight-1m": "10"})
    with pytest.raises(RateLimitedError) as held:
        await second.before(1, order=False, priority=True)  # not even a cancel: it would earn a ban
    assert held.value.retry_after_s == pytest.approx(7)
    clock.now += 7.5
    await second.before(1, order=False, priority=False)
    await first.after(418, {"Retry-After": "120"})
    with pytest.raises(IpBannedError):
        await second.before(1, order=True, priority=True)
    other_key = SharedRequestGate(db, URL, "key-two", wall_clock=clock)
    with pytest.raises(IpBannedError):  # a ban is the IP's, whichever key asks
        await other_key.before(1, order=False, priority=False)
    clock.now += 121
    await other_key.before(1, order=False, priority=False)


async def test_the_last_part_of_each_budget_is_kept_for_what_reduces_risk(db):
    clock = Clock(1_800_000_005.0)
    first, second = two_processes(db, clock, GateLimits(weight_per_minute=1000, orders_per_10s=10,
                                                        orders_per_minute=100))
    await first.after(200, {"x-mbx-used-weight-1m": "899", "x-mbx-order-count-10s": "9",
                            "x-mbx-order-count-1m": "8"})
    await first.after(200, {"x-mbx-used-weight-1m": "700"})  # an older reply arriving late changes nothing
    await second.before(1, order=False, priority=False)  # 900 of 1000: still under the 90 % share
    with pytest.raises(RateLimitedError) as heavy:
        await second.before(5, order=False, priority=False)
    assert heavy.value.retry_after_s == pytest.approx(55)
    await second.before(5, order=False, priority=True)
    with pytest.raises(RateLimitedError):
        await second.before(0, order=True, priority=False)  # a 10th order in 10 s passes 90 % of 10
    await second.before(0, order=True, priority=True)  # a reduce-only order still goes
    clock.now += 10  # a new 10 s window; the minute is the same
    await second.before(0, order=True, priority=False)
    clock.now += 60
    await second.before(999, order=False, priority=True)


async def test_a_429_from_the_exchange_refuses_the_next_order_before_it_is_sent(db, sim):
    key = await sim_call(sim, "POST", "/sim/keys", json={"enable_futures": True})
    credentials = ApiCredentials(key["api_key"], key["api_secret"])
    terms = OrderTerms("futures", "BTCUSDT", "BUY", "MARKET", "0.010")
    await sim_call(sim, "POST", "/sim/faults", json={"http_429_remaining": 1, "retry_after_s": 30})
    async with SignedBinanceClient(sim.rest_url, credentials, gate=SharedRequestGate(db, sim.rest_url,
                                                                                      key["api_key"])) as one:
        refused = await FuturesOrderClient(one).submit("m-first", terms)
    assert (refused.outcome, refused.retryable, refused.retry_after_s) == (NOT_ACCEPTED, True, 30)
    sent = len(await sim_call(sim, "GET", "/sim/requests"))
    async with SignedBinanceClient(sim.rest_url, credentials, gate=SharedRequestGate(db, sim.rest_url,
                                                                                      key["api_key"])) as two:
        held = await FuturesOrderClient(two).submit("m-second", terms)
    assert held.outcome == NOT_ACCEPTED and held.retryable and 25 < held.retry_after_s <= 30
    assert len(await sim_call(sim, "GET", "/sim/requests")) == sent  # nothing reached the exchange
