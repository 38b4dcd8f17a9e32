"""The Real trading page in Chromium against the real gateway, the product's `real` worker, Temporal and the
sim exchange (which plays Binance USDⓈ-M): a user with two-factor and a saved futures key requests a MARKET
BUY on the page, which is marked REAL everywhere; the confirmation dialog shows the server's summary, each
risk check's verdict and a live countdown; confirming above the user's notional threshold asks for a code
(the step-up dialog over it), then the confirmation goes through and the order reaches a final state in the
orders table. A second order is left to expire (the dialog says so, Confirm stays disabled, the table shows
EXPIRED); a third is cancelled from the dialog and nothing of it is sent.

The only console errors are the 403 the step-up provokes on purpose.
"""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from tests.conftest import enrol_two_factor

from .helpers import User, signed_in

ORDERS = "/api/real-trading/orders"
PROVOKED = re.compile(r"Failed to load resource: the server responded with a status of 403")


async def with_futures_key(user: User, sim) -> list[str]:
    """Two-factor on (this session stepped up), a step-up threshold below the test's notional, and a sim
    futures key saved through the settings API; the recovery codes."""
    totp = await enrol_two_factor(user.gateway.http, user.headers)
    threshold = await user.gateway.http.put("/api/auth/2fa/step-up-notional", headers=user.headers,
                                            json={"step_up_notional": 10.0})
    assert threshold.status_code == 200, threshold.text
    async with httpx.AsyncClient(base_url=sim.rest_url, timeout=10) as exchange:
        made = await exchange.post("/sim/keys", json={"enable_futures": True, "balances": {"USDT": "100000.00000000"}})
    assert made.status_code < 300, made.text
    key = made.json()
    saved = await user.gateway.http.post("/api/settings/api-keys", headers=user.headers, json={
        "label": "futures", "api_key": key["api_key"], "api_secret": key["api_secret"]})
    assert saved.status_code == 201, saved.text
    return totp.recovery


async def new_login_session(user: User) -> None:
    """Fresh tokens (a refresh ends the step-up), in the page and for the API calls."""
    tokens = await user.page.evaluate("JSON.parse(localStorage.getItem('durabot.tokens'))")
    refreshed = await user.gateway.http.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    tokens = {k: refreshed.json()[k] for k in ("access_token", "refresh_token")}
    await user.page.evaluate("(t) => localStorage.setItem('durabot.tokens', JSON.stringify(t))", tokens)
    user.headers = {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_request_confirm_with_a_code_let_one_expire_and_cancel_one(gateway, browser, sim, artifacts):
    user = await signed_in(gateway, browser)
    recovery = await with_futures_key(user, sim)
    await new_login_session(user)
    page = user.page
    await user.goto("/real-trading", "Real trading")

    # REAL in the nav and on the page.
    link = page.get_by_role("navigation", name="Pages").get_by_role("link", name="Real trading", exact=True)
    await expect(link).to_have_class("nav-real")
    await expect(link.locator(".real-badge")).to_have_text("REAL")
    banner = page.locator("main").get_by_test_id("real-banner")
    await expect(banner).to_contain_text("REAL MONEY — orders go to the exchange")
    await expect(page.get_by_test_id("no-real-orders")).to_be_visible()

    # A bad quantity is caught on the page: nothing is requested.
    form = page.get_by_role("form", name="New real order")
    await expect(form.get_by_label("Symbol")).to_have_value("BTCUSDT")
    review = form.get_by_role("button", name="Review REAL order")
    await review.click()
    await expect(form.get_by_role("alert")).to_have_text("the quantity must be a number above 0")
    await form.get_by_label("Quantity").fill("0.01")
    await review.click()

    dialog = page.get_by_role("dialog", name="Confirm REAL order: BUY 0.010 BTCUSDT")
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_test_id("real-banner")).to_be_visible()
    [first] = await user.get(ORDERS)
    assert first["status"] == "AWAITING_CONFIRMATION"
    summary = first["summary"]
    await expect(dialog.get_by_test_id("summary-symbol")).to_have_text("SymbolBTCUSDT")
    await expect(dialog.get_by_test_id("summary-side")).to_have_text("SideBUY")
    await expect(dialog.get_by_test_id("summary-notional")).to_contain_text(f"{summary['notional']:,.2f} USDT")
    await expect(dialog.get_by_test_id("summary-leverage")).to_have_text("Leverage1×")
    for key in ("expected_price", "fee", "liquidation_price"):
        await expect(dialog.get_by_test_id(f"summary-{key}")).to_have_text(re.compile(r"\d"))
    checks = dialog.get_by_test_id("risk-checks").locator("li")
    await expect(checks).to_have_count(len(summary["risk_checks"]))
    for index, check in enumerate(summary["risk_checks"]):
        await expect(checks.nth(index)).to_have_attribute("data-passed", str(check["passed"]).lower())
        await expect(checks.nth(index)).to_contain_text(check["detail"])
    # The countdown runs to the server's deadline (10 s in these tests) and ticks.
    countdown = dialog.get_by_test_id("confirm-countdown")
    await expect(countdown).to_have_attribute("data-until", str(first["confirm_by_ms"]))
    await expect(countdown).to_have_text(re.compile(r"^Confirm within ([1-9]|10)s$"))
    shown = await countdown.inner_text()
    await expect(countdown).not_to_have_text(shown)
    await dialog.screenshot(path=str(artifacts / "real-order-dialog.png"))

    # Above the user's threshold the confirmation asks for a code, then goes through without another click.
    await dialog.get_by_role("button", name="Confirm").click()
    step_up = page.get_by_role("dialog", name="Confirm with your authentication code")
    await expect(step_up).to_be_visible()
    await step_up.get_by_label("Authentication code").fill(recovery[0])
    await step_up.get_by_role("button", name="Confirm").click()
    # The confirmation answers once the exchange did (or its submission timed out: 3 s here).
    await expect(dialog).to_have_count(0, timeout=10_000)
    row = page.get_by_test_id(f"real-order-{first['order_id']}")
    await expect(row).to_have_attribute("data-status", "FILLED")
    done = await user.get(f"{ORDERS}/{first['order_id']}")
    assert done["status"] == "FILLED" and done["executed_qty"] == 0.01, done
    assert done["confirmed_by"] == "dashboard"
    await expect(row.get_by_test_id("status")).to_have_text(done["status"])
    await expect(page.get_by_test_id("real-note")).to_contain_text("BUY 0.010 BTCUSDT")
    if done["status"] == "FILLED":
        await expect(row.get_by_test_id("executed-qty")).to_have_text("0.01")
        await expect(row.get_by_test_id("avg-price")).to_have_text(re.compile(r"\d"))
    else:
        await expect(row.get_by_test_id("reason")).to_have_text(done["reason"])
    await expect(row.get_by_role("button")).to_have_count(0)  # final: nothing to cancel

    # Left alone, the next one expires: the dialog says so and Confirm stays disabled; the table shows it.
    await review.click()
    dialog = page.get_by_test_id("real-order-dialog")
    await expect(dialog.get_by_test_id("confirm-countdown")).to_be_visible()
    second = (await user.get(ORDERS))[0]
    assert second["order_id"] != first["order_id"] and second["status"] == "AWAITING_CONFIRMATION"
    await expect(dialog).to_have_attribute("data-status", "EXPIRED", timeout=15_000)
    await expect(dialog.get_by_test_id("confirm-closed")).to_contain_text("expired")
    await expect(dialog.get_by_role("button", name="Confirm")).to_be_disabled()
    await dialog.get_by_role("button", name="Close").click()
    await expect(dialog).to_have_count(0)
    row = page.get_by_test_id(f"real-order-{second['order_id']}")
    await expect(row).to_have_attribute("data-status", "EXPIRED")
    await expect(row.get_by_test_id("reason")).to_contain_text("not confirmed in time")

    # A third is cancelled from the dialog: CANCELED, and the exchange never saw it.
    await review.click()
    await expect(dialog.get_by_test_id("confirm-countdown")).to_be_visible()
    third = (await user.get(ORDERS))[0]
    await dialog.get_by_role("button", name="Cancel order").click()
    await expect(dialog).to_have_count(0)
    await expect(page.get_by_test_id(f"real-order-{third['order_id']}")).to_have_attribute("data-status", "CANCELED")
    statuses = {o["order_id"]: o["status"] for o in await user.get(ORDERS)}
    assert statuses == {first["order_id"]: done["status"], second["order_id"]: "EXPIRED",
                        third["order_id"]: "CANCELED"}, statuses
    await page.screenshot(path=str(artifacts / "real-trading-page.png"), full_page=True)

    await user.context.close()
    assert [e for e in user.console.errors if not (PROVOKED.match(e[0]) and "/confirm" in e[1])] == []
