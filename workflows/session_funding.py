"""Funding rates from the exchange's series, learnt by a session's Engine before it steps a candle
that crosses an 8-hour funding instant: asked once per instant, and a failure falls back to the
constant rate and says so. Shared by the paper and the real session."""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.session_store import SessionStoreActivities
    from core.contracts import FundingRateInput
    from trading.candle import Candle
    from trading.engine import Engine
    from trading.funding import boundaries_in
    from trading.settings import FundingMode
    from workflows.session_base import BOUNDED, READ_TIMEOUT


async def learn_funding_rates(engine: Engine, candle: Candle, asks: Callable[[], bool],
                              degraded: dict[str, str]) -> None:
    """Ask for the rate of each instant the candle crosses that ``engine`` does not know (while
    ``asks()``: the paper session's patch marker); ``degraded["funding"]`` says why one is missing."""
    s = engine.settings
    if not (s.funding_on and s.funding_mode is FundingMode.SERIES):
        return
    for instant in boundaries_in(candle.open_time, candle.close_time):
        if engine.knows_funding_rate(candle.symbol, instant) or not asks():
            continue
        try:
            found = await workflow.execute_activity_method(
                SessionStoreActivities.funding_rate, FundingRateInput(candle.symbol, instant),
                start_to_close_timeout=READ_TIMEOUT, retry_policy=BOUNDED)
        except ActivityError as exc:
            degraded["funding"] = f"{candle.symbol}@{instant}: {exc.cause}; the constant rate applied"
            continue
        degraded.pop("funding", None)
        if found.rate is not None:
            engine.learn_funding_rate(candle.symbol, instant, found.rate)
