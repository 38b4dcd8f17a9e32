"""Agent access in Chromium against the real gateway: an MCP app's authorization request lands on the
consent page, which names the app and where its code goes; the person picks a lower tier and a lifetime,
approves, enters a code in the step-up dialog, and the browser returns to the app with its code (redeemed
here with PKCE for a token of that tier). In the settings, the Agent access card lists that grant; a new
agent token is shown once with the MCP URL and works on the MCP server until it is revoked there.

The only console errors are the 403 the step-up provokes on purpose."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

from playwright.async_api import Route, expect

from tests.conftest import enrol_two_factor, free_port
from tests.mcp.conftest import raw_call

from .helpers import User, signed_in

PROVOKED = re.compile(r"Failed to load resource: the server responded with a status of 403")
APP = "Inspector (test)"


async def new_login_session(user: User) -> None:
    """Fresh tokens (a refresh ends the step-up), in the page and for the API calls."""
    tokens = await user.page.evaluate("JSON.parse(localStorage.getItem('durabot.tokens'))")
    refreshed = await user.gateway.http.post("/api/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    tokens = {k: refreshed.json()[k] for k in ("access_token", "refresh_token")}
    await user.page.evaluate("(t) => localStorage.setItem('durabot.tokens', JSON.stringify(t))", tokens)
    user.headers = {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_approve_an_app_on_the_consent_page_then_mint_and_revoke_a_token(gateway, browser, artifacts):
    user = await signed_in(gateway, browser)
    totp = await enrol_two_factor(gateway.http, user.headers)
    await new_login_session(user)
    page, base, mcp_url = user.page, gateway.settings.gateway_url, gateway.settings.mcp_url

    # The app registers and sends the browser to /oauth/authorize; its redirect URI is answered here.
    callback = f"http://127.0.0.1:{free_port()}/callback"
    registered = await gateway.bare.post("/oauth/register", json={"client_name": APP, "redirect_uris": [callback]})
    assert registered.status_code == 201, registered.text
    client_id = registered.json()["client_id"]
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")

    async def back_in_the_app(route: Route) -> None:
        await route.fulfill(status=200, content_type="text/plain", body="back in the app")

    await user.context.route(f"{callback}**", back_in_the_app)
    await page.goto(f"{base}/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": callback, "state": "app-state",
        "code_challenge": challenge, "code_challenge_method": "S256", "resource": mcp_url,
        "scope": "mcp:public mcp:authenticated mcp:sensitive mcp:critical"}))

    # The consent page: who asks, where the code goes; sensitive preselected (critical never is).
    await expect(page.get_by_role("heading", level=1)).to_have_text("Authorize an app")
    await expect(page.get_by_test_id("consent-client")).to_have_text(APP)
    await expect(page.get_by_test_id("consent-redirect")).to_have_text(urlsplit(callback).netloc)
    await expect(page.get_by_role("radio", name="Sensitive")).to_be_checked()
    await expect(page.get_by_role("radio")).to_have_count(4)
    await page.get_by_role("radio", name="Authenticated").check()
    await expect(page.get_by_test_id("tier-reach")).to_contain_text("reads your account")
    await page.get_by_label("Access lasts").select_option("7")
    await page.screenshot(path=str(artifacts / "oauth-consent-page.png"), full_page=True)

    # Approving needs a fresh code: the step-up dialog, then the browser goes back to the app.
    await page.get_by_role("button", name="Approve").click()
    step_up = page.get_by_role("dialog", name="Confirm with your authentication code")
    await step_up.get_by_label("Authentication code").fill(totp.recovery[0])
    await step_up.get_by_role("button", name="Confirm").click()
    await page.wait_for_url(re.compile(re.escape(callback) + r"\?"))
    answer = {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}
    assert answer["state"] == "app-state" and answer["iss"] == base
    redeemed = await gateway.bare.post("/oauth/token", data={
        "grant_type": "authorization_code", "code": answer["code"], "redirect_uri": callback, "client_id": client_id,
        "code_verifier": verifier, "resource": mcp_url})
    assert redeemed.status_code == 200, redeemed.text
    assert redeemed.json()["scope"] == "mcp:public mcp:authenticated"
    assert 6 * 86_400 < redeemed.json()["expires_in"] <= 7 * 86_400

    # The settings' Agent access card lists the app's grant …
    await user.goto("/settings", "Settings")
    card = page.get_by_role("region", name="Agent access (MCP)")
    rows = card.get_by_test_id("agent-grants").locator("tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text(APP)
    await expect(rows.first).to_contain_text("OAuth app")
    await expect(rows.first).to_have_attribute("data-state", "active")

    # … and mints an agent token (this session is confirmed now: no dialog), shown once with the MCP URL.
    form = card.get_by_role("form", name="Create an agent token")
    await form.get_by_label("Label").fill("my laptop")
    await form.get_by_label("Highest tier").select_option("sensitive")
    await form.get_by_role("button", name="Create token").click()
    minted = card.get_by_test_id("minted-agent-token")
    await expect(minted.get_by_test_id("mcp-url")).to_have_text(mcp_url)
    token = (await minted.get_by_test_id("agent-token").text_content() or "").strip()
    assert (await raw_call(mcp_url, token, "ping")).status_code == 200
    await minted.screenshot(path=str(artifacts / "agent-token-minted.png"))
    await minted.get_by_role("button", name="I have stored it").click()
    await expect(card.get_by_test_id("agent-token")).to_have_count(0)
    await expect(rows).to_have_count(2)

    # Revoking it (after a confirmation) stops the token at once.
    row = rows.filter(has_text="my laptop")
    await row.get_by_role("button", name="Revoke my laptop").click()
    await page.get_by_role("dialog", name="Revoke “my laptop”?").get_by_role("button", name="Revoke my laptop").click()
    await expect(row).to_have_attribute("data-state", "revoked")
    assert (await raw_call(mcp_url, token, "ping")).status_code == 401
    await card.screenshot(path=str(artifacts / "agent-access-card.png"))
    assert [e for e in user.console.errors if not (PROVOKED.match(e[0]) and "/api/oauth/consent/" in e[1])] == []
