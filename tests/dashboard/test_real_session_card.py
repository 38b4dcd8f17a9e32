"""The Real session card on the Real trading page in Chromium, against the real gateway, workers, Temporal
and the sim exchange: a user with two-factor, a saved futures key and a paper session requests the start,
sees the RED approval text, cannot approve until it is typed exactly, approves, watches the session run,
then stops it with a flatten (one plain confirmation)."""

from __future__ import annotations

from playwright.async_api import expect

from .helpers import signed_in
from .test_real_trading_page import with_futures_key


async def test_the_real_session_starts_only_once_its_approval_is_typed_and_stops_with_a_flatten(
        gateway, browser, sim, artifacts):
    user = await signed_in(gateway, browser)
    await with_futures_key(user, sim)
    paper = await gateway.http.post("/api/paper-trading/start", headers=user.headers,
                                    json={"symbols": ["BTCUSDT"], "interval": "5m"})
    assert paper.status_code == 200, paper.text
    page = user.page
    await user.goto("/real-trading", "Real trading")
    card = page.get_by_role("region", name="Real session")
    await expect(card.get_by_test_id("real-session-status")).to_contain_text("NEW")

    await card.get_by_role("button", name="Request start").click()
    approval = card.get_by_role("form", name="Approve the start")
    text = approval.get_by_test_id("approval-text")
    await expect(text).to_have_text("I approve real_trading = 1")
    approve = approval.get_by_role("button", name="Approve and start")
    await approval.get_by_label("Approval text").fill("I approve")
    await expect(approve).to_be_disabled()
    await approval.get_by_label("Approval text").fill("I approve real_trading = 1")
    await approve.click()
    await expect(card.get_by_test_id("real-session-status")).to_contain_text("RUNNING", timeout=20_000)
    await expect(card.get_by_test_id("real-session-report")).to_contain_text("In step with the exchange")
    await card.screenshot(path=str(artifacts / "real-session-card.png"))

    await card.get_by_role("button", name="Stop and flatten").click()
    dialog = page.get_by_role("dialog", name="Stop and flatten?")
    await dialog.get_by_role("button", name="Stop and flatten").click()
    await expect(card.get_by_test_id("real-session-status")).to_contain_text("STOPPED")
    status = await user.get("/api/real-trading/status")
    assert status["status"] == "STOPPED" and not status["entries_enabled"], status
    assert user.console.errors == []
