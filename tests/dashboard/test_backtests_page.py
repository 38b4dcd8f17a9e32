"""The Backtests page in Chromium against the real gateway, worker, Temporal and SecantusDB: the form
starts from the session's exported settings; a two-pair run on data files shows the report tables
the API stored, the price with a marker at every entry and exit, the equity curve and the trades page
by page; the JSON and CSV downloads are the API's exports byte for byte; two runs compare (the
differing setting named) and one is deleted. No console error, no table cut off at 1280 px."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

from playwright.async_api import ConsoleMessage, Page, expect

PASSWORD = "correct horse battery staple"
FILES = "ETHBTC-5m-2018-01.csv.gz, LTCBTC-5m-2018-01.csv.gz"


async def logged_in(gateway, browser) -> tuple[Page, dict[str, str], list[str]]:
    email = f"u{uuid.uuid4().hex[:10]}@example.com"
    account = {"email": email, "password": PASSWORD}
    assert (await gateway.http.post("/api/auth/register", json=account)).status_code == 201
    tokens = (await gateway.http.post("/api/auth/login", json=account)).json()
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    stored = {"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]}
    await context.add_init_script(f"localStorage.setItem('durabot.tokens', JSON.stringify({stored!r}))")
    page = await context.new_page()
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    return page, {"Authorization": f"Bearer {tokens['access_token']}"}, errors


async def run(page: Page, leverage: str, previous: str | None = None) -> str:
    form = page.get_by_role("form", name="Run a backtest")
    await form.get_by_label("Dataset").fill(FILES)
    await form.get_by_label("Trade from").fill("2018-01-11 00:00")
    await form.get_by_label("Trade until").fill("2018-01-20 00:00")
    await form.get_by_label("Leverage").fill(leverage)
    await form.get_by_label("Min agreeing strategies").fill("2")
    await form.get_by_role("button", name="Run backtest").click()
    # The report of the run just started (not the one shown before), once completed.
    other = f"(?!{previous}$)" if previous else ""
    report = page.get_by_role("region", name=re.compile(f"^Backtest {other}[0-9a-f]{{32}}$"))
    await expect(report.get_by_test_id("backtest-status")).to_contain_text("completed", timeout=60_000)
    return (await report.get_by_role("heading", level=2).text_content() or "").split()[-1]


async def test_backtests_page_report_downloads_compare_delete(gateway, browser, tmp_path: Path):
    page, headers, errors = await logged_in(gateway, browser)
    http = gateway.http
    session = (await http.get("/api/paper-trading/settings/export", headers=headers)).json()
    await page.goto(gateway.settings.gateway_url + "/backtests")
    form = page.get_by_role("form", name="Run a backtest")
    # The form starts from the session's settings.
    await expect(form.get_by_label("Leverage")).to_have_value(str(session["engine"]["leverage"]))
    await expect(form.get_by_label("Symbols")).to_have_value(",".join(session["symbols"]))
    document = form.get_by_label("Settings document (JSON)")
    await expect(document).to_have_value(re.compile('"format": "durabot-settings"'))

    first = await run(page, "3")
    doc = (await http.get(f"/api/backtests/{first}", headers=headers)).json()
    report = doc["report"]
    assert report["parameters"]["settings"]["engine"]["leverage"] == 3
    assert report["parameters"]["settings"]["symbols"] == ["ETHBTC", "LTCBTC"]
    assert doc["trades_total"] > 50, "want a second trades page"
    await expect(page.get_by_test_id("backtest-metrics")).to_contain_text("win rate")
    per_pair = page.get_by_test_id("backtest-per-pair")
    for row in report["tables"]["per_pair"]:
        await expect(per_pair.get_by_role("row").filter(has_text=row["symbol"])).to_contain_text(str(row["trades"]))
    months = [r["month"] for r in report["tables"]["per_month"]]
    await expect(page.get_by_test_id("backtest-per-month").locator("tbody tr")).to_have_count(len(months))
    await expect(page.get_by_test_id("backtest-per-exit-reason").locator("tbody tr")).to_have_count(
        len(report["tables"]["per_exit_reason"]))
    await expect(page.get_by_test_id("backtest-durations")).to_contain_text("winners")
    await expect(page.get_by_test_id("backtest-parameters")).to_contain_text("settings.engine.leverage")
    every = (await http.get(f"/api/backtests/{first}/export", headers=headers)).json()["trades"]
    eth = [t for t in every if t["symbol"] == "ETHBTC"]
    await expect(page.get_by_test_id("backtest-price-chart")).to_have_attribute("data-markers", str(2 * len(eth)))
    await expect(page.get_by_role("img", name="Backtest equity curve")).to_be_visible()

    trades = page.get_by_test_id("backtest-trades")
    await expect(trades.locator("tbody tr")).to_have_count(50)
    # In the order they closed, as the API pages them.
    await expect(trades.locator("tbody tr").first.locator("td").first).to_have_text(str(every[0]["id"]))
    await page.get_by_role("button", name="Next trades").click()
    await expect(trades.locator("tbody tr").first.locator("td").first).to_have_text(str(every[50]["id"]))
    await expect(page.get_by_role("heading", name=re.compile(r"^Trades 51–"))).to_be_visible()

    clipped = await page.evaluate("[...document.querySelectorAll('.table-wrap')]"
                                  ".filter((e) => e.scrollWidth > e.clientWidth + 1).length")
    assert clipped == 0, "a table is cut off at 1280 px"
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.wait_for_timeout(250)  # charts resize on the next frame
    # A phone scrolls the tables inside their .table-wrap, never the page.
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the report scrolls sideways by {overflow}px at 390 px"
    await page.set_viewport_size({"width": 1280, "height": 900})

    for label, fmt in (("Download JSON", "json"), ("Download CSV", "csv")):
        async with page.expect_download() as info:
            await page.get_by_role("button", name=label).click()
        saved = tmp_path / f"download.{fmt}"
        await (await info.value).save_as(saved)
        exported = await http.get(f"/api/backtests/{first}/export", headers=headers, params={"format": fmt})
        assert saved.read_bytes() == exported.content, fmt

    second = await run(page, "5", previous=first)
    assert second != first
    for backtest_id in (first, second):
        await page.get_by_role("checkbox", name=f"Compare {backtest_id}").check()
    await page.get_by_role("button", name="Compare selected (2)").click()
    leverage = page.get_by_test_id("backtest-comparison").get_by_role("row").filter(has_text="settings.engine.leverage")
    await expect(leverage).to_contain_text("3")
    await expect(leverage).to_contain_text("5")

    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Delete backtest").click()
    await expect(page.get_by_role("region", name=f"Backtest {second}")).to_have_count(0)
    await expect(page.get_by_role("checkbox", name=re.compile("^Compare "))).to_have_count(1)
    assert (await http.get(f"/api/backtests/{second}", headers=headers)).status_code == 404
    assert errors == [], errors
