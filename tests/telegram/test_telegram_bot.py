"""The Telegram bot over real HTTP against the Bot API stand-in (sim/telegram), with the real gateway,
workers of every role, the sim exchange and sim xAI: linking with a one-time code from the REST route,
who is obeyed (the linked Telegram user, in the linked chat, nobody else, each refusal audited), every
command answering with the session's own figures, writes acting once per update, and a bot restarted
at any point answering no update twice."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiogram.types import Update
from pydantic import SecretStr

from gateway.telegram.commands import COMMANDS
from gateway.telegram.format import money, pct
from tests.sim.conftest import sim_state
from tests.telegram.conftest import (
    Chat,
    link_code,
    linked,
    new_person,
    new_tg_user,
    wait_for_replies,
)
from worker.main import start_market_feed

P = "/api/paper-trading"
SYMBOL = "BTCUSDT"
SERVED, REPLAYED = 560, 20
GROUP = -1001234567


@pytest.fixture
async def xai(start_sim_xai) -> Any:
    return await start_sim_xai()


@pytest.fixture
async def tg_exchange(start_sim) -> Any:
    # The feed replays the last REPLAYED candles to the session, so its market clock is the market's.
    return await start_sim(max_candles_per_series=SERVED, start_offset_candles=SERVED - REPLAYED)


@pytest.fixture
def tg_settings(tg_settings, xai, tg_exchange):
    # The feed follows the sim on its own source and is started by the test, after the session subscribed.
    return tg_settings.model_copy(update={
        "xai_base_url": xai.base_url, "xai_api_key": SecretStr("xai-test-key-0123"), "ai_retry_initial_s": 0.05,
        "exchange_ws_url": tg_exchange.ws_url, "feed_streams": f"{SYMBOL}@5m", "feed_backfill_candles": SERVED,
        "feed_source": f"test-{uuid.uuid4().hex[:8]}", "feed_autostart": False})


async def audits(gateway: Any, action: str) -> list[dict[str, Any]]:
    return await gateway.db.audit_logs.find({"action": action}, {"_id": 0}).sort("at", 1).to_list()


async def sim_requests(sim_http: httpx.AsyncClient, method: str) -> list[dict[str, Any]]:
    reply = await sim_http.get("/sim/requests")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    rows = body if isinstance(body, list) else body.get("requests", [])
    return [r for r in rows if r.get("method") == method]


async def link_status(gateway: Any, person: Any) -> dict[str, Any]:
    reply = await gateway.http.get("/api/telegram", headers=person.headers)
    assert reply.status_code == 200, reply.text
    return reply.json()


# -- linking and who is obeyed -----------------------------------------------------------------------------
async def test_linking_and_who_the_bot_obeys(tg_gateway, bot_process, sim_http, tg_sim) -> None:
    gw = tg_gateway
    await bot_process.start()
    commands = await sim_requests(sim_http, "setMyCommands")
    assert commands and [c["command"] for c in commands[-1]["params"]["commands"]] == [c[0] for c in COMMANDS]

    alice = await new_person(gw)
    alice_tg = await new_tg_user(sim_http, "Alice", "alice_t")
    before = await link_status(gw, alice)
    assert before["linked"] is False and before["bot_configured"] is True
    assert before["bot_username"] == tg_sim.config.bot_username

    # /start alone only greets; a wrong code is refused and audited without naming anyone.
    assert "To link" in await alice_tg.ask("/start")
    assert "not valid" in await alice_tg.ask("/start NotARealCode123")
    [wrong] = await audits(gw, "telegram_link_refused")
    assert wrong["details"]["why"] == "wrong_code" and wrong["user_id"] is None
    assert wrong["details"]["telegram_user_id"] == alice_tg.user_id

    # An expired code is refused (and audited under its owner).
    first = await link_code(gw, alice)
    assert first["deep_link"] == f"https://t.me/{tg_sim.config.bot_username}?start={first['code']}"
    expires = datetime.fromisoformat(first["expires_at"].replace("Z", "+00:00"))
    assert timedelta(seconds=590) < expires - datetime.now(UTC) <= timedelta(seconds=600)
    stored = await gw.db.telegram_link_codes.find_one({"user_id": alice.user_id})
    assert first["code"] not in str(stored), "the code itself is stored"
    await gw.db.telegram_link_codes.update_one(
        {"user_id": alice.user_id}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}})
    assert "expired" in await alice_tg.ask(first["start_command"])
    assert (await link_status(gw, alice))["linked"] is False

    # A fresh code links; the same code again is refused as used.
    await linked(gw, alice, alice_tg)
    status = await link_status(gw, alice)
    assert (status["linked"], status["telegram_user_id"], status["telegram_username"], status["mode"]) == (
        True, alice_tg.user_id, "alice_t", "paper")
    code = await link_code(gw, alice)
    await alice_tg.ask(code["start_command"])  # re-links the same account (the link is replaced)
    assert "used already" in await alice_tg.ask(code["start_command"])
    whys = [a["details"]["why"] for a in await audits(gw, "telegram_link_refused")]
    assert whys == ["wrong_code", "expired_code", "reused_code"]
    assert [a["user_id"] for a in await audits(gw, "telegram_link_refused")][1:] == [alice.user_id] * 2
    assert "Status" in await alice_tg.ask("/status")

    # A stranger is refused politely, and audited.
    bob_tg = await new_tg_user(sim_http, "Bob")
    assert "only take commands" in await bob_tg.ask("/balance")
    [stranger] = await audits(gw, "telegram_refused")
    assert (stranger["user_id"], stranger["details"]["why"], stranger["details"]["command"]) == (
        None, "not_linked", "/balance")

    # Carol links in a group chat: there, only she is obeyed — by user ID, whoever else types or presses.
    carol = await new_person(gw)
    carol_tg = await new_tg_user(sim_http, "Carol", "carol_t")
    await linked(gw, carol, carol_tg, GROUP)
    assert "Count" in await carol_tg.ask("/count", GROUP)
    assert "only take commands" in await bob_tg.ask("/balance", GROUP)
    assert "only take commands" in await carol_tg.ask("/count")  # her private chat is not the linked one
    refused = await audits(gw, "telegram_refused")
    assert [(a["user_id"], a["details"]["why"], a["details"]["chat_id"]) for a in refused[1:]] == [
        (carol.user_id, "not_linked", GROUP), (carol.user_id, "other_chat", carol_tg.user_id)]

    # Buttons: Bob pressing Carol's mode button changes nothing; Carol's press switches the mode.
    sent = await carol_tg.send("/mode", GROUP)
    [keyboard] = await wait_for_replies(Chat(sim_http, GROUP), sent["message_id"])
    assert keyboard["reply_markup"]["inline_keyboard"][0][1]["callback_data"] == "mode:real"
    pressed = await bob_tg.press(GROUP, keyboard["message_id"], "mode:real")
    answered = await wait_for_callback_answer(sim_http, pressed["callback_query_id"])
    assert answered["show_alert"] is True and "Not yours" in answered["text"]
    assert (await link_status(gw, carol))["mode"] == "paper"
    pressed = await carol_tg.press(GROUP, keyboard["message_id"], "mode:real")
    await wait_for_callback_answer(sim_http, pressed["callback_query_id"])
    assert (await link_status(gw, carol))["mode"] == "real"
    edited = [m for m in await Chat(sim_http, GROUP).messages() if m["message_id"] == keyboard["message_id"]][0]
    assert "real" in edited["text"] and edited["edits"], edited
    assert "paper" in await carol_tg.ask("/mode paper", GROUP)
    assert (await link_status(gw, carol))["mode"] == "paper"

    # Unlinking from Telegram and from the dashboard: the bot stops obeying at once.
    assert "Unlinked" in await alice_tg.ask("/unlink")
    assert (await link_status(gw, alice))["linked"] is False
    assert "only take commands" in await alice_tg.ask("/status")
    reply = await gw.http.delete("/api/telegram/link", headers=carol.headers)
    assert reply.status_code == 200 and reply.json()["linked"] is False
    assert "only take commands" in await carol_tg.ask("/count", GROUP)
    unlinked = await audits(gw, "telegram_unlinked")
    assert [(a["user_id"], a["details"]["by"]) for a in unlinked] == [(alice.user_id, "telegram"),
                                                                       (carol.user_id, "dashboard")]
    assert len(await audits(gw, "telegram_linked")) == 3


async def wait_for_callback_answer(sim_http: httpx.AsyncClient, query_id: str) -> dict[str, Any]:
    for _ in range(200):
        found = [a for a in (await sim_http.get("/sim/callback_answers")).json()
                 if a["callback_query_id"] == query_id]
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"callback {query_id} was not answered")


# -- the commands ------------------------------------------------------------------------------------------
async def replayed(settings: Any, exchange: Any, temporal_client: Any, status: Any) -> dict[str, Any]:
    """Run the market feed until the session processed every candle the sim served; its status then."""
    feed = await start_market_feed(temporal_client, settings)
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            sim = await sim_state(exchange)
            last = max(x["last_closed_open_time"] for x in sim["series"] if x["market"] == "spot")
            found = await status()
            served = all(x["closed_candles"] >= SERVED - 1 for x in sim["series"] if x["market"] == "spot")
            if served and found["last_open_time"].get(f"{SYMBOL}@5m", 0) >= last - 300_000 and found["queued"] == 0:
                return found
            assert asyncio.get_running_loop().time() < deadline, (sim, found)
            await asyncio.sleep(0.25)
    finally:
        await feed.terminate("test over")


def period_figures(points: list[dict[str, Any]], exits: list[int], begin: datetime, end: datetime) -> tuple[float,
                                                                                                            float, int]:
    """Equity at the period's start and end (the starting balance before any point), and trades closed in it."""
    def equity_before(moment: datetime) -> float:
        before = [p["equity"] for p in points if p["time"] < moment.timestamp() * 1000]
        return before[-1] if before else 10_000.0

    count = sum(1 for t in exits if begin.timestamp() * 1000 <= t < end.timestamp() * 1000)
    return equity_before(begin), equity_before(end), count


async def test_every_command_answers_with_the_session_figures(tg_settings, tg_exchange, temporal_client, tg_gateway,
                                                              bot_process, sim_http) -> None:
    gw = tg_gateway
    await bot_process.start()
    alice = await new_person(gw)
    tg = await new_tg_user(sim_http, "Alice")
    await linked(gw, alice, tg)

    async def rest(path: str, **params: Any) -> Any:
        reply = await gw.http.get(P + path, headers=alice.headers, params=params)
        assert reply.status_code == 200, reply.text
        return reply.json()

    # Trading through the bot: start on the replayed candles, then a long closed by ID, a short closed by
    # "all", and a long left open.
    assert "started" in await tg.ask("/startbot")
    assert (await rest("/status"))["status"] == "running"
    await replayed(tg_settings, tg_exchange, temporal_client, lambda: rest("/status"))
    assert "Closed" in await tg.ask("/forceexit all") or not await rest("/trades/open")
    assert "filled" in await tg.ask(f"/forcelong {SYMBOL} 0.01")
    [first] = await rest("/trades/open")
    assert f"Closed #{first['trade_id']}" in await tg.ask(f"/forceexit {first['trade_id']}")
    assert "filled" in await tg.ask("/forceshort btcusdt 0.02")
    [second] = await rest("/trades/open")
    assert f"#{second['trade_id']}" in await tg.ask("/forceexit all")
    assert "filled" in await tg.ask(f"/forcelong {SYMBOL} 0.01")
    [still_open] = await rest("/trades/open")
    closed = await rest("/trades/closed", limit=500)
    assert {first["trade_id"], second["trade_id"]} <= {c["trade_id"] for c in closed}
    portfolio = await rest("/portfolio")
    account = portfolio["account"]
    status = await rest("/status")
    assert status["market_time"] > 0

    shown = await tg.ask("/status")
    assert str(still_open["trade_id"]) in shown and SYMBOL in shown and "running" in shown
    assert money(account["equity"]) in shown

    trades = await tg.ask("/trades")
    for row in closed[:10]:
        assert money(row["trade"]["net_pnl"], signed=True) in trades and str(row["trade_id"]) in trades
    realised = sum(row["trade"]["net_pnl"] for row in closed)

    profit = await tg.ask("/profit")
    assert re.search(rf"Closed trades\s+{len(closed)}\n", profit) and money(realised, signed=True) in profit
    assert money(account["equity"]) in profit and money(account["fees_paid"]) in profit

    balance = await tg.ask("/balance")
    for key in ("cash", "equity", "margin_in_use", "available"):
        assert money(account[key]) in balance, (key, balance)

    points = await rest("/equity-history")
    exits = [row["trade"]["exit_time"] for row in closed]
    day = datetime.fromtimestamp(status["market_time"] / 1000, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    week = day - timedelta(days=day.weekday())
    for command, begin, end, label_ in (
            ("/daily", day, day + timedelta(days=1), day.strftime("%Y-%m-%d")),
            ("/weekly", week, week + timedelta(days=7), week.strftime("%Y-%m-%d")),
            ("/monthly", month, (month + timedelta(days=32)).replace(day=1), month.strftime("%Y-%m"))):
        opening, closing, count = period_figures(points, exits, begin, end)
        table = await tg.ask(command)
        [row] = [line for line in table.splitlines() if line.startswith(label_)]
        expected = [label_, money(closing - opening, signed=True), pct((closing - opening) / opening * 100), str(count)]
        assert row.split() == expected, (command, table)
    assert count > 0 and len([line for line in (await tg.ask("/daily 3")).splitlines() if line[:2] == "20"]) == 3

    performance = await tg.ask("/performance")
    [row] = [line for line in performance.splitlines() if line.startswith(SYMBOL)]
    assert row.split()[:3] == [SYMBOL, money(realised, signed=True), str(len(closed))]
    assert "1 / 1" in await tg.ask("/count")
    config = await tg.ask("/show_config")
    assert "10x" in config and SYMBOL in config
    assert "No tuning proposals" in await tg.ask("/approvals")
    assert "Durabot 0.1.0" in await tg.ask("/version")
    listed = await tg.ask("/help")
    assert all(f"/{name}" in listed for name, _, _ in COMMANDS)

    # Grok over the person's own data.
    assert "cash=" in await tg.ask("/ask What is my balance and equity right now?")

    # Bad arguments and refusals answer in words, and change nothing.
    assert "Refused (n)" in await tg.ask("/trades 0")
    assert "no open trade" in await tg.ask("/forceexit 999999")
    assert "Refused (symbol)" in await tg.ask("/forcelong BTC/USDT 1")
    assert "Refused (quantity)" in await tg.ask(f"/forcelong {SYMBOL} -1")
    assert "Usage" in await tg.ask("/forcelong")
    assert "did not understand" in await tg.ask("hello bot")
    assert await rest("/trades/open") == [still_open]

    # Stop; /stopentry explains the paper session's stop is already that.
    assert "stopped" in await tg.ask("/stop")
    assert (await rest("/status"))["status"] == "stopped"
    assert "/stop is exactly that" in await tg.ask("/stopentry")

    # Real mode: what needs a two-factor step-up points to the dashboard; the session is read as it is.
    assert "real" in await tg.ask("/mode real")
    assert "dashboard" in await tg.ask("/startbot")
    assert "Status (real)" in await tg.ask("/status")
    assert "dashboard" in await tg.ask("/profit")
    real_order = await tg.ask(f"/forcelong {SYMBOL} 0.01")
    assert "key" in real_order.lower(), real_order  # no API key saved: nothing can be requested
    assert await gw.db.real_orders.count_documents({"user_id": alice.user_id}) == 0

    # Every answer fitted one message or was split to fit.
    for sent in await sim_requests(sim_http, "sendMessage"):
        assert sent.get("status", 200) == 200, sent


# -- once per update, whatever the restarts ----------------------------------------------------------------
async def test_forceexit_acts_once_and_a_restarted_bot_answers_no_update_twice(tg_gateway, bot_process, sim_http,
                                                                              tg_settings) -> None:
    gw = tg_gateway
    token = tg_settings.telegram_bot_token.get_secret_value()
    bot_id = int(token.split(":")[0])
    await bot_process.start()
    alice = await new_person(gw)
    tg = await new_tg_user(sim_http, "Alice")
    await linked(gw, alice, tg)
    assert "started" in await tg.ask("/startbot")
    assert "filled" in await tg.ask(f"/forcelong {SYMBOL} 0.01")
    [position] = (await gw.http.get(P + "/trades/open", headers=alice.headers)).json()

    # The bot is down when /forceexit arrives; the same update is then delivered twice at once.
    await bot_process.stop()
    sent = await tg.send(f"/forceexit {position['trade_id']}")
    pending = (await sim_http.get(f"/bot{token}/getUpdates", params={"timeout": 0})).json()["result"]
    [raw] = [u for u in pending if u["update_id"] == sent["update_id"]]
    loop = bot_process.fresh_loop()
    update = Update.model_validate(raw, context={"bot": loop.bot})
    handled = await asyncio.gather(loop.process(update), loop.process(update))
    assert sorted(handled) == [False, True]
    assert await loop.process(update) is False
    replies = await wait_for_replies(tg.private, sent["message_id"])
    await asyncio.sleep(0.5)
    assert len(await tg.private.bot_messages_after(sent["message_id"])) == 1, "answered twice"
    assert f"Closed #{position['trade_id']}" in replies[0]["text"]
    closed = (await gw.http.get(P + "/trades/closed", headers=alice.headers)).json()
    assert [c["trade_id"] for c in closed] == [position["trade_id"]]

    # Even handled again past its claim (two bot processes on one token), the update's idempotency key makes
    # the close answer its first result: the trade is closed once.
    await gw.db.telegram_updates.delete_one({"bot_id": bot_id, "update_id": update.update_id})
    assert await loop.process(update) is True
    [again] = (await wait_for_replies(tg.private, sent["message_id"], 2))[1:]
    assert again["text"] == replies[0]["text"]
    assert (await gw.http.get(P + "/trades/closed", headers=alice.headers)).json() == closed
    await bot_process.stop()

    # The process died after answering but before storing its offset: Telegram delivers the update again.
    await gw.db.telegram_offsets.delete_many({"bot_id": bot_id})
    await bot_process.start()
    assert "Count" in await tg.ask("/count")
    assert len(await tg.private.bot_messages_after(sent["message_id"])) == 3  # and the /count answer only

    # Restarts between updates, and updates arriving while the bot is down: each answered exactly once, in
    # order (each command's answer names it, so a second answer to any update would show).
    commands = [("/count", "Count"), ("/balance", "Balance"), ("/status", "Status"), ("/count", "Count"),
                ("/balance", "Balance"), ("/version", "Durabot")]
    first = None
    for i, (text, _) in enumerate(commands):
        done = await tg.send(text)
        first = first or done
        if i % 2 == 1:
            await bot_process.stop()
            await bot_process.start()
    await bot_process.stop()
    await bot_process.start()
    assert first is not None
    answers = await wait_for_replies(tg.private, first["message_id"] - 1, len(commands))
    await asyncio.sleep(1.5)
    later = await tg.private.bot_messages_after(first["message_id"] - 1)
    assert len(later) == len(commands), "an update was answered twice"
    for (text, kind), found in zip(commands, answers, strict=True):
        assert kind in found["text"], (text, found["text"])
    offset = await gw.db.telegram_offsets.find_one({"bot_id": bot_id})
    assert offset["offset"] == tg.sent[-1]["update_id"] + 1
    assert await gw.db.telegram_updates.count_documents({"bot_id": bot_id}) == len(tg.sent)
    sends = await sim_requests(sim_http, "sendMessage")
    # One answer per update, and the one handled again past its claim on purpose.
    assert len([r for r in sends if r["params"].get("chat_id") in (tg.user_id, str(tg.user_id))]) == len(tg.sent) + 1
