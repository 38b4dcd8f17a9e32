"""Steering the session: /startbot, /stop, /stopentry, /forceexit, /forcelong, /forceshort, /mode.

Every write passes the idempotency key of its Telegram update (``access.update_key``): a redelivered
update finds its first result and acts no second time. In real mode, an order that opens risk is only
*requested* here: it waits for its owner's confirmation in the dashboard (confirmation buttons in the
chat come later); what needs a fresh two-factor step-up is refused with a pointer to the dashboard.
"""

from __future__ import annotations

import hashlib

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from core.contracts import ManualOrderInput
from gateway.telegram.format import esc, money, num, when
from gateway.telegram.handlers import args
from gateway.telegram.replies import answer, edit_or_send
from services.container import Services
from services.errors import Rejected
from services.paper import StartRequest
from services.principal import Principal
from services.real_orders import OrderRequest
from services.real_session import RealStartRequest
from services.telegram_links import MODES, Link

MODE_PREFIX = "mode:"


def sub_key(key: str, part: str) -> str:
    """A key per item of one update's writes (``/forceexit all`` closes each trade under its own)."""
    return f"{key}-{hashlib.sha256(part.encode()).hexdigest()[:16]}"


# -- starting and stopping -------------------------------------------------------------------------------
async def startbot(message: Message, principal: Principal, link: Link, services: Services, key: str) -> None:
    if link.mode == "real":
        # Starting real trading is a RED proposal behind a fresh step-up: the service refuses it here.
        requested = await services.real_sessions.request_start(principal, RealStartRequest(
            reason="requested from Telegram"), key)
        await answer(message, f"🗳 Real start proposed (#{requested.proposal.proposal.number}): approve it in the "
                              "dashboard.")
        return
    started = await services.paper.start(principal, StartRequest(), key)
    await answer(message, f"▶️ Paper trading started: {esc(', '.join(started.symbols))} {esc(started.interval)}.")


async def stop(message: Message, principal: Principal, link: Link, services: Services, key: str) -> None:
    if link.mode == "real":
        found = await services.real_sessions.stop(principal, flatten=False, reason="stopped from Telegram")
        await answer(message, f"⏹ Real session {esc(found.status)}: no new entries; positions stay open with their "
                              "stops. /forceexit all closes them.")
        return
    stopped = await services.paper.stop(principal, key)
    await answer(message, f"⏹ Paper session {esc(stopped.status)}: no new entries; open trades keep their stops "
                          "and take profits. /startbot resumes.")


async def stopentry(message: Message, principal: Principal, link: Link, services: Services) -> None:
    if link.mode == "real":
        found = await services.real_sessions.set_entries(principal, False)
        await answer(message, f"⏸ Real entries {'on' if found.entries_enabled else 'stopped'}; open positions "
                              "are still managed. Resuming entries is done in the dashboard.")
        return
    # The paper session has no stop that is not this one: its /stop already only blocks new entries.
    await answer(message, "ℹ️ In the paper session /stop is exactly that: it blocks new entries while open trades "
                          "keep being managed (stops, take profits, resting orders). Send /stop.")


# -- orders ----------------------------------------------------------------------------------------------
async def forceexit(message: Message, command: CommandObject, principal: Principal, link: Link,
                    services: Services, key: str) -> None:
    given = args.words(command.args)
    if len(given) != 1:
        what = "<symbol|all>" if link.mode == "real" else "<trade id|all>"
        await answer(message, f"Usage: /forceexit {esc(what)} (/status lists them)")
        return
    target = given[0]
    if link.mode == "real":
        if target.lower() == "all":
            closing = await services.real_account.flatten(principal, key)
            await answer(message, f"🧹 {len(closing)} real position(s) closing: "
                                  + (", ".join(esc(v.terms.symbol) for v in closing) or "none open"))
            return
        view = await services.real_account.close_position(principal, args.symbol(target), key)
        await answer(message, f"🧹 Closing {esc(view.terms.symbol)}: order {esc(view.order_id)} {esc(view.status)}.")
        return
    if target.lower() == "all":
        open_trades = await services.paper.open_trades(principal)
        if not open_trades:
            await answer(message, "No open trades.")
            return
        lines = []
        for position in open_trades:
            trade_id = int(position["trade_id"])
            done = await services.paper.close_trade(principal, trade_id, sub_key(key, str(trade_id)))
            lines.append(f"#{trade_id} {esc(done['symbol'])} {money(done['net_pnl'], signed=True)}")
        await answer(message, "🧹 Closed:\n" + "\n".join(lines))
        return
    closed = await services.paper.close_trade(principal, args.trade_id(target), key)
    await answer(message, f"🧹 Closed #{closed['id']} {esc(closed['symbol'])} at {num(closed['exit_price'])}: net "
                          f"{money(closed['net_pnl'], signed=True)}.")


async def force_entry(message: Message, command: CommandObject, principal: Principal, link: Link,
                      services: Services, key: str, side: str) -> None:
    given = args.words(command.args)
    name = "forcelong" if side == "long" else "forceshort"
    if len(given) != 2:
        await answer(message, f"Usage: /{name} &lt;symbol&gt; &lt;quantity&gt;, e.g. /{name} BTCUSDT 0.01")
        return
    symbol, quantity = args.symbol(given[0]), args.quantity(given[1])
    if link.mode == "real":
        requested = await services.real_orders.request_order(principal, OrderRequest(
            symbol=symbol, side="BUY" if side == "long" else "SELL", order_type="MARKET", quantity=quantity), key)
        view = requested.order
        summary = view.summary
        notional = f" (≈ {money(summary.notional)} notional)" if summary else ""
        await answer(message, f"✋ Real {side} {num(quantity)} {esc(symbol)} requested{notional}: order "
                              f"<code>{esc(view.order_id)}</code> is {esc(view.status.lower())}. Confirm it in the "
                              "dashboard (Real trading → Orders); nothing is sent before that.")
        return
    done = await services.paper.place_order(principal, ManualOrderInput(
        symbol=symbol, side=side, order_type="market", quantity=quantity), key)
    if not done.fills:
        raise Rejected("quantity", "the order did not fill")
    fill = done.fills[0]
    opened = [p for p in await services.paper.open_trades(principal) if p["symbol"] == symbol]
    trade = f" as trade #{opened[0]['trade_id']}" if opened else ""
    await answer(message, f"✅ Paper {side} {num(fill['quantity'])} {esc(symbol)} filled at {num(fill['price'])}"
                          f"{trade} ({when(fill['time'])} UTC).")


async def forcelong(message: Message, command: CommandObject, principal: Principal, link: Link,
                    services: Services, key: str) -> None:
    await force_entry(message, command, principal, link, services, key, "long")


async def forceshort(message: Message, command: CommandObject, principal: Principal, link: Link,
                     services: Services, key: str) -> None:
    await force_entry(message, command, principal, link, services, key, "short")


# -- /mode -----------------------------------------------------------------------------------------------
def mode_keyboard(current: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text=("● " if m == current else "") + m, callback_data=f"{MODE_PREFIX}{m}")
        for m in MODES]])


def mode_text(mode: str) -> str:
    return f"🔀 Commands now address the <b>{esc(mode)}</b> session."


async def mode(message: Message, command: CommandObject, principal: Principal, link: Link,
               services: Services) -> None:
    given = args.words(command.args)
    if not given:
        await answer(message, f"Commands address the <b>{esc(link.mode)}</b> session. Switch:",
                     mode_keyboard(link.mode))
        return
    if len(given) != 1 or given[0].lower() not in MODES:
        await answer(message, "Usage: /mode paper or /mode real")
        return
    changed = await services.telegram_links.set_mode(principal, given[0].lower())
    await answer(message, mode_text(changed.mode))


async def mode_pressed(query: CallbackQuery, principal: Principal, services: Services) -> None:
    chosen = (query.data or "").removeprefix(MODE_PREFIX)
    changed = await services.telegram_links.set_mode(principal, chosen)
    await query.answer(f"Mode: {changed.mode}")
    await edit_or_send(query, mode_text(changed.mode))


def router() -> Router:
    """A fresh router of these handlers (a router joins one dispatcher only)."""
    made = Router(name="control")
    made.message.register(startbot, Command("startbot", ignore_case=True))
    made.message.register(stop, Command("stop", ignore_case=True))
    made.message.register(stopentry, Command("stopentry", ignore_case=True))
    made.message.register(forceexit, Command("forceexit", ignore_case=True))
    made.message.register(forcelong, Command("forcelong", ignore_case=True))
    made.message.register(forceshort, Command("forceshort", ignore_case=True))
    made.message.register(mode, Command("mode", ignore_case=True))
    made.callback_query.register(mode_pressed, F.data.startswith(MODE_PREFIX))
    return made
