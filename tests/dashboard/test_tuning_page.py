"""The Tuning page in Chromium against the real gateway, worker, Temporal and SecantusDB: the session's own
stop-loss exits make the ``stopped_after_running`` rule suggest a lower take profit (YELLOW); proposed on
the page it lands in the approval queue, is approved after the confirmation dialog with the token the page
was shown, and the session's settings change; the cooldown and the audit trail show it. A proposal the
page was shown no token for (an API client's) is approved with a fresh one; a RED one only with its exact
approval text typed; a rejection keeps its reason. No console error.

The candles are crafted and delivered as the market feed delivers them: five long trades, each opened by a
market order at the same price, run 3% in profit (more than 1.5x the 1% stop), then fall through the stop
loss (the 5% trailing stop stays below it). They lie in 2019, after every DASHBTC candle the other tests
store, so a manual fill here takes this test's prices and never one of theirs (and theirs never these,
the trading-desk tests running first).
"""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.conftest import enrol_two_factor
from trading.candle import Candle

from .helpers import User, deliver, signed_in

SYMBOL = "DASHBTC"
PRICE = 0.07
FIRST = 1_546_300_800_000  # 2019-01-01 00:00 UTC
STEP = 300_000
TRADES = 5
# Each trade's high, as a multiple of its entry: a 3.0% run, so the rule proposes exactly 3.0, on the take
# profit's 0.1 grid (a median off it, such as 2.37, is refused when proposed).
RUN = 1.03
SETTINGS = {"market": "spot", "account_currency": "BTC", "leverage": 1, "slippage_bps": 0,
            "stop_loss_pct": 1.0, "trailing_stop_pct": 5.0, "take_profit_pct": 6.0,
            # Only this test's orders trade: no signal entry, no signal exit.
            "min_confidence": 1.0, "close_on_opposite_signal": False}


def candle(index: int, open_: float, high: float, low: float, close: float) -> Candle:
    return Candle(FIRST + index * STEP, open_, high, low, close, 100.0, STEP, SYMBOL)


async def stopped_after_running(user: User, temporal_client) -> None:
    """Five stop-loss exits of trades that first ran 3% in profit, made by the session's engine."""
    await deliver(user, temporal_client, [candle(0, PRICE, PRICE * 1.001, PRICE * 0.999, PRICE)])
    for trade in range(TRADES):
        await user.post("/api/paper-trading/orders", {"symbol": SYMBOL, "side": "long", "order_type": "market",
                                                       "quantity": 1.0})
        ran = candle(1 + 2 * trade, PRICE, PRICE * RUN, PRICE * 0.998, PRICE * 1.02)
        stopped = candle(2 + 2 * trade, PRICE * 1.02, PRICE * 1.02, PRICE * 0.985, PRICE)
        await deliver(user, temporal_client, [ran, stopped])
    closed = [c["trade"] for c in await user.get("/api/paper-trading/trades/closed")]
    assert [(t["close_reason"], t["entry_price"]) for t in closed] == [("stop_loss", PRICE)] * TRADES, closed


async def propose(user: User, changes: dict[str, float]) -> dict:
    """A proposal through the API, as another client makes one (its token is not the page's)."""
    reply = await user.gateway.http.post("/api/tuning/proposals", headers=user.headers,
                                         json={"changes": changes, "reason": "from another client"})
    assert reply.status_code == 201, reply.text
    return reply.json()["proposal"]


async def test_a_suggestion_becomes_a_yellow_proposal_approved_in_the_queue(gateway, browser, temporal_client,
                                                                           artifacts):
    user = await signed_in(gateway, browser)
    page = user.page
    await user.post("/api/paper-trading/start", {"symbols": [SYMBOL], "interval": "5m", "basic": SETTINGS})
    await stopped_after_running(user, temporal_client)
    (suggested,) = await user.get("/api/paper-trading/config-suggestions")
    assert (suggested["parameter"], suggested["tier"], suggested["current"], suggested["proposed"]) == \
        ("take_profit_pct", "YELLOW", 6.0, 3.0), suggested
    writes: list[str] = []
    page.on("request", lambda r: writes.append(f"{r.method} {r.url}") if r.method != "GET" else None)

    await user.goto("/tuning", "Tuning")
    bounds = page.get_by_test_id("tuning-bounds").locator("tr[data-path=take_profit_pct]")
    await expect(bounds).to_contain_text("YELLOW")
    await expect(bounds).to_contain_text("0.2 – 50%")
    suggestion = page.locator('[data-testid="tuning-suggestion"][data-parameter="take_profit_pct"]')
    await expect(suggestion).to_contain_text("Take profit: 6 → 3")
    await expect(suggestion).to_contain_text(suggested["reason"])
    await suggestion.get_by_role("button", name="Propose Take profit").click()
    await expect(page.get_by_test_id("tuning-note")).to_contain_text("(YELLOW) awaits your approval in the queue")
    (awaiting,) = await user.get("/api/tuning/proposals", status="AWAITING")
    number = awaiting["number"]

    # In the queue: its tier, the change by label, why, who proposed it and how long it has left.
    card = page.get_by_test_id(f"proposal-{number}")
    await expect(card).to_have_attribute("data-tier", "YELLOW")
    await expect(card.get_by_test_id("tier")).to_have_text("YELLOW")
    await expect(card).to_contain_text("Take profit: 6 → 3")
    await expect(card).to_contain_text(f"stopped_after_running: {suggested['reason']}")
    await expect(card).to_contain_text("by rule stopped_after_running")
    await expect(card.locator(".countdown")).to_have_text(re.compile(r"^(\d+h )?\d+m \d{2}s$"))
    await expect(card.locator(".countdown")).to_have_attribute("data-until", str(awaiting["expires_at_ms"]))
    await page.screenshot(path=str(artifacts / "tuning-queue-1280.png"), full_page=True)

    # Approving asks first; a cancel sends nothing.
    writes.clear()
    approve = card.get_by_role("button", name=f"Approve #{number}")
    await approve.click()
    dialog = page.get_by_role("dialog", name=f"Approve proposal #{number}?")
    await expect(dialog).to_contain_text("Take profit: 6 → 3")
    await expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    await dialog.get_by_role("button", name="Cancel").click()
    await expect(dialog).to_have_count(0)
    assert writes == [] and (await user.get(f"/api/tuning/proposals/{number}"))["status"] == "AWAITING"
    await approve.click()
    await dialog.get_by_role("button", name=f"Approve #{number}").click()
    await expect(page.get_by_test_id("tuning-note")).to_contain_text(f"Proposal #{number} (YELLOW) applied")
    await expect(card).to_have_count(0)
    await expect(page.get_by_test_id(f"recent-{number}")).to_have_attribute("data-status", "APPLIED")
    # The token the page was shown with the proposal did it: no fresh one was asked for.
    assert [w.split("/api/tuning/")[-1] for w in writes] == [f"proposals/{number}/approve"], writes

    basic = await user.get("/api/paper-trading/basic-settings")
    assert basic["settings"]["take_profit_pct"] == 3.0
    applied = await user.get(f"/api/tuning/proposals/{number}")
    assert (applied["status"], applied["decided_by"], applied["applied_version"]) == \
        ("APPLIED", "dashboard", basic["version"])
    await expect(page.get_by_test_id("tuning-cooldowns").locator("tr[data-path=take_profit_pct]")).to_contain_text(
        "Take profit")
    history = page.get_by_test_id("tuning-history")
    applied_row = history.locator(f'tr[data-action="applied"][data-proposal="{awaiting["proposal_id"]}"]')
    await expect(applied_row).to_contain_text("Take profit: 6 → 3")
    await expect(applied_row).to_contain_text("dashboard")
    # Created, awaiting, applied.
    await expect(history.locator(f'tr[data-proposal="{awaiting["proposal_id"]}"]')).to_have_count(3)

    # A proposal of another client: the page holds no token for it and asks for a fresh one.
    other = (await propose(user, {"trailing_stop_pct": 6.0}))["number"]
    card = page.get_by_test_id(f"proposal-{other}")
    await expect(card).to_contain_text("Trailing stop: 5 → 6")  # arrived by its TuningUpdate
    writes.clear()
    await card.get_by_role("button", name=f"Approve #{other}").click()
    await page.get_by_role("dialog").get_by_role("button", name=f"Approve #{other}").click()
    await expect(page.get_by_test_id(f"recent-{other}")).to_have_attribute("data-status", "APPLIED")
    assert [w.split("/api/tuning/")[-1] for w in writes] == [f"proposals/{other}/token", f"proposals/{other}/approve"]
    assert (await user.get("/api/paper-trading/basic-settings"))["settings"]["trailing_stop_pct"] == 6.0

    # RED: Approve is enabled only by the exact approval text (and needs two-factor, here just turned on, so
    # the session is stepped up). A rejection is recorded with its reason.
    await enrol_two_factor(gateway.http, user.headers)
    red = await propose(user, {"risk.risk_per_trade_pct": 1.5})
    yellow = await propose(user, {"stop_loss_pct": 2.0})
    card = page.get_by_test_id(f"proposal-{red['number']}")
    await expect(card).to_have_attribute("data-tier", "RED")
    approve = card.get_by_role("button", name=f"Approve #{red['number']}")
    typed = card.get_by_label(re.compile("^Type exactly"))
    for near_miss in ("", red["approval_text"].lower(), red["approval_text"] + " "):
        await typed.fill(near_miss)
        await expect(approve).to_be_disabled()
    await typed.fill(red["approval_text"])
    await expect(approve).to_be_enabled()
    await approve.click()
    await expect(page.get_by_test_id(f"recent-{red['number']}")).to_have_attribute("data-status", "APPLIED")
    card = page.get_by_test_id(f"proposal-{yellow['number']}")
    await card.get_by_label(f"Reason to reject #{yellow['number']} (optional)").fill("too wide")
    await card.get_by_role("button", name=f"Reject #{yellow['number']}").click()
    await expect(page.get_by_test_id(f"recent-{yellow['number']}")).to_have_attribute("data-status", "REJECTED")
    rejected_row = history.locator(f'tr[data-action="rejected"][data-proposal="{yellow["proposal_id"]}"]')
    await expect(rejected_row).to_contain_text("too wide")
    basic = (await user.get("/api/paper-trading/basic-settings"))["settings"]
    assert (basic["risk"]["risk_per_trade_pct"], basic["stop_loss_pct"]) == (1.5, 1.0)

    await user.context.close()
    assert user.console.errors == []
