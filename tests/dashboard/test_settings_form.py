"""The settings form as a freqtrade user reads it: built from the API's own description of every setting
(GET /api/paper-trading/settings/schema), so each field shows its label, unit and help, never the API's
key; choices are selects, flags checkboxes, ranges are checked as typed in the server's own words, and
the server's refusal stands next to the field it names. A new account chooses its market and currency
on the overview's Start form; once started, the settings page shows them fixed.

Each test signs up its own user on the shared stack. No console error is allowed.
"""

from __future__ import annotations

import re

from playwright.async_api import expect

from ..conftest import with_key
from .helpers import DESKTOP, PHONE, signed_in

SCHEMA = "/api/paper-trading/settings/schema"
# The kinds with one input named by the setting's label (lists and the weight map are groups of inputs).
SINGLE = {"number", "integer", "choice", "flag", "text"}
MAPS = {"weights"}  # strategy → weight: a number per strategy


async def test_the_form_shows_every_setting_by_its_label_unit_and_help_with_choices_as_selects(gateway, browser,
                                                                                                artifacts):
    user = await signed_in(gateway, browser)
    page = user.page
    schema = await user.get(SCHEMA)
    await user.goto("/settings", "Settings")

    # Every setting of the schema is there under its label, in the form of its section.
    for setting in schema:
        form = page.get_by_test_id(f"settings-{setting['section']}")
        if setting["kind"] in SINGLE and setting["path"] not in MAPS:
            await expect(form.get_by_label(setting["label"], exact=True)).to_have_count(1)
        else:
            await expect(form.get_by_role("group", name=setting["label"], exact=True)).to_have_count(1)
    # No label or legend is an API key ("rsi.length", "risk.max_daily_loss_pct", "fill_price" …).
    shown = await page.locator("main label, main legend").all_inner_texts()
    keys = {s["path"] for s in schema}
    assert not keys & {t.strip() for t in shown}, keys & {t.strip() for t in shown}
    assert not [t for t in shown if re.search(r"\w\.\w|\w_\w", t)], shown
    # The exchange's symbol filters are the API's business, not a setting to edit.
    await expect(page.locator('[data-path="symbols"]')).to_have_count(0)

    # A number: its label, its unit beside it, min/max from the schema, the unit and help as its description.
    rsi = next(s for s in schema if s["path"] == "rsi.length")
    length = page.get_by_test_id("settings-indicators").get_by_label("RSI length", exact=True)
    await expect(length).to_have_value("14")
    await expect(length).to_have_attribute("type", "number")
    await expect(length).to_have_attribute("min", "2")
    await expect(length).to_have_attribute("max", "100")
    await expect(length).to_have_attribute("step", "1")
    await expect(page.locator('[data-path="rsi.length"] .unit')).to_have_text("candles")
    await expect(length).to_have_accessible_description(re.compile("^candles"))
    assert rsi["unit"] == "candles"
    stop = page.get_by_label("Stop loss", exact=True)
    await expect(stop).to_have_accessible_description("% Distance of the stop from the entry price.")
    # A choice is a select of the schema's choices; a flag a checkbox; a list a group of checkboxes.
    sizing = next(s for s in schema if s["path"] == "position_sizing")
    select = page.get_by_label(sizing["label"], exact=True)
    assert await select.evaluate("(e) => e.tagName") == "SELECT"
    options = await select.locator("option").evaluate_all("(os) => os.map((o) => o.value)")
    assert options == sizing["choices"], options
    await expect(select).to_have_value("risk")
    await expect(page.get_by_role("checkbox", name="Close on an opposite signal", exact=True)).to_be_checked()
    strategies = next(s for s in schema if s["path"] == "enabled")
    voting = page.get_by_role("group", name="Strategies that vote")
    await expect(voting.get_by_role("checkbox")).to_have_count(len(strategies["choices"]))
    await expect(voting.get_by_role("checkbox", name="RSI", exact=True)).to_be_checked()
    # The weights: one number per strategy that may vote, empty (1 each) while there is no weighting.
    weights = page.get_by_role("group", name=re.compile("^Strategy weight"))
    await expect(weights.get_by_role("spinbutton")).to_have_count(len(strategies["choices"]))
    await expect(weights.get_by_label("MACD", exact=True)).to_have_value("")
    # A fresh account may still choose its market and currency.
    await expect(page.get_by_label("Market type", exact=True)).to_be_enabled()
    await expect(page.get_by_label("Account currency", exact=True)).to_have_value("USDT")

    for viewport, name in ((DESKTOP, "settings-form-1280"), (PHONE, "settings-form-390")):
        await page.set_viewport_size(viewport)
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the settings page scrolls sideways by {overflow}px at {viewport['width']}px"
        await page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)

    await user.context.close()
    assert user.console.errors == []


async def test_an_out_of_range_value_is_refused_next_to_its_field_and_a_valid_one_saves(gateway, browser):
    user = await signed_in(gateway, browser)
    page = user.page
    await user.goto("/settings", "Settings")
    form = page.get_by_test_id("settings-indicators")
    length = form.get_by_label("RSI length", exact=True)
    message = form.locator('[data-path="rsi.length"] .field-message')
    save = form.get_by_role("button", name="Save indicator settings")

    # A value the API could not even read is never sent.
    await length.fill("2.5")
    await expect(message).to_have_text("RSI length must be a whole number from 2 to 100 candles, got 2.5")
    await save.click()
    await expect(form.get_by_role("alert")).to_have_text("Not saved: correct the highlighted settings first.")
    await expect(length).to_be_focused()

    # As typed: the range, in the words the server uses.
    await length.fill("100000")
    said = "RSI length must be a whole number from 2 to 100 candles, got 100000"
    await expect(message).to_have_text(said)
    await expect(message).to_have_attribute("data-from", "form")
    await expect(length).to_have_attribute("aria-invalid", "true")
    # Saved anyway: the server's dry run refuses it, its reason replaces the hint, the field has the focus.
    verdict = await user.post("/api/paper-trading/settings/check", {"indicators": {"rsi": {"length": 100000}}})
    assert verdict == {"valid": False, "field": "rsi.length", "reason": said}, verdict
    await save.click()
    await expect(message).to_have_attribute("data-from", "server")
    await expect(message).to_have_text(verdict["reason"])
    await expect(length).to_be_focused()
    await expect(length).to_have_attribute("aria-invalid", "true")
    await expect(length).to_have_accessible_description(re.compile(re.escape(said)))
    assert (await user.get("/api/paper-trading/indicator-settings"))["settings"]["rsi"]["length"] == 14

    # Meanwhile another client changes a setting: the save sees the newer version, shows the current
    # values and keeps the edit, and the next save lands.
    await length.fill("21")
    await expect(message).to_have_count(0)
    await expect(length).not_to_have_attribute("aria-invalid", "true")
    changed = await gateway.http.put("/api/paper-trading/settings", headers=user.headers,
                                     json={"basic": {"leverage": 3}})
    assert changed.status_code == 200, changed.text
    await save.click()
    await expect(form.get_by_role("alert")).to_contain_text("changed elsewhere")
    await expect(page.get_by_label("Leverage", exact=True)).to_have_value("3")
    await expect(length).to_have_value("21")
    assert (await user.get("/api/paper-trading/indicator-settings"))["settings"]["rsi"]["length"] == 14
    await save.click()
    await expect(form.get_by_role("status")).to_have_text("Saved.")
    await expect(form.get_by_role("alert")).to_have_count(0)
    saved = await user.get("/api/paper-trading/indicator-settings")
    assert saved["settings"]["rsi"]["length"] == 21 and saved["version"] == changed.json()["version"] + 1, saved

    await page.reload()
    await expect(page.get_by_test_id("settings-indicators").get_by_label("RSI length", exact=True)).to_have_value("21")
    await expect(page.get_by_label("Leverage", exact=True)).to_have_value("3")

    await user.context.close()
    assert user.console.errors == []


async def test_a_new_account_starts_spot_in_btc_from_the_overview_and_then_its_market_is_fixed(gateway, browser,
                                                                                             artifacts):
    user = await signed_in(gateway, browser)
    page = user.page
    schema = {s["path"]: s for s in await user.get(SCHEMA)}
    await user.goto("/", "Overview")
    start = page.get_by_role("form", name="Start a session")
    market = start.get_by_label("Market type", exact=True)
    await expect(market.locator("option")).to_have_count(len(schema["market"]["choices"]))
    options = await market.locator("option").evaluate_all("(os) => os.map((o) => o.value)")
    assert options == schema["market"]["choices"], options
    await expect(market).to_have_accessible_description(re.compile(re.escape(schema["market"]["help"])))
    fill = start.get_by_label("Fill price of signal trades", exact=True)
    await expect(fill).to_have_value("next_open")

    for viewport, name in ((PHONE, "start-form-390"), (DESKTOP, "start-form-1280")):
        await page.set_viewport_size(viewport)
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the overview scrolls sideways by {overflow}px at {viewport['width']}px"
        await start.screenshot(path=str(artifacts / f"{name}.png"))

    await start.get_by_label("Symbols").fill("LTCBTC")
    await start.get_by_label("Interval").select_option("5m")
    await market.select_option("spot")
    await start.get_by_label("Account currency", exact=True).fill("btc")
    await start.get_by_role("button", name="Start session").click()
    await expect(page.get_by_test_id("engine-status")).to_contain_text("running")
    await expect(page.get_by_test_id("engine-symbols").locator(".stat-value")).to_have_text("LTCBTC")
    await expect(start).to_have_count(0)
    basic = (await user.get("/api/paper-trading/basic-settings"))["settings"]
    assert (basic["market"], basic["account_currency"], basic["leverage"]) == ("spot", "BTC", 1), basic
    assert (await user.get("/api/paper-trading/status"))["symbols"] == ["LTCBTC"]

    # Started: the market and currency are shown, fixed, with why.
    await page.get_by_role("navigation", name="Pages").get_by_role("link", name="Settings", exact=True).click()
    form = page.get_by_test_id("settings-basic")
    market = form.get_by_label("Market type", exact=True)
    currency = form.get_by_label("Account currency", exact=True)
    await expect(market).to_have_value("spot")
    await expect(market).to_be_disabled()
    await expect(currency).to_have_value("BTC")
    await expect(currency).to_be_disabled()
    await expect(currency).to_have_accessible_description(re.compile("Changes only on a fresh account.*Reset it"))
    # What is not fixed still saves.
    await form.get_by_label("Leverage", exact=True).fill("1")  # spot: 1x only, unchanged
    await form.get_by_label("Stop loss", exact=True).fill("3")
    await form.get_by_role("button", name="Save basic settings").click()
    await expect(form.get_by_role("status")).to_have_text("Saved.")
    basic = (await user.get("/api/paper-trading/basic-settings"))["settings"]
    assert (basic["stop_loss_pct"], basic["market"]) == (3, "spot"), basic

    # Stopped, the account keeps its market; reset, it may choose again.
    await user.post("/api/paper-trading/stop")
    await user.goto("/", "Overview")
    await expect(page.get_by_test_id("engine-status")).to_contain_text("stopped")
    await expect(start.get_by_label("Market type", exact=True)).to_be_disabled()
    await expect(start.get_by_label("Fill price of signal trades", exact=True)).to_be_enabled()
    reset = await gateway.http.post("/api/paper-trading/reset", headers=with_key(user.headers))
    assert reset.status_code == 200, reset.text
    await page.reload()
    await expect(start.get_by_label("Market type", exact=True)).to_be_enabled()
    await expect(start.get_by_label("Market type", exact=True)).to_have_value("spot")

    await user.context.close()
    assert user.console.errors == []
