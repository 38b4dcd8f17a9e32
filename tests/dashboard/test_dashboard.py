"""The dashboard end to end: Debian's Chromium, driven by Playwright, against the real gateway serving
the built webapp, with a trading worker on real Temporal + SecantusDB and candles fed to the session by
signal, as the market feed would.

One person's session: register and log in, start a session, read the risk checks of its decisions on
the signals feed, see a trade appear live (placed by another client, so only the /ws push can show it)
and its unrealised PnL follow each new candle's MarketData, find its entry marker and SL/TP lines on
the chart, place and cancel a limit order, close the trade, read the equity curve of every committed
step, submit a rejected setting and read the API's message, then a valid one, run a backtest and read
its report. No console error is allowed (the settings form asks the API's dry run before it saves,
so a rejected setting is explained without a failed request). Every page is captured at 1280 and
390 px wide and must not scroll sideways at 390 px; at 1280 px no table is cut off.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path
from urllib.parse import quote

from playwright.async_api import Page, expect

from activities import events
from activities.market_store import set_latest_price, store_candles
from core.contracts import SIGNAL_CANDLE_CLOSED, CandleClosed, session_workflow_id
from core.datafiles import load_candles
from trading.analysis import AnalysisSettings, warmup_candles

from ..conftest import with_key
from .conftest import REPO, TEST_FEED
from .helpers import PASSWORD, Console, js_number

# A pair the sim lists on USDⓈ-M (sessions trade only what the exchange lists), fed from the same file.
SYMBOL = "BTCUSDT"
DATASET = "BTCUSDT-5m-2023-01.csv.gz"
BACKTEST_DATASET = "ETHBTC-5m-2018-01.csv.gz"
PAGES = {"overview": "/", "chart": "/chart", "positions": "/positions", "signals": "/signals", "orders": "/orders",
         "real-trading": "/real-trading", "backtests": "/backtests", "settings": "/settings"}
WIDTHS = {1280: 900, 390: 844}


CANDLES = load_candles(REPO / "data" / "candles" / DATASET)


async def feed(gateway, temporal_client, user_id: str, token: str, count: int, start: int = 0) -> None:
    """Store candles and signal them to the user's session; wait until it processed the last one."""
    fed = CANDLES[start:start + count]
    await store_candles(gateway.db, fed, "5m", TEST_FEED)
    handle = temporal_client.get_workflow_handle(session_workflow_id(user_id))
    for c in fed:
        await handle.signal(SIGNAL_CANDLE_CLOSED, CandleClosed(TEST_FEED, c.symbol, "5m", c.open_time, c.close_time,
                                                               c.open, c.high, c.low, c.close, c.volume))
    deadline = asyncio.get_running_loop().time() + 120
    headers = {"Authorization": f"Bearer {token}"}
    while True:
        status = (await gateway.http.get("/api/paper-trading/status", headers=headers)).json()
        if status["last_open_time"].get(f"{SYMBOL}@5m") == fed[-1].open_time and status["queued"] == 0:
            return
        assert asyncio.get_running_loop().time() < deadline, f"session stuck at {status}"
        await asyncio.sleep(0.2)


async def market_data(gateway, index: int) -> float:
    """Publish candle ``index``'s MarketData event as the market feed does after storing it; its close."""
    c = CANDLES[index]
    await events.publish(gateway.db, [events.event_doc(events.MARKET_DATA, f"test:{c.symbol}:5m:{c.open_time}", {
        "symbol": c.symbol, "price": c.close, "time": c.close_time, "price_change_24h": 0.0,
        "price_change_pct_24h": 0.0, "volume_24h": c.volume}, symbol=c.symbol)])
    return c.close


async def equity_history(gateway, headers, steps: int) -> list[dict]:
    """The session's equity history once its commit of the ``steps``-th step has landed."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        history = (await gateway.http.get("/api/paper-trading/equity-history", headers=headers)).json()
        if len(history) >= steps or asyncio.get_running_loop().time() > deadline:
            assert len(history) == steps, (len(history), steps)
            return history
        await asyncio.sleep(0.2)


async def decisions_with_risk(gateway, headers) -> list[dict]:
    reply = await gateway.http.get("/api/paper-trading/decisions", params={"limit": 50}, headers=headers)
    assert reply.status_code == 200, reply.text
    return [d for d in reply.json() if d["risk"]]


async def screenshots(page: Page, base: str, artifacts: Path, name: str) -> None:
    for width, height in WIDTHS.items():
        await page.set_viewport_size({"width": width, "height": height})
        await page.wait_for_timeout(250)  # charts resize on the next frame
        await page.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)
        if width == 1280:
            clipped = await page.evaluate(
                "[...document.querySelectorAll('.table-wrap')].filter((e) => e.scrollWidth > e.clientWidth + 1)"
                ".map((e) => e.closest('section')?.querySelector('h2')?.textContent ?? e.outerHTML.slice(0, 80))")
            assert clipped == [], f"{name}: tables cut off at 1280px: {clipped}"
        if width == 390:
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} scrolls sideways by {overflow}px at 390px"
    await page.set_viewport_size({"width": 1280, "height": 900})


async def nav(page: Page, title: str) -> None:
    await page.get_by_role("navigation", name="Pages").get_by_role("link", name=title, exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text(title)


async def test_dashboard_end_to_end(gateway, browser, temporal_client, artifacts):
    base = gateway.settings.gateway_url
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = await context.new_page()
    console = Console(page)

    # Register, then land logged in on the overview.
    await page.goto(base + "/")
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await screenshots(page, base, artifacts, "login")
    email = f"u{uuid.uuid4().hex[:10]}@example.com"
    await page.get_by_role("button", name="No account? Register").click()
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Register", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "open")
    banner = page.get_by_test_id("sim-banner")
    await expect(banner).to_contain_text("replay speed ×60")
    await expect(banner).to_contain_text("market time 20")
    token = await page.evaluate("JSON.parse(localStorage.getItem('durabot.tokens')).access_token")
    headers = {"Authorization": f"Bearer {token}"}
    me = (await gateway.http.get("/api/auth/me", headers=headers)).json()

    # Start a session from the overview.
    await page.get_by_label("Symbols").fill(SYMBOL)
    await page.get_by_label("Interval").select_option("5m")
    await page.get_by_role("button", name="Start session").click()
    await expect(page.get_by_test_id("engine-status")).to_contain_text("running")
    link = page.get_by_test_id("temporal-link")
    session_id = session_workflow_id(me["user_id"])
    assert (await link.get_attribute("href")).endswith(f"/namespaces/default/workflows/{quote(session_id, safe='')}")
    fed = warmup_candles(AnalysisSettings.from_dict({})) + 10
    await feed(gateway, temporal_client, me["user_id"], token, fed)
    # Trade on until the session has attempted an entry, so its risk checks were recorded.
    while not await decisions_with_risk(gateway, headers):
        assert fed < 600, "no entry attempted in 600 candles"
        await feed(gateway, temporal_client, me["user_id"], token, 40, start=fed)
        fed += 40
    await expect(page.get_by_test_id("engine-status")).to_contain_text("running")
    # The overview's equity curve has a point per committed step (every processed candle).
    history = await equity_history(gateway, headers, fed)
    assert [p["time"] for p in history] == sorted({p["time"] for p in history}), "not one point per step, in order"
    await page.reload()
    curve = page.get_by_test_id("equity-curve")
    await expect(curve).to_have_attribute("data-source", "steps")
    await expect(curve).to_have_attribute("data-points", str(fed))
    thinned = await gateway.http.get("/api/paper-trading/equity-history", params={"limit": 7}, headers=headers)
    assert [p["time"] for p in thinned.json()][::6] == [history[0]["time"], history[-1]["time"]]

    # The signals feed shows what the session made of a signal: each risk check and its reason.
    (decision, *_) = await decisions_with_risk(gateway, headers)
    await nav(page, "Signals")
    card = page.locator(f'[data-testid="decision"][data-analysis-key="{decision["analysis_key"]}"]')
    await expect(card.get_by_test_id("risk-check")).to_have_count(len(decision["risk"]))
    await expect(card.get_by_test_id("risk-checks")).to_contain_text(decision["risk"][0]["reason"])
    await screenshots(page, base, artifacts, "signals-risk")
    # The feed shows a page of analyses at a time; older ones load on demand, each once.
    signals = page.get_by_test_id("signal")
    await expect(signals).to_have_count(20)
    await page.get_by_role("button", name="Older signals").click()
    await expect(signals).to_have_count(40)
    stored = (await gateway.http.get("/api/paper-trading/signals-history", params={"limit": 40},
                                     headers=headers)).json()["items"]
    shown = await signals.evaluate_all("(cards) => cards.map((c) => c.dataset.openTime)")
    assert shown == [str(a["open_time"]) for a in stored], "not the stored analyses, newest first, once each"
    rsi = stored[0]["indicators"]["rsi"]
    await expect(signals.first.get_by_test_id("indicators")).to_contain_text(f"RSI {rsi:.1f}")

    # A trade placed by another client appears live on the positions page.
    await nav(page, "Positions")
    # The session may hold a position of its own by now (its entry fills at the next open): closed
    # by another client, it leaves the page live too.
    for stale in (await gateway.http.get("/api/paper-trading/trades/open", headers=headers)).json():
        closed = await gateway.http.post(f"/api/paper-trading/trades/{stale['trade_id']}/close",
                                         headers=with_key(headers))
        assert closed.status_code == 200, closed.text
    await expect(page.get_by_test_id("no-open-positions")).to_be_visible(timeout=15_000)
    last = CANDLES[fed - 1].close
    placed = await gateway.http.post("/api/paper-trading/orders", headers=with_key(headers), json={
        "symbol": SYMBOL, "side": "long", "order_type": "market", "quantity": 1.0,
        "stop_loss": round(last * 0.97, 6), "take_profit": round(last * 1.03, 6)})
    assert placed.status_code == 200, placed.text
    (position,) = (await gateway.http.get("/api/paper-trading/trades/open", headers=headers)).json()
    trade_id = position["trade_id"]
    row = page.get_by_test_id(f"open-{trade_id}")
    await expect(row).to_be_visible(timeout=15_000)
    await expect(row).to_contain_text(SYMBOL)

    # Each new candle's MarketData moves the price and the unrealised PnL: qty × (price − entry).
    pnl = page.get_by_test_id(f"pnl-{trade_id}")
    seen: list[str | None] = []
    moved = next(i for i in range(fed + 1, len(CANDLES)) if CANDLES[i].close != CANDLES[fed].close)
    for index in (fed, moved):
        price = await market_data(gateway, index)
        await expect(page.get_by_test_id(f"price-{trade_id}")).to_have_attribute("data-value", js_number(price))
        expected = position["quantity"] * (price - position["entry_price"])
        await expect(pnl).not_to_have_attribute("data-value", seen[-1] if seen else "")
        value = float(await pnl.get_attribute("data-value"))
        assert abs(value - expected) < 1e-12, (value, expected)
        seen.append(await pnl.get_attribute("data-value"))
    await expect(page.get_by_test_id(f"pnl-pct-{trade_id}")).to_contain_text("%")
    await screenshots(page, base, artifacts, "positions-open")
    # After a reload the price comes from the stored latest price (GET /api/prices) before any event.
    c = CANDLES[moved + 1]
    await set_latest_price(gateway.db, gateway.settings.market_source, SYMBOL, c.close, c.close_time)
    await page.reload()
    await expect(page.get_by_test_id(f"price-{trade_id}")).to_have_attribute("data-value", js_number(c.close))

    # The chart marks the entry and draws the position's stop loss and take profit.
    await nav(page, "Chart")
    chart = page.get_by_test_id("candle-chart")
    await expect(chart).to_have_attribute("data-marker-texts", re.compile(rf"(^|,)#{trade_id}(,|$)"))
    lines = await chart.get_attribute("data-price-lines")
    sl, tp = js_number(position["stop_loss"]), js_number(position["take_profit"])
    assert lines == f"SL #{trade_id}@{sl},TP #{trade_id}@{tp}", lines
    await screenshots(page, base, artifacts, "chart-position")

    # A limit order far below the market rests on the Orders page until it is cancelled there.
    await nav(page, "Orders")
    form = page.get_by_role("form", name="Place an order")
    await form.get_by_label("Symbol").fill(SYMBOL)
    await form.get_by_label("Type").select_option("limit")
    await form.get_by_label("Quantity").fill("0.5")
    await form.get_by_label("Limit price").fill(f"{last * 0.5:.6f}")
    await form.get_by_role("button", name="Place order").click()
    await expect(page.get_by_role("status").filter(has_text="placed")).to_be_visible()
    (order,) = (await gateway.http.get("/api/paper-trading/pending-orders", headers=headers)).json()
    pending = page.get_by_test_id(f"pending-{order['id']}")
    await expect(pending).to_contain_text("limit")
    await screenshots(page, base, artifacts, "orders-pending")
    await pending.get_by_role("button", name=f"Cancel order {order['id']}").click()
    await expect(pending).to_have_count(0)
    assert (await gateway.http.get("/api/paper-trading/pending-orders", headers=headers)).json() == []
    await nav(page, "Positions")

    # Close it from the page (confirming the dialog): it leaves the open table and shows among the closed trades.
    await row.get_by_role("button", name=f"Close position {trade_id}").click()
    await page.get_by_role("dialog", name=f"Close trade #{trade_id}?").get_by_role(
        "button", name=f"Close trade #{trade_id}").click()
    await expect(row).to_have_count(0)
    closed_row = page.get_by_test_id(f"closed-{position['trade_id']}")
    await expect(closed_row).to_contain_text("manual")
    async with page.expect_download() as download_info:
        await page.get_by_role("button", name="Export CSV").click()
    csv_text = (await asyncio.to_thread(Path(await (await download_info.value).path()).read_bytes)).decode()
    assert csv_text.startswith("id,symbol,side") and f"\r\n{position['trade_id']},{SYMBOL},long," in csv_text
    # A closed trade's review: the verdict, and for a signal entry the strategies and indicators then.
    analyses = (await gateway.http.get("/api/paper-trading/trade-analyses", headers=headers)).json()
    signalled = [a for a in analyses if a["review"]["entry"] is not None]
    assert signalled, f"no closed trade was entered on a signal: {analyses}"
    await page.get_by_role("button", name=f"Review trade {signalled[0]['trade_id']}", exact=True).click()
    review = page.get_by_test_id("trade-review")
    await expect(review.get_by_test_id("trade-verdict")).to_have_text(signalled[0]["review"]["verdict"])
    rsi = signalled[0]["review"]["entry"]["indicators"]["rsi"]
    await expect(review.get_by_test_id("review-entry-indicators")).to_contain_text(f"RSI {rsi:.1f}")
    await screenshots(page, base, artifacts, "trade-review")

    # A rejected setting shows the API's message next to it; a valid one saves.
    await nav(page, "Settings")
    leverage = page.get_by_test_id("settings-basic").get_by_label("Leverage", exact=True)
    await expect(leverage).to_have_value("10")
    await leverage.fill("0")
    await page.get_by_role("button", name="Save basic settings").click()
    alert = page.get_by_test_id("settings-basic").get_by_role("alert")
    await expect(alert).to_have_text("Leverage must be a whole number from 1 to 125x, got 0")
    await expect(leverage).to_have_attribute("aria-invalid", "true")
    basic = (await gateway.http.get("/api/paper-trading/basic-settings", headers=headers)).json()
    assert basic["settings"]["leverage"] == 10, "a rejected setting was applied"
    await leverage.fill("5")
    await page.get_by_role("button", name="Save basic settings").click()
    await expect(page.get_by_test_id("settings-basic").get_by_role("status")).to_have_text("Saved.")
    await expect(alert).to_have_count(0)
    basic = (await gateway.http.get("/api/paper-trading/basic-settings", headers=headers)).json()
    assert basic["settings"]["leverage"] == 5

    # A backtest on stored data, and its report.
    await nav(page, "Backtests")
    form = page.get_by_role("form", name="Run a backtest")
    await form.get_by_label("Dataset").fill(BACKTEST_DATASET)
    await form.get_by_label("Trade until").fill("2018-01-11 18:00")
    await form.get_by_role("button", name="Run backtest").click()
    status = page.get_by_test_id("backtest-status")
    await expect(status).to_contain_text(re.compile("completed|failed"), timeout=90_000)
    report = page.get_by_role("region", name=re.compile("^Backtest "))
    assert "completed" in await status.text_content(), await report.text_content()
    await expect(page.get_by_test_id("backtest-metrics")).to_contain_text("win rate")
    await expect(page.get_by_role("img", name="Backtest equity curve")).to_be_visible()
    await expect(page.get_by_test_id("backtest-trades")).to_be_visible()
    await screenshots(page, base, artifacts, "backtest-report")

    # Every page, reached by keyboard from the nav, at both widths.
    await page.goto(base + "/")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Overview")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    for name, path in PAGES.items():
        await page.goto(base + path)  # a deep link: the gateway falls back to index.html
        await expect(page.get_by_test_id("connection-state")).to_have_attribute("data-state", "open")
        await page.wait_for_load_state("networkidle")
        await screenshots(page, base, artifacts, name)
    await nav(page, "Overview")
    await page.get_by_role("link", name="Chart", exact=True).focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", level=1)).to_have_text("Chart")

    await context.close()
    assert console.errors == []


async def test_static_serving_does_not_shadow_the_api(webapp_dist, settings, run_gateway, get_free_port):
    # A local sim that is not running: the system endpoint must say so rather than fail.
    port = get_free_port()
    settings = settings.model_copy(update={
        "sim_exchange_port": port, "exchange_rest_url": f"http://127.0.0.1:{port}",
        "exchange_futures_url": f"http://127.0.0.1:{port}", "exchange_ws_url": f"ws://127.0.0.1:{port}"})
    async with run_gateway(settings) as gw:
        index = await gw.http.get("/")
        assert index.status_code == 200 and '<div id="root">' in index.text
        deep = await gw.http.get("/positions")
        assert deep.status_code == 200 and deep.text == index.text and deep.headers["cache-control"] == "no-cache"
        asset = next((webapp_dist / "assets").glob("*.js")).name
        served = await gw.http.get(f"/assets/{asset}")
        assert served.status_code == 200 and "immutable" in served.headers["cache-control"]
        assert (await gw.http.get("/api/nope")).json() == {"detail": "Not Found"}
        assert (await gw.http.get("/api/nope")).status_code == 404
        assert (await gw.http.delete("/api/health")).status_code == 405
        assert (await gw.http.post("/positions")).status_code == 404
        assert (await gw.http.get("/openapi.json")).json()["info"]["title"] == "Durabot API"
        assert (await gw.http.get("/docs")).status_code == 200
        assert (await gw.http.get("/../../etc/passwd")).text == index.text
        system = (await gw.http.get("/api/system")).json()
        assert system["exchange"] == "sim" and system["sim"] == {"reachable": False, "speed": None,
                                                                  "market_time": None, "replaying": []}
