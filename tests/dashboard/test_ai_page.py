"""The AI page in Chromium against the real gateway, trading and ai workers, Temporal, SecantusDB and the
sim xAI API (Grok): an analysis of the latest stored BTCUSDT candle shows Grok's reasoning and key levels,
the recent answers and today's spend; the chat answers "What is my balance?" from this user's own
portfolio (the get_portfolio tool) and sends the conversation's earlier turns with the next question;
during an outage of Grok an analysis of a new candle falls back to the technical consensus, says why,
and the page shows the breaker open. No console error.

The candles are real BTCUSDT 5m candles of January 2023, the ones test_dashboard.py feeds (identical
candles are stored once); the new question of the outage is the candle after the newest one stored."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import expect

from activities.market_store import last_open_time, store_candles

from .conftest import TEST_FEED
from .helpers import PHONE, candles, js_number, signed_in

SYMBOL = "BTCUSDT"
DATASET = "BTCUSDT-5m-2023-01.csv.gz"
WARM = 300  # candles stored before the first analysis: every indicator is defined by then
BALANCE = 4321.5  # this user's starting cash, which only their own portfolio tool can report
ANALYSIS_TIMEOUT = 15_000  # ms: Grok's answer, or three failed attempts and the fallback


async def sim_faults(sim_xai, path: str, body: dict | None = None) -> None:
    async with httpx.AsyncClient() as http:
        reply = await http.post(f"http://127.0.0.1:{sim_xai.port}{path}", json=body)
        assert reply.status_code == 200, reply.text


async def store_next_candle(db) -> int:
    """Store the candle after the newest one stored (a new question for Grok); its open time."""
    newest = await last_open_time(db, SYMBOL, "5m")
    following = next(c for c in candles(DATASET) if newest is None or c.open_time > newest)
    await store_candles(db, [following], "5m", TEST_FEED)
    return following.open_time


async def test_the_ai_page_analyses_chats_and_marks_the_fallback_during_an_outage(gateway, browser, sim_xai,
                                                                                  artifacts):
    user = await signed_in(gateway, browser)
    page = user.page
    await user.post("/api/paper-trading/start", {"symbols": [SYMBOL], "interval": "5m",
                                                 "basic": {"starting_balance": BALANCE}})
    await store_candles(gateway.db, candles(DATASET)[:WARM], "5m", TEST_FEED)
    latest = await last_open_time(gateway.db, SYMBOL, "5m")

    await user.goto("/ai", "AI")
    breaker = page.get_by_test_id("ai-breaker")
    await expect(breaker).to_have_attribute("data-state", "closed")
    # The session's symbol is analysed by default, at 5m.
    form = page.get_by_role("form", name="Analyze a symbol")
    await expect(form.get_by_label("Symbol")).to_have_value(SYMBOL)
    await expect(form.get_by_label("Interval")).to_have_value("5m")

    # Grok answers: its direction, reasoning and key levels; no fallback marker.
    await form.get_by_role("button", name="Analyze").click()
    analysis = page.get_by_test_id("ai-analysis")
    await expect(analysis).to_have_attribute("data-source", "grok", timeout=ANALYSIS_TIMEOUT)
    await expect(analysis).to_have_attribute("data-open-time", str(latest))
    await expect(page.get_by_test_id("ai-fallback")).to_have_count(0)
    (answer,) = await user.get(f"/api/ai/signals/{SYMBOL}", interval="5m")
    assert answer["open_time"] == latest, answer
    await expect(analysis).to_have_attribute("data-signal", answer["answer"]["direction"])
    await expect(analysis.get_by_test_id("ai-reasoning")).to_have_text(answer["answer"]["reasoning"])
    assert answer["answer"]["reasoning"] and answer["answer"]["key_levels"]["support"], answer
    await expect(analysis.get_by_test_id("ai-support")).not_to_have_text("—")
    await expect(analysis.get_by_test_id("ai-horizon")).to_have_text(answer["answer"]["horizon"])
    # The recent answers list it; the spend shows this call's cost against the budgets.
    recent = page.get_by_test_id("ai-signal")
    await expect(recent).to_have_count(1)
    await expect(recent.first).to_have_attribute("data-open-time", str(latest))
    usage = await user.get("/api/ai/usage")
    assert usage["user"]["calls"] == 1 and usage["user"]["cost_usd"] > 0, usage
    spend = page.get_by_test_id("ai-usage")
    await expect(spend).to_have_attribute("data-user-cost", js_number(usage["user"]["cost_usd"]))
    await expect(page.get_by_test_id("ai-usage-user")).to_contain_text(f"of ${usage['user']['budget_usd']:.2f}")
    await expect(page.get_by_test_id("ai-usage-global")).to_contain_text(f"of ${usage['global']['budget_usd']:.2f}")

    # The chat answers from this user's portfolio, and names the tool it used.
    chat_input = page.get_by_test_id("ai-chat-input")
    await chat_input.fill("What is my balance?")
    async with page.expect_response(lambda r: r.url.endswith("/api/ai/chat"), timeout=ANALYSIS_TIMEOUT) as answered:
        await page.get_by_role("button", name="Send").click()
    first_answer = (await (await answered.value).json())["answer"]
    reply = page.get_by_test_id("ai-chat-answer")
    await expect(reply).to_have_text([f"Grok: {first_answer}"])
    await expect(reply).to_contain_text("Based on get_portfolio")
    await expect(reply).to_contain_text(f"cash={js_number(BALANCE)}")
    tool = page.get_by_test_id("ai-chat-turn").first.get_by_test_id("ai-chat-tool")
    await expect(tool).to_have_attribute("data-name", "get_portfolio")
    await expect(tool).to_have_attribute("data-ok", "true")
    # The next question carries the conversation so far.
    await chat_input.fill("Thanks!")
    async with page.expect_request(lambda r: r.url.endswith("/api/ai/chat")) as sent:
        await page.get_by_role("button", name="Send").click()
    assert (await sent.value).post_data_json == {"message": "Thanks!", "history": [
        {"role": "user", "content": "What is my balance?"}, {"role": "assistant", "content": first_answer}]}
    await expect(reply).to_have_count(2, timeout=ANALYSIS_TIMEOUT)

    # Grok is down: an analysis of a new candle falls back to the technical consensus and says why.
    await sim_faults(sim_xai, "/sim/faults", {"down": True})
    try:
        newer = await store_next_candle(gateway.db)
        await form.get_by_role("button", name="Analyze").click()
        await expect(analysis).to_have_attribute("data-open-time", str(newer), timeout=ANALYSIS_TIMEOUT)
        await expect(analysis).to_have_attribute("data-source", "technical")
        fallback = page.get_by_test_id("ai-fallback")
        await expect(fallback).to_have_attribute("data-reason", re.compile(r"^(unavailable|breaker_open)$"))
        await expect(fallback).to_contain_text(re.compile(r"^Fallback: (unavailable|breaker_open) — \S"))
        await expect(analysis.get_by_test_id("ai-reasoning")).to_have_count(0)
        await expect(analysis.get_by_test_id("ai-technical")).to_contain_text("Technical consensus: ")
        # Two failed calls in a row opened the breaker; the page says so after the analysis.
        await expect(breaker).to_have_attribute("data-state", "open")
        await expect(breaker).to_contain_text("open after ")
        # Nothing new from Grok: the recent answers are the one above.
        await expect(recent).to_have_count(1)
    finally:
        await sim_faults(sim_xai, "/sim/faults/reset")

    await page.screenshot(path=str(artifacts / "ai-page-1280.png"), full_page=True)
    await page.set_viewport_size(PHONE)
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the AI page scrolls sideways by {overflow}px at 390px"
    await page.screenshot(path=str(artifacts / "ai-page-390.png"), full_page=True)
    await user.context.close()
    assert user.console.errors == []
