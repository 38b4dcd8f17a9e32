"""The dashboard as a freqtrade user checks it before trusting paper trading: every irreversible action
asks first (and a cancel leaves the server untouched), every page works on a phone, the theme follows the
system, the engine card moves with each candle, the chart has volume and the MACD histogram, and the
order history, profit tables, analyze-now and config suggestions read the session's own API.

Each test signs up its own user on the shared stack and delivers candles as the market feed does
(stored, ChartUpdate and MarketData published, then signalled to the session). None uses ETHBTC, which
the end-to-end test reads. No console error is allowed.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from playwright.async_api import Page, Request, expect

from activities.market_store import store_candles

from .conftest import TEST_FEED
from .helpers import DESKTOP, PHONE, User, candles, deliver, js_number, signed_in, steps

LTC = "LTCBTC-5m-2018-01.csv.gz"
ADA = "ADABTC-5m-2018-01.csv.gz"
# The order-history test has pairs of its own: a manual fill takes the newest stored close, so no other
# test may have stored a later candle of them.
DASH = "DASHBTC-5m-2018-01.csv.gz"
TRX = "TRXBTC-5m-2018-01.csv.gz"
DATASETS = {"LTCBTC": LTC, "ADABTC": ADA, "DASHBTC": DASH, "TRXBTC": TRX}
FIRST = candles(LTC)[0].open_time  # 2018-01-10 04:55 UTC, the first candle of every dataset here
SUNDAY_NIGHT = int(datetime(2018, 1, 14, 23, 50, tzinfo=UTC).timestamp() * 1000)  # then Monday, a new ISO week
PAGES = ["Overview", "Chart", "Positions", "Signals", "Orders", "Real trading", "Backtests", "Tuning", "AI", "Settings"]


async def start(user: User, symbols: list[str]) -> None:
    """Start a session on BTC-quoted pairs: a spot account in BTC (the exchange lists no BTC-quoted
    perpetual), so long only, at 1x."""
    spot_in_btc = {"market": "spot", "account_currency": "BTC", "leverage": 1}
    await user.post("/api/paper-trading/start", {"symbols": symbols, "interval": "5m", "basic": spot_in_btc})


async def market(user: User, symbol: str, side: str, quantity: float) -> int:
    """A market order through the API (as another client would); the trade ID it opened."""
    await user.post("/api/paper-trading/orders", {"symbol": symbol, "side": side, "order_type": "market",
                                                   "quantity": quantity})
    (trade,) = [t for t in await user.get("/api/paper-trading/trades/open") if t["symbol"] == symbol]
    return trade["trade_id"]


async def resting_limit(user: User, symbol: str) -> int:
    """A limit buy at half the price, so it rests; its order ID."""
    price = candles(DATASETS[symbol])[0].close * 0.5
    await user.post("/api/paper-trading/orders", {"symbol": symbol, "side": "long", "order_type": "limit",
                                                   "quantity": 0.5, "limit_price": round(price, 8)})
    (order,) = [o for o in await user.get("/api/paper-trading/pending-orders") if o["symbol"] == symbol]
    return order["id"]


class Writes:
    """The page's write requests (anything but GET), to prove a dismissed dialog sent nothing."""

    def __init__(self, page: Page) -> None:
        self.sent: list[str] = []
        page.on("request", self._request)

    def _request(self, request: Request) -> None:
        if request.method != "GET":
            self.sent.append(f"{request.method} {request.url}")

    async def none_after(self, page: Page) -> None:
        await page.wait_for_timeout(300)  # a request the dismissal wrongly sent would have left by now
        assert self.sent == []


async def asked(page: Page, title: str, *, says: list[str]):
    """The confirmation dialog ``title``: it says each of ``says``, and Cancel has the focus."""
    dialog = page.get_by_role("dialog", name=title)
    await expect(dialog).to_be_visible()
    for text in says:
        await expect(dialog).to_contain_text(text)
    await expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    return dialog


async def test_close_stop_and_reset_ask_first_and_a_cancel_changes_nothing(gateway, browser, temporal_client,
                                                                          artifacts):
    user = await signed_in(gateway, browser)
    page, writes = user.page, Writes(user.page)
    await start(user, ["LTCBTC"])
    for batch in steps([LTC], FIRST, 3):
        await deliver(user, temporal_client, batch)
    trade_id = await market(user, "LTCBTC", "long", 1.0)

    # Closing a trade names the trade and what the close does; Cancel and Escape both leave it open.
    await user.goto("/positions", "Positions")
    row = page.get_by_test_id(f"open-{trade_id}")
    close = row.get_by_role("button", name=f"Close position {trade_id}")
    for dismiss in ("Cancel", "Escape"):
        await close.click()
        dialog = await asked(page, f"Close trade #{trade_id}?",
                             says=["Sells 1.0000 LTCBTC", "the whole long", "cannot be undone"])
        if dismiss == "Cancel":
            await dialog.get_by_role("button", name="Cancel").click()
        else:
            await page.keyboard.press("Escape")
        await expect(dialog).to_have_count(0)
        await writes.none_after(page)
        assert [t["trade_id"] for t in await user.get("/api/paper-trading/trades/open")] == [trade_id]
        await expect(row).to_be_visible()
    await close.click()
    await page.get_by_role("dialog").get_by_role("button", name=f"Close trade #{trade_id}").click()
    await expect(row).to_have_count(0)
    assert await user.get("/api/paper-trading/trades/open") == []
    closed = await user.get("/api/paper-trading/trades/closed")
    assert [(c["trade_id"], c["trade"]["close_reason"]) for c in closed] == [(trade_id, "manual")]

    # Stopping names the streams and what keeps being managed.
    second = await market(user, "LTCBTC", "long", 1.0)
    order_id = await resting_limit(user, "LTCBTC")
    writes.sent.clear()
    await user.goto("/", "Overview")
    await page.get_by_role("button", name="Stop session").click()
    dialog = await asked(page, "Stop the session?", says=[
        "stops opening trades on LTCBTC (5m)", "1 open position(s) (LTCBTC long)", "1 resting order(s)"])
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_have_count(0)
    await writes.none_after(page)
    assert (await user.get("/api/paper-trading/status"))["status"] == "running"
    await page.get_by_role("button", name="Stop session").click()
    await page.get_by_role("dialog").get_by_role("button", name="Stop session").click()
    await expect(page.get_by_test_id("engine-status")).to_contain_text("stopped")
    assert (await user.get("/api/paper-trading/status"))["status"] == "stopped"

    # Resetting says what it cancels, closes and starts from; on a phone the dialog fits the screen.
    before = await user.get("/api/paper-trading/status")
    writes.sent.clear()
    await page.set_viewport_size(PHONE)
    await page.get_by_role("button", name="Reset account").click()
    dialog = await asked(page, "Reset the paper account?", says=[
        "cancels 1 resting order(s)", "closes 1 open position(s) (LTCBTC long)", "(10,000.00)"])
    box = await dialog.bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    await page.screenshot(path=str(artifacts / "confirm-reset-390.png"))
    await page.keyboard.press("Escape")
    await expect(dialog).to_have_count(0)
    await writes.none_after(page)
    after = await user.get("/api/paper-trading/status")
    assert (after["generation"], after["status"]) == (before["generation"], "stopped")
    assert [t["trade_id"] for t in await user.get("/api/paper-trading/trades/open")] == [second]
    assert [o["id"] for o in await user.get("/api/paper-trading/pending-orders")] == [order_id]
    await page.get_by_role("button", name="Reset account").click()
    await page.get_by_role("dialog").get_by_role("button", name="Reset account").click()
    await expect(page.get_by_test_id("engine-status")).to_contain_text("new")
    after = await user.get("/api/paper-trading/status")
    assert (after["generation"], after["status"]) == (before["generation"] + 1, "new")
    assert await user.get("/api/paper-trading/trades/open") == []
    assert await user.get("/api/paper-trading/pending-orders") == []
    assert (await user.get("/api/paper-trading/portfolio"))["account"]["equity"] == 10_000
    await expect(page.get_by_test_id("no-profit")).to_be_visible()  # the profit tables show the new account

    await user.context.close()
    assert user.console.errors == []


# Something each page shows once its data has loaded, so the width is measured on a full page.
READY = {
    "Overview": lambda p: p.get_by_test_id("profit-table"),
    "Chart": lambda p: p.locator("[data-testid=candle-chart][data-volume-bars]"),
    "Positions": lambda p: p.get_by_test_id("closed-trades"),
    "Signals": lambda p: p.get_by_role("heading", name="Signals feed"),
    "Orders": lambda p: p.get_by_test_id("order-history"),
    "Real trading": lambda p: p.get_by_role("form", name="New real order"),
    "Backtests": lambda p: p.get_by_role("form", name="Run a backtest"),
    "Tuning": lambda p: p.get_by_test_id("tuning-bounds"),
    "AI": lambda p: p.get_by_test_id("ai-breaker"),
    "Settings": lambda p: p.get_by_test_id("settings-basic").get_by_label("Leverage", exact=True),
}


async def test_on_a_phone_the_menu_reaches_every_page_and_nothing_scrolls_sideways(gateway, browser, temporal_client,
                                                                                     artifacts):
    user = await signed_in(gateway, browser)
    page = user.page
    await start(user, ["LTCBTC", "ADABTC"])
    for batch in steps([LTC, ADA], FIRST, 3):
        await deliver(user, temporal_client, batch)
    await market(user, "ADABTC", "long", 100.0)
    closed = await market(user, "LTCBTC", "long", 2.0)
    await user.post(f"/api/paper-trading/trades/{closed}/close")
    await resting_limit(user, "LTCBTC")

    await user.goto("/", "Overview")
    await page.set_viewport_size(PHONE)
    menu = page.get_by_role("button", name="Menu")
    nav = page.get_by_role("navigation", name="Pages")
    links = nav.get_by_role("link")
    for title in [*PAGES[1:], PAGES[0]]:
        await expect(menu).to_have_attribute("aria-expanded", "false")
        await expect(links.first).to_be_hidden()
        await menu.click()
        await expect(links).to_have_count(len(PAGES))
        if title == PAGES[1]:
            await page.screenshot(path=str(artifacts / "phone-menu-open.png"))
        for link in await links.all():
            box = await link.bounding_box()
            assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        await nav.get_by_role("link", name=title, exact=True).click()
        await expect(page.get_by_role("heading", level=1)).to_have_text(title)
        await expect(READY[title](page).first).to_be_visible()
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{title} scrolls sideways by {overflow}px at 390px"
        await page.screenshot(path=str(artifacts / f"phone-{title.lower().replace(' ', '-')}.png"), full_page=True)
    # At desktop width the links stand in the header and the menu button is gone.
    await page.set_viewport_size(DESKTOP)
    await expect(menu).to_be_hidden()
    for link in await links.all():
        await expect(link).to_be_visible()

    await user.context.close()
    assert user.console.errors == []


def luminance(css: str) -> float:
    """Relative luminance (WCAG) of an ``rgb(r, g, b)`` colour."""
    channels = [int(v) / 255 for v in re.findall(r"\d+", css)[:3]]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


COLOURS = """() => {
  const root = getComputedStyle(document.documentElement);
  const card = getComputedStyle(document.querySelector('.card'));
  return {bg: root.backgroundColor, text: root.color, card: card.backgroundColor};
}"""


async def test_the_theme_follows_the_system_colour_scheme(gateway, browser, artifacts):
    user = await signed_in(gateway, browser, color_scheme="dark")
    page = user.page
    await user.goto("/", "Overview")
    curve = page.get_by_role("img", name="Equity curve")
    seen = {}
    for scheme in ("dark", "light"):
        await page.emulate_media(color_scheme=scheme)
        await expect(curve).to_have_attribute("data-theme", scheme)  # the canvas chart follows too
        seen[scheme] = colours = await page.evaluate(COLOURS)
        assert contrast(colours["text"], colours["bg"]) >= 7, (scheme, colours)
    assert seen["dark"]["bg"] != seen["light"]["bg"] and seen["dark"]["text"] != seen["light"]["text"], seen
    assert seen["dark"]["card"] != seen["light"]["card"], seen
    assert luminance(seen["light"]["bg"]) > 0.8 and luminance(seen["dark"]["bg"]) < 0.05, seen
    await page.screenshot(path=str(artifacts / "overview-light-1280.png"), full_page=True)

    await user.context.close()
    assert user.console.errors == []


async def test_the_engine_card_moves_with_every_candle(gateway, browser, temporal_client):
    user = await signed_in(gateway, browser)
    page = user.page
    await start(user, ["LTCBTC"])
    await user.goto("/", "Overview")
    shown_candles = page.get_by_test_id("engine-candles")
    shown_time = page.get_by_test_id("engine-market-time")
    await expect(shown_candles).to_have_attribute("data-value", "0")
    for batch in steps([LTC], FIRST + 40 * 300_000, 4):
        status = await deliver(user, temporal_client, batch)
        # Well inside the banner's 3 s poll: the candle's ChartUpdate moves the card, no poll or reload.
        await expect(shown_candles).to_have_attribute("data-value", str(status["candles_processed"]), timeout=2_000)
        await expect(shown_time).to_have_attribute("data-value", str(status["market_time"]), timeout=2_000)
        expected = datetime.fromtimestamp(status["market_time"] / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
        await expect(shown_time).to_contain_text(expected)
    assert status["candles_processed"] == 4

    await user.context.close()
    assert user.console.errors == []


async def test_the_chart_draws_volume_bars_and_the_macd_histogram(gateway, browser, artifacts):
    user = await signed_in(gateway, browser)
    page = user.page
    await store_candles(gateway.db, candles(ADA)[:80], "5m", TEST_FEED)
    # An account that can trade ADABTC (spot, in BTC), so the price scale has its tick's decimals.
    reply = await gateway.http.put("/api/paper-trading/basic-settings", headers=user.headers,
                                   json={"market": "spot", "account_currency": "BTC", "leverage": 1})
    assert reply.status_code == 200, reply.text
    (ada,) = [f for f in await user.get("/api/market/symbols", market="spot") if f["symbol"] == "ADABTC"]
    await user.goto("/chart", "Chart")
    await page.get_by_label("Symbol").fill("ADABTC")
    chart = page.get_by_test_id("candle-chart")
    # The page's own request: its default indicators.
    drawn = await user.get("/api/chart/ADABTC/5m", indicators="bollinger,volume,rsi,macd", limit=300)
    volumes = [c["volume"] for c in drawn["candles"]]
    histogram = [v for v in drawn["indicators"]["macd_histogram"] if v is not None]
    assert len(volumes) >= 80 and len(histogram) >= 40
    assert any(v < 0 for v in histogram) and any(v > 0 for v in histogram)
    await expect(chart).to_have_attribute("data-volume-bars", str(len(volumes)))
    await expect(chart).to_have_attribute("data-macd-histogram-bars", str(len(histogram)))
    await expect(chart).to_have_attribute("data-price-decimals", str(ada["price_decimals"]))
    # The last bar of each is the API's last value (JavaScript's shortest float text reads back exactly).
    assert float(await chart.get_attribute("data-volume-last")) == volumes[-1]
    assert float(await chart.get_attribute("data-macd-histogram-last")) == histogram[-1]
    await page.screenshot(path=str(artifacts / "chart-volume-macd-1280.png"))
    # Each is drawn because it is chosen.
    indicators = page.get_by_role("group", name="Indicators")
    await indicators.get_by_label("macd").uncheck()
    await expect(chart).not_to_have_attribute("data-macd-histogram-bars", re.compile("."))
    await expect(chart).to_have_attribute("data-volume-bars", str(len(volumes)))
    await indicators.get_by_label("volume").uncheck()
    await expect(chart).not_to_have_attribute("data-volume-bars", re.compile("."))

    await user.context.close()
    assert user.console.errors == []


def period_keys(ms: int) -> dict[str, str]:
    day = datetime.fromtimestamp(ms / 1000, UTC)
    year, week, _ = day.isocalendar()
    return {"day": day.strftime("%Y-%m-%d"), "week": f"{year}-W{week:02d}", "month": day.strftime("%Y-%m")}


async def test_order_history_profit_tables_and_the_session_tools(gateway, browser, temporal_client, artifacts):
    user = await signed_in(gateway, browser)
    page = user.page
    await start(user, ["DASHBTC", "TRXBTC"])
    # Sunday night a DASHBTC and a TRXBTC trade, both closed; after midnight (a new ISO week) another
    # DASHBTC round trip; then a TRXBTC trade left open and a resting limit order.
    batches = steps([DASH, TRX], SUNDAY_NIGHT, 4)
    for batch in batches[:1]:
        await deliver(user, temporal_client, batch)
    for symbol, side, qty in (("DASHBTC", "long", 1.0), ("TRXBTC", "long", 10_000.0)):
        await user.post(f"/api/paper-trading/trades/{await market(user, symbol, side, qty)}/close")
    for batch in batches[1:]:
        await deliver(user, temporal_client, batch)
    await user.post(f"/api/paper-trading/trades/{await market(user, 'DASHBTC', 'long', 0.5)}/close")
    open_id = await market(user, "TRXBTC", "long", 5_000.0)
    order_id = await resting_limit(user, "DASHBTC")
    trades = [c["trade"] for c in await user.get("/api/paper-trading/trades/closed")]
    assert len(trades) == 3

    # The order history: each trade's entry and exit fill, and the resting order.
    await user.goto("/orders", "Orders")
    history = page.get_by_test_id("order-history")
    expected = {f"order-entry-{t['id']}" for t in trades} | {f"order-exit-{t['id']}" for t in trades}
    expected |= {f"order-entry-{open_id}", f"order-order-{order_id}"}
    await expect(history.locator("tbody tr")).to_have_count(len(expected))
    shown = await history.locator("tbody tr").evaluate_all("(rows) => rows.map((r) => r.dataset.testid)")
    assert sorted(shown) == sorted(expected)
    trx = next(t for t in trades if t["symbol"] == "TRXBTC")
    entry_row = page.get_by_test_id(f"order-entry-{trx['id']}")
    exit_row = page.get_by_test_id(f"order-exit-{trx['id']}")
    await expect(entry_row).to_have_attribute("data-price", js_number(trx["entry_price"]))
    # Prices show exactly the decimals of the symbol's tick size, as the exchange's filters give them
    # (DASHBTC's 8, where the fallback of 4 significant digits would show 6).
    listed = {f["symbol"]: f for f in await user.get("/api/market/symbols", market="spot", quote_asset="BTC")}
    dash = next(t for t in trades if t["symbol"] == "DASHBTC")
    decimals = listed["DASHBTC"]["price_decimals"]
    assert decimals != 4 - math.floor(math.log10(dash["exit_price"])), "the fallback would show as many"
    price_cell = page.get_by_test_id(f"order-exit-{dash['id']}").locator("td").nth(6)
    await expect(price_cell).to_have_text(f"{dash['exit_price']:,.{decimals}f}")
    assert re.fullmatch(rf"\d+\.\d{{{decimals}}}", await price_cell.text_content())
    await expect(entry_row.locator("td").nth(3)).to_have_text("buy")
    await expect(entry_row).to_contain_text("open long")
    await expect(exit_row).to_have_attribute("data-price", js_number(trx["exit_price"]))
    await expect(exit_row.locator("td").nth(3)).to_have_text("sell")
    await expect(exit_row).to_contain_text("close long")
    await expect(exit_row).to_contain_text("manual")
    resting = page.get_by_test_id(f"order-order-{order_id}")
    await expect(resting).to_contain_text("limit to open long")
    await expect(resting.locator("td").nth(8)).to_have_text("open")
    times = await history.locator("tbody tr").evaluate_all(
        "(rows) => rows.map((r) => Date.parse(r.cells[0].textContent.replace(' UTC', 'Z').replace(' ', 'T')))")
    assert times == sorted(times, reverse=True), "not newest first"

    # Profit per pair, day, week and month: the sums of the API's closed trades.
    await user.goto("/", "Overview")
    group = page.get_by_role("group", name="Group profit by")
    table = page.get_by_test_id("profit-table")
    for grouping, label in (("pair", "Pair"), ("day", "Day"), ("week", "Week"), ("month", "Month")):
        await group.get_by_role("button", name=label, exact=True).click()
        await expect(table).to_have_attribute("data-grouping", grouping)
        sums: dict[str, list[float]] = {}
        for t in trades:
            key = t["symbol"] if grouping == "pair" else period_keys(t["exit_time"])[grouping]
            sums.setdefault(key, []).append(t["net_pnl"])
        if grouping in ("pair", "day", "week"):
            assert len(sums) == 2, f"the trades do not fall in two of a {grouping}: {sums}"
        rows = table.get_by_test_id("profit-row")
        await expect(rows).to_have_count(len(sums))
        for key, pnls in sums.items():
            row = table.locator(f'[data-testid="profit-row"][data-key="{key}"]')
            await expect(row).to_have_attribute("data-trades", str(len(pnls)))
            assert abs(float(await row.get_attribute("data-value")) - sum(pnls)) < 1e-9
    await page.screenshot(path=str(artifacts / "overview-profit-1280.png"), full_page=True)

    # Analyze now: the session's analysis of each stream's last candle; it never trades.
    await page.get_by_role("button", name="Analyze now").click()
    analyses = page.get_by_test_id("analysis")
    await expect(analyses).to_have_count(2)
    stored = {a["symbol"]: a for a in await user.get("/api/paper-trading/latest-signals")}
    for symbol in ("DASHBTC", "TRXBTC"):
        card = page.locator(f'[data-testid="analysis"][data-symbol="{symbol}"]')
        at = datetime.fromtimestamp(stored[symbol]["open_time"] / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")
        await expect(card).to_contain_text(at)
        direction = "warming_up" if stored[symbol]["warming_up"] else stored[symbol]["direction"] or "neutral"
        await expect(card).to_have_attribute("data-direction", direction)
    assert [t["trade_id"] for t in await user.get("/api/paper-trading/trades/open")] == [open_id], "analyze-now traded"
    # Config suggestions: the documented rules over this account's results.
    await page.get_by_role("button", name="Config suggestions").click()
    panel = page.get_by_test_id("suggestions")
    await expect(panel).to_be_visible()
    made = await user.get("/api/paper-trading/config-suggestions/latest")
    await expect(panel).to_have_attribute("data-count", str(len(made["suggestions"])))
    await expect(panel).to_contain_text(f"From {made['trades_considered']} closed trade(s)")
    for s in made["suggestions"]:
        await expect(panel.locator(f'[data-parameter="{s["parameter"]}"]')).to_contain_text(s["reason"])

    await user.context.close()
    assert user.console.errors == []
