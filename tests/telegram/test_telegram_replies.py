"""How the bot's answers reach Telegram, against the Bot API stand-in's own limits: a long table is split
into messages Telegram accepts (each within 4,096 characters after entity parsing, every <pre> block
closed), a 429 is waited out as its retry_after says, and a person who blocked the bot costs no crash;
and the periods of /daily, /weekly and /monthly across month and year ends."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx

from gateway.telegram.bot import build_bot
from gateway.telegram.format import MAX_MESSAGE, table, units
from gateway.telegram.periods import profits
from gateway.telegram.replies import send
from services.telegram_links import SIM_DEFAULT_TOKEN
from sim.telegram.config import DEFAULT_TOKEN


def test_the_services_know_the_sims_default_token() -> None:
    assert SIM_DEFAULT_TOKEN == DEFAULT_TOKEN


async def test_long_answers_are_split_and_paced_as_telegram_requires(start_sim_telegram, settings) -> None:
    sim = await start_sim_telegram()
    bot = build_bot(settings.model_copy(update={"telegram_api_url": sim.url}), sim.token)
    try:
        async with httpx.AsyncClient(base_url=sim.url) as http:
            assert (await http.post("/sim/users", json={"user_id": 4242, "first_name": "Pat"})).status_code == 200
            # A bot cannot start a conversation: the person opens the chat first.
            assert (await http.post("/sim/chats/4242/messages", json={"user_id": 4242, "text": "/start"})).is_success
            rows = [[str(i), "BTCUSDT", "L", f"{i * 1.5:+.2f}", "12-10 15:25"] for i in range(1, 601)]
            text = "<b>🧾 Trades</b>\n" + table(["ID", "SYMBOL", "S", "NET", "EXIT"], rows) + "\nthe end ✅"
            assert units(text) > 3 * MAX_MESSAGE
            sent = await send(bot, 4242, text)
            chat = [m for m in (await http.get("/sim/chats/4242/messages")).json() if m["from"] == "bot"]
            assert len(sent) == len(chat) >= 4
            shown = "\n".join(m["text"] for m in chat)
            ids = [line.split()[0] for line in shown.splitlines() if "BTCUSDT" in line]
            assert ids == [str(i) for i in range(1, 601)] and shown.endswith("the end ✅"), shown[-300:]
            assert all(units(m["text"]) <= MAX_MESSAGE for m in chat)
            assert all(any(e["type"] == "pre" for e in m["entities"]) for m in chat)

            # A 429: the reply waits retry_after seconds and is then delivered, once.
            await http.post("/sim/faults", json={"method": "sendMessage", "kind": "too_many_requests", "count": 1,
                                                 "retry_after": 1})
            started = time.monotonic()
            [late] = await send(bot, 4242, "after a pause")
            assert time.monotonic() - started >= 1.0 and late.text == "after a pause"
            assert [m["text"] for m in (await http.get("/sim/chats/4242/messages")).json()][-1] == "after a pause"

            # Blocked: nothing delivered, nothing raised.
            await http.post("/sim/users/4242/blocked", json={"blocked": True})
            assert await send(bot, 4242, "anyone there?") == []
    finally:
        await bot.session.close()


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)


def test_periods_carry_equity_across_month_and_year_ends() -> None:
    points = [{"time": ms(2025, 12, 30, 10), "equity": 10_100.0},
              {"time": ms(2025, 12, 31, 23, 55), "equity": 10_050.0},
              {"time": ms(2026, 1, 1, 0, 5), "equity": 10_200.0}, {"time": ms(2026, 1, 2, 12), "equity": 10_150.0}]
    exits = [ms(2025, 12, 31, 23, 55), ms(2026, 1, 1, 0, 5), ms(2026, 1, 1, 0, 6)]
    days = profits(points, exits, 10_000.0, ms(2026, 1, 2, 12), "day", 4)
    assert [(d.start.date().isoformat(), round(d.profit, 2), d.trades) for d in days] == [
        ("2026-01-02", -50.0, 0), ("2026-01-01", 150.0, 2), ("2025-12-31", -50.0, 1), ("2025-12-30", 100.0, 0)]
    assert days[1].profit_pct == 150.0 / 10_050.0 * 100
    months = profits(points, exits, 10_000.0, ms(2026, 1, 2, 12), "month", 3)
    assert [(m.start.strftime("%Y-%m"), m.profit, m.trades) for m in months] == [
        ("2026-01", 100.0, 2), ("2025-12", 50.0, 1), ("2025-11", 0.0, 0)]
    weeks = profits(points, exits, 10_000.0, ms(2026, 1, 2, 12), "week", 2)
    assert [w.start.date().isoformat() for w in weeks] == ["2025-12-29", "2025-12-22"]  # Mondays
    assert weeks[0].profit == 150.0 and weeks[0].trades == 3

