"""What the dashboard tests share: a page's console errors, a signed-in browser page for a new user, and
candles delivered to a session as the market feed delivers them (stored, ChartUpdate and MarketData
published, then signalled to the session)."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

from playwright.async_api import BrowserContext, ConsoleMessage, Page, expect

from activities import events
from activities.market_store import store_candles
from core.contracts import SIGNAL_CANDLE_CLOSED, CandleClosed, session_workflow_id
from core.datafiles import load_candles
from trading.candle import Candle

from .conftest import REPO, TEST_FEED

PASSWORD = "correct horse battery staple"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}


class Console:
    """Console errors and uncaught exceptions of a page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[tuple[str, str]] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append((f"uncaught: {exc}", "")))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append((message.text, message.location.get("url", "")))


def js_number(value: float) -> str:
    """How JavaScript prints a float, e.g. in a data attribute: no trailing ``.0``, and written out in
    full down to 1e-6 (Python's repr switches to an exponent below 1e-4), ``2.5e-7`` below."""
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    mantissa, _, exponent = repr(value).partition("e")
    if not exponent:
        return mantissa
    power = int(exponent)
    if power >= -6:  # only small numbers reach here: Python writes 1e-5 and 1e-6 with an exponent, JS does not
        sign, digits = ("-" if value < 0 else ""), mantissa.lstrip("-").replace(".", "")
        return f"{sign}0.{'0' * (-power - 1)}{digits}"
    return f"{mantissa}e{power:+d}"


@cache
def candles(dataset: str) -> list[Candle]:
    return load_candles(REPO / "data" / "candles" / dataset)


@dataclass
class User:
    """A registered user signed in on ``page``; ``http`` calls the API as them."""

    user_id: str
    headers: dict[str, str]
    context: BrowserContext
    page: Page
    console: Console
    gateway: Any
    # Event keys are unique per stream and candle: a tag of its own keeps one test's events from
    # being dropped as repeats of another's in the shared database.
    tag: str

    async def get(self, path: str, **params: Any) -> Any:
        reply = await self.gateway.http.get(path, params=params or None, headers=self.headers)
        assert reply.status_code == 200, (path, reply.status_code, reply.text)
        return reply.json()

    async def post(self, path: str, body: Any = None) -> Any:
        reply = await self.gateway.http.post(path, json=body, headers=self.headers)
        assert reply.status_code == 200, (path, reply.status_code, reply.text)
        return reply.json()

    async def goto(self, path: str, heading: str) -> None:
        await self.page.goto(self.gateway.settings.gateway_url + path)
        await expect(self.page.get_by_role("heading", level=1)).to_have_text(heading)
        await expect(self.page.get_by_test_id("connection-state")).to_have_attribute("data-state", "open")


async def signed_in(gateway, browser, **context_options: Any) -> User:
    """A new user, registered and logged in through the API, with a page holding their tokens."""
    email = f"u{uuid.uuid4().hex[:10]}@example.com"
    login = {"email": email, "password": PASSWORD}
    assert (await gateway.http.post("/api/auth/register", json=login)).status_code == 201
    tokens = (await gateway.http.post("/api/auth/login", json=login)).json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = (await gateway.http.get("/api/auth/me", headers=headers)).json()
    context = await browser.new_context(viewport=DESKTOP, **context_options)
    page = await context.new_page()
    console = Console(page)
    # The dashboard keeps its tokens where its login form would have put them.
    await page.goto(gateway.settings.gateway_url + "/")
    await page.evaluate("(t) => localStorage.setItem('durabot.tokens', JSON.stringify(t))",
                        {"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]})
    return User(me["user_id"], headers, context, page, console, gateway, uuid.uuid4().hex[:8])


async def deliver(user: User, temporal_client, batch: list[Candle]) -> dict:
    """Deliver candles (several symbols' at the same open time count as one step) as the market feed does;
    return the session's status once it has processed them all."""
    db = user.gateway.db
    handle = temporal_client.get_workflow_handle(session_workflow_id(user.user_id))
    for c in batch:
        await store_candles(db, [c], "5m", TEST_FEED)
        key = f"{user.tag}:{c.symbol}:5m:{c.open_time}"
        candle = {"open_time": c.open_time, "close_time": c.close_time, "open": c.open, "high": c.high, "low": c.low,
                  "close": c.close, "volume": c.volume}
        await events.publish(db, [
            events.event_doc(events.CHART_UPDATE, key, {"symbol": c.symbol, "timeframe": "5m", "candle": candle,
                                                       "latest_price": c.close}, symbol=c.symbol),
            events.event_doc(events.MARKET_DATA, key, {"symbol": c.symbol, "price": c.close, "time": c.close_time,
                                                      "price_change_24h": 0.0, "price_change_pct_24h": 0.0,
                                                      "volume_24h": c.volume}, symbol=c.symbol),
        ])
        await handle.signal(SIGNAL_CANDLE_CLOSED, CandleClosed(TEST_FEED, c.symbol, "5m", c.open_time, c.close_time,
                                                               c.open, c.high, c.low, c.close, c.volume))
    last = {f"{c.symbol}@5m": c.open_time for c in batch}
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        status = await user.get("/api/paper-trading/status")
        if all(status["last_open_time"].get(k) == t for k, t in last.items()) and status["queued"] == 0:
            return status
        assert asyncio.get_running_loop().time() < deadline, f"session stuck at {status}"
        await asyncio.sleep(0.1)


def steps(datasets: list[str], first_open: int, count: int) -> list[list[Candle]]:
    """``count`` steps of 5 minutes from open time ``first_open`` (ms): each the candles of that open time,
    one per dataset (by time, not index: some datasets miss a candle here and there)."""
    by_time = [{c.open_time: c for c in candles(d)} for d in datasets]
    return [[found[first_open + i * 300_000] for found in by_time] for i in range(count)]
