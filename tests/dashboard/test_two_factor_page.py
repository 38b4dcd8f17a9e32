"""Two-factor authentication in Chromium against the real gateway: a user without it is told to set it up
when saving an exchange key; sets it up on the settings page (QR code, the secret typed into an app, here
pyotp, a first code) and sees the ten recovery codes once; logs out and back in with password and code;
and, once the session's confirmation has lapsed, saving an exchange key opens the step-up dialog: cancelled,
the save fails with the server's reason; confirmed with a code, the very same save goes through, once. An
admin policy that requires two-factor takes a user without it to the Security section.

A code is good once (the server refuses a time step it has seen): the enrolment takes this step's code, the
login the next step's (within the server's one step of tolerance), the step-up a recovery code, so no test
waits for the clock. Responses the flow provokes on purpose (403, 401, 422) are the only console errors.
"""

from __future__ import annotations

import re
import time

import pyotp
from playwright.async_api import Page, expect

from .helpers import PASSWORD, User, signed_in

API_KEY = "Ab3dEf5hIj7lMn9pQr1tUv3x"
API_SECRET = "Zy9wVu7sRq5oNm3kJi1gHf8dCb6a"
DIALOG = "Confirm with your authentication code"
# The failures this flow provokes: a step-up wanted (403), a wrong login code (401), a wrong code (422).
PROVOKED = re.compile(r"Failed to load resource: the server responded with a status of (401|403|422)")


def wrong_code(totp: pyotp.TOTP) -> str:
    """A code no step near now has (the server accepts the previous and the next step's too)."""
    near = {totp.at(time.time() + 30 * k) for k in range(-3, 4)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in near)


def unexpected_errors(user: User) -> list[tuple[str, str]]:
    return [(text, url) for text, url in user.console.errors
            if not (PROVOKED.match(text) and re.search(r"/api/(auth|settings/api-keys)", url))]


async def fill_key_form(page: Page, label: str) -> None:
    form = page.get_by_role("form", name="Add an exchange API key")
    await form.get_by_label("Label", exact=True).fill(label)
    await form.get_by_label("API key", exact=True).fill(API_KEY)
    await form.get_by_label("API secret", exact=True).fill(API_SECRET)


async def test_enrol_log_in_with_a_code_and_confirm_saving_an_exchange_key(gateway, browser, artifacts):
    user = await signed_in(gateway, browser)
    page = user.page
    email = (await user.get("/api/auth/me"))["email"]
    await user.goto("/settings", "Settings")
    security = page.get_by_role("region", name="Two-factor authentication")
    keys = page.get_by_role("region", name="Exchange API keys")
    key_form = keys.get_by_role("form", name="Add an exchange API key")
    await expect(security.get_by_test_id("two-factor")).to_have_attribute("data-enabled", "false")

    # Without two-factor, saving a key says to set it up, with a way to the Security section; no dialog.
    await fill_key_form(page, "main")
    await key_form.get_by_role("button", name="Save key").click()
    await expect(key_form.get_by_role("alert")).to_contain_text("needs two-factor authentication: set it up first")
    notice = page.get_by_test_id("enrol-notice")
    await expect(notice.get_by_role("link", name="Set up two-factor authentication")).to_have_attribute(
        "href", "/settings#security")
    await expect(page.get_by_role("dialog")).to_have_count(0)
    await expect(keys.get_by_test_id("no-api-keys")).to_be_visible()

    # Set up: the QR code and the secret for typing by hand; a wrong first code is refused, a right one
    # turns it on and shows the ten recovery codes, this once.
    await security.get_by_role("button", name="Set up two-factor authentication").click()
    qr = security.get_by_role("img", name="QR code for your authenticator app")
    await expect(qr).to_be_visible()
    assert await qr.evaluate("(img) => img.complete && img.naturalWidth > 0")
    assert (await qr.get_attribute("src") or "").startswith("data:image/svg+xml;base64,")
    secret = (await security.get_by_test_id("totp-secret").inner_text()).replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    totp = pyotp.TOTP(secret)
    first_code = security.get_by_label("Then enter the 6-digit code the app shows")
    turn_on = security.get_by_role("button", name="Turn on two-factor authentication")
    await first_code.fill(wrong_code(totp))
    await turn_on.click()
    await expect(security.get_by_role("alert")).to_contain_text("wrong code")
    await first_code.fill(totp.now())
    await turn_on.click()
    shown = security.get_by_test_id("recovery-codes")
    await expect(shown.locator("li")).to_have_count(10)
    await expect(shown).to_contain_text("shown only this once")
    recovery = await shown.locator("li").all_inner_texts()
    assert all(re.fullmatch(r"[a-z2-9]{5}-[a-z2-9]{5}", c) for c in recovery) and len(set(recovery)) == 10, recovery
    await expect(security.get_by_test_id("two-factor")).to_have_attribute("data-enabled", "true")
    await expect(security.get_by_test_id("recovery-codes-left")).to_have_text("10")
    # Turning it on took a code: this session is confirmed for a while.
    await expect(security.get_by_test_id("step-up-state")).to_have_text(re.compile(r"^Confirmed until \d\d:\d\d$"))
    await expect(notice).to_have_count(0)
    await security.screenshot(path=str(artifacts / "two-factor-recovery-codes.png"))
    await shown.get_by_role("button", name="I have stored them").click()
    await expect(shown).to_have_count(0)

    # Log out, log in: the password alone gives no tokens; a wrong code is refused, the app's code lets in.
    await page.get_by_role("button", name="Log out").click()
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in", exact=True).click()
    code_step = page.get_by_role("form", name="Two-factor authentication")
    login_code = code_step.get_by_label("Authentication code")
    await expect(login_code).to_be_focused()
    assert await page.evaluate("localStorage.getItem('durabot.tokens')") is None
    await login_code.fill(wrong_code(totp))
    await code_step.get_by_role("button", name="Verify").click()
    await expect(code_step.get_by_role("alert")).to_contain_text("wrong code")
    # The next step's code: the enrolment used this step's, which the server will not take twice.
    await login_code.fill(totp.at(time.time() + 30))
    await code_step.get_by_role("button", name="Verify").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Overview")

    # A login with a code counts as confirmed for a few minutes; a token refresh ends that (as the
    # dashboard's own refresh does when its access token expires).
    tokens = await page.evaluate("JSON.parse(localStorage.getItem('durabot.tokens'))")
    refreshed = await gateway.http.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    tokens = {k: refreshed.json()[k] for k in ("access_token", "refresh_token")}
    await page.evaluate("(t) => localStorage.setItem('durabot.tokens', JSON.stringify(t))", tokens)
    user.headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    await user.goto("/settings", "Settings")
    await expect(security.get_by_test_id("step-up-state")).to_have_text(re.compile("^Not confirmed"))

    # Saving a key now asks for a code. Cancelled: the save fails with the server's reason, nothing stored.
    dialog = page.get_by_role("dialog", name=DIALOG)
    await fill_key_form(page, "main")
    await key_form.get_by_role("button", name="Save key").click()
    await expect(dialog).to_be_visible()
    await expect(dialog.get_by_label("Authentication code")).to_be_focused()
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_have_count(0)
    await expect(key_form.get_by_role("alert")).to_contain_text("needs a two-factor code")
    assert await user.get("/api/settings/api-keys") == []

    # Again: a wrong code is refused in the dialog, which stays; a recovery code confirms, and the save
    # that asked goes through (once) without another click.
    await key_form.get_by_role("button", name="Save key").click()
    await expect(dialog).to_be_visible()
    await dialog.get_by_label("Authentication code").fill(wrong_code(totp))
    await dialog.get_by_role("button", name="Confirm").click()
    await expect(dialog.get_by_role("alert")).to_contain_text("wrong code")
    await dialog.screenshot(path=str(artifacts / "two-factor-step-up-dialog.png"))
    await dialog.get_by_label("Authentication code").fill(recovery[0])
    await dialog.get_by_role("button", name="Confirm").click()
    await expect(dialog).to_have_count(0)
    await expect(key_form.get_by_role("status")).to_have_text(f"Saved main (****{API_KEY[-4:]}).")
    row = keys.get_by_test_id("api-keys").locator("tbody tr")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("main")
    await expect(row.locator("code")).to_have_text(f"****{API_KEY[-4:]}")
    stored = await user.get("/api/settings/api-keys")
    assert [(k["label"], k["api_key_masked"]) for k in stored] == [("main", f"****{API_KEY[-4:]}")], stored
    # The key and secret left the page once saved; the recovery code is spent.
    for field in ("API key", "API secret"):
        await expect(key_form.get_by_label(field, exact=True)).to_have_value("")
    content = await page.content()
    assert API_KEY not in content and API_SECRET not in content
    await expect(security.get_by_test_id("recovery-codes-left")).to_have_text("9")
    await expect(security.get_by_test_id("step-up-state")).to_have_text(re.compile(r"^Confirmed until \d\d:\d\d$"))

    await user.context.close()
    assert unexpected_errors(user) == []


async def test_an_admin_policy_takes_a_user_without_two_factor_to_the_security_section(gateway, browser):
    user = await signed_in(gateway, browser)
    db = gateway.db
    # Only admins must: this test's user is the stack's only admin, so the other tests' users are unaffected.
    await db.users.update_one({"user_id": user.user_id}, {"$set": {"role": "admin"}})
    await db.system_config.update_one({"key": "two_factor_policy"}, {"$set": {"value": "admins"}}, upsert=True)
    try:
        await user.page.goto(gateway.settings.gateway_url + "/")
        await expect(user.page).to_have_url(re.compile(r"/settings#security$"))
        await expect(user.page.get_by_role("heading", level=1)).to_have_text("Settings")
        security = user.page.get_by_role("region", name="Two-factor authentication")
        await expect(security).to_contain_text("An administrator requires two-factor authentication")
        await expect(security.get_by_role("button", name="Set up two-factor authentication")).to_be_enabled()
    finally:
        await db.system_config.update_one({"key": "two_factor_policy"}, {"$set": {"value": "off"}})
    await user.context.close()
    # Until it is set up, every other call (and the live socket) is refused with 403: nothing else fails.
    refused = re.compile(r"(Failed to load resource: .* status of 403|WebSocket connection .* response code: 403)")
    assert [e for e in user.console.errors if not refused.match(e[0])] == []
