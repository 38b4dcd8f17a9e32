"""The Real trading page in Chromium against the real gateway, the product's `real` worker, Temporal and the
sim exchange (which plays Binance USDⓈ-M): a user with two-factor and a saved futures key requests a MARKET
BUY on the page, which is marked REAL everywhere; the confirmation dialog shows the server's summary, each
risk check's verdict and a live countdown; confirming above the user's notional threshold asks for a code
(the step-up dialog over it), then the confirmation goes through and the order reaches a final state in the
orders table. The filled BUY shows as a long position with the wallet and an in-step reconciliation; a stop
loss set below the mark rests on the exchange as an algo order, a tighter one replaces it (the old order is
cancelled), one moved away waits for the 2-step confirmation, and Close (one plain confirmation) closes the
position. A second order is left to expire (the dialog says so, Confirm stays disabled, the table shows
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


async def with_futures_key(user: User, sim) -> tuple[list[str], str]:
    """Two-factor on (this session stepped up), a step-up threshold below the test's notional, and a sim
    futures key saved through the settings API; the recovery codes and the key as the sim masks it."""
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
    return totp.recovery, "****" + key["api_key"][-4:]


async def resting_algos(sim, masked_key: str) -> dict[str, dict]:
    """The key's conditional orders resting on the sim exchange (not triggered nor cancelled), by client ID."""
    async with httpx.AsyncClient(base_url=sim.rest_url, timeout=10) as exchange:
        reply = await exchange.get("/sim/orders")
    assert reply.status_code == 200, reply.text
    return {a["clientAlgoId"]: a for a in reply.json()["algo_orders"]
            if a["api_key"] == masked_key and a["algoStatus"] == "NEW"}


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
    recovery, masked_key = await with_futures_key(user, sim)
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
    protective = await sees_the_fill_and_moves_its_stop_loss(user, sim, masked_key, artifacts)

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
    expected = {first["order_id"]: done["status"], second["order_id"]: "EXPIRED", third["order_id"]: "CANCELED"}
    assert {k: statuses[k] for k in expected} == expected, statuses
    assert set(statuses) == {*expected, *protective}, statuses  # and the stops and the close
    await page.screenshot(path=str(artifacts / "real-trading-page.png"), full_page=True)

    await user.context.close()
    assert [e for e in user.console.errors if not (PROVOKED.match(e[0]) and "/confirm" in e[1])] == []


async def sees_the_fill_and_moves_its_stop_loss(user: User, sim, masked_key: str, artifacts) -> set[str]:
    """The filled BUY as a position: a stop loss set, tightened, moved away (confirmed in the 2-step dialog),
    then the position closed. The IDs of the orders this made."""
    page = user.page
    position = page.get_by_test_id("real-position-BTCUSDT")
    await expect(position).to_have_attribute("data-side", "long")
    await expect(position).to_have_attribute("data-size", "0.01")
    [held] = await user.get("/api/real-trading/positions")
    await expect(position.get_by_test_id("entry")).to_have_text(f"{held['entry_price']:,.1f}")
    await expect(position.get_by_test_id("stop-loss")).to_have_text("—")
    await expect(page.get_by_test_id("balance-wallet")).to_have_attribute("data-value", re.compile(r"^9\d{4}"))
    await expect(page.get_by_test_id("balance-available")).to_have_text(re.compile(r"\d"))
    # Reconciliation: the fill is Durabot's, so the account is in step (checked again after the fill).
    verdict = page.get_by_test_id("reconciliation")
    checked = await verdict.get_attribute("data-checked")
    await page.get_by_role("button", name="Check again").click()
    await expect(verdict).not_to_have_attribute("data-checked", checked or "")
    await expect(verdict).to_have_attribute("data-ok", "true")
    await expect(verdict).to_contain_text("In step with the exchange")

    editor = page.get_by_role("form", name="Stop loss and take profit of BTCUSDT")
    stop_field = editor.get_by_label("Stop loss", exact=True)
    mark = float(await position.get_by_test_id("mark").get_attribute("data-value") or "nan")

    async def save_stop(price: float) -> dict:
        await stop_field.fill(f"{price:.1f}")
        await editor.get_by_role("button", name="Save").click()
        await expect(page.get_by_test_id("real-note")).to_contain_text(f"stop loss of BTCUSDT at {price:.1f}")
        return next(o for o in await user.get(ORDERS) if o["terms"]["order_type"] == "STOP_MARKET"
                    and float(o["terms"]["trigger_price"]) == round(price, 1))

    # A stop on the wrong side of the mark is caught on the page.
    await stop_field.fill(f"{mark * 1.1:.1f}")
    await editor.get_by_role("button", name="Save").click()
    await expect(editor.get_by_role("alert")).to_contain_text("the stop loss of a long lies below the mark price")

    # A first stop acts at once: the row shows it and the exchange holds it as an algo order.
    first_stop = await save_stop(round(mark * 0.9, 1))
    assert first_stop["status"] == "OPEN" and first_stop["terms"]["close_position"], first_stop
    await expect(position.get_by_test_id("stop-loss")).to_have_attribute("data-order", first_stop["order_id"])
    await expect(position.get_by_test_id("stop-loss")).to_have_text(f"{round(mark * 0.9, 1):,.1f}")
    algos = await resting_algos(sim, masked_key)
    assert set(algos) == {first_stop["order_id"]}, algos
    assert algos[first_stop["order_id"]]["orderType"] == "STOP_MARKET", algos
    assert float(algos[first_stop["order_id"]]["triggerPrice"]) == round(mark * 0.9, 1), algos

    # Tighter acts at once too, and replaces the old stop once it is on the exchange.
    tighter = await save_stop(round(mark * 0.95, 1))
    assert tighter["replaces"] == first_stop["order_id"], tighter
    await expect(position.get_by_test_id("stop-loss")).to_have_attribute("data-order", tighter["order_id"])
    replaced = page.get_by_test_id(f"real-order-{first_stop['order_id']}")
    await expect(replaced).to_have_attribute("data-status", "CANCELED")
    assert set(await resting_algos(sim, masked_key)) == {tighter["order_id"]}

    # Moved away from the price it waits for the 2-step confirmation; confirmed, it replaces the tighter one.
    await stop_field.fill(f"{mark * 0.85:.1f}")
    await editor.get_by_role("button", name="Save").click()
    dialog = page.get_by_role("dialog", name=f"Confirm REAL order: stop loss of BTCUSDT at {mark * 0.85:.1f}")
    await expect(dialog.get_by_test_id("summary-trigger")).to_have_text(f"Trigger price{mark * 0.85:.1f}")
    await expect(position.get_by_test_id("stop-loss")).to_have_attribute("data-order", tighter["order_id"])
    assert set(await resting_algos(sim, masked_key)) == {tighter["order_id"]}  # nothing moved yet
    await dialog.get_by_role("button", name="Confirm").click()
    await expect(dialog).to_have_count(0)
    looser = (await user.get(ORDERS))[0]
    assert looser["replaces"] == tighter["order_id"] and looser["confirmed_by"] == "dashboard", looser
    await expect(position.get_by_test_id("stop-loss")).to_have_attribute("data-order", looser["order_id"])
    await expect(page.get_by_test_id(f"real-order-{tighter['order_id']}")).to_have_attribute("data-status", "CANCELED")
    await page.screenshot(path=str(artifacts / "real-trading-position.png"), full_page=True)

    # Close: one plain confirmation, then the row goes.
    await position.get_by_role("button", name="Close BTCUSDT position").click()
    await page.get_by_role("dialog", name="Close the BTCUSDT long?").get_by_role("button", name="Close BTCUSDT").click()
    await expect(position).to_have_count(0)
    await expect(page.get_by_test_id("no-real-positions")).to_be_visible()
    await expect(page.get_by_test_id("real-note")).to_contain_text("SELL 0.010 BTCUSDT")
    assert await user.get("/api/real-trading/positions") == []
    return {o["order_id"] for o in await user.get(ORDERS) if o["terms"]["reduce_only"] or o["terms"]["close_position"]}
