"""What the session did: /status, /trades, /profit, /balance, /daily, /weekly, /monthly, /performance,
/count, /show_config, /approvals. Every figure is read from the services (the paper session's status,
portfolio, closed trades, equity history and settings; the real session's status and the exchange's
account); nothing is estimated here."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from gateway.telegram.format import duration, esc, money, num, pairs, pct, ratio_pct, table, when
from gateway.telegram.handlers.args import count
from gateway.telegram.periods import Period, label, profits
from gateway.telegram.replies import answer
from services.container import Services
from services.principal import Principal
from services.telegram_links import Link

PAGE = 500
# /profit and /performance read at most this many closed trades of the current account.
MOST_TRADES = 5_000
EQUITY_POINTS = 1_000
REAL_LATER = ("📊 In real mode this slice answers /status, /balance, /stop, /stopentry, /forcelong, /forceshort and "
              "/forceexit. Real-account figures for /{command} are in the dashboard for now; /mode paper shows the "
              "paper session's.")


def side_of(side: str) -> str:
    return {"long": "L", "short": "S", "LONG": "L", "SHORT": "S"}.get(side, side[:1].upper())


async def closed_rows(services: Services, principal: Principal, generation: int) -> list[dict[str, Any]]:
    """The current account's closed trades, newest first (up to MOST_TRADES)."""
    rows: list[dict[str, Any]] = []
    while len(rows) < MOST_TRADES:
        page = await services.paper.closed_trades(principal, PAGE, len(rows), generation)
        rows += page
        if len(page) < PAGE:
            break
    return rows


def net_of(row: dict[str, Any]) -> float:
    """A closed trade's net PnL with the parts reduce-only orders closed earlier."""
    return float(row["trade"]["net_pnl"]) + sum(float(p["net_pnl"]) for p in row.get("partial_closes") or ())


def currency(basic: dict[str, Any]) -> str:
    return str(basic.get("account_currency", "USDT"))


# -- /status ---------------------------------------------------------------------------------------------
async def status(message: Message, principal: Principal, link: Link, services: Services) -> None:
    if link.mode == "real":
        await answer(message, await real_status(services, principal))
        return
    view = await services.paper.status(principal)
    found = view.status
    portfolio = await services.paper.portfolio(principal)
    head = [("Session", f"paper · {found.status}"), ("Symbols", ", ".join(found.symbols) or "–"),
            ("Interval", found.interval or "–"), ("Entries", "on" if found.entries_enabled else "stopped"),
            ("Equity", money(portfolio.account.get("equity"))),
            ("Unrealised", money(portfolio.account.get("unrealised"), signed=True)),
            ("Market time", when(found.market_time))]
    if found.degraded:
        head.append(("Degraded", ", ".join(sorted(found.degraded))))
    text = "<b>📈 Status</b>\n" + pairs(head)
    if portfolio.positions:
        rows = [[str(p["trade_id"]), p["symbol"], side_of(p["side"]), num(p["quantity"]), num(p["entry_price"]),
                 num(p.get("stop_loss")), num(p.get("take_profit"))] for p in portfolio.positions]
        text += "\n<b>Open trades</b>\n" + table(["ID", "SYMBOL", "S", "QTY", "ENTRY", "SL", "TP"], rows,
                                                 [True, False, False, True, True, True, True])
    else:
        text += "\nNo open trades."
    await answer(message, text)


async def real_status(services: Services, principal: Principal) -> str:
    found = await services.real_sessions.status(principal)
    head = [("Session", f"real · {found.status}"), ("Symbols", ", ".join(found.symbols) or "–"),
            ("Interval", found.interval or "–"), ("Entries", "on" if found.entries_enabled else "stopped"),
            ("Orders sent", str(found.orders_sent)), ("Market time", when(found.market_time))]
    if found.halted_reason:
        head.append(("Halted", found.halted_reason))
    text = "<b>📈 Status (real)</b>\n" + pairs(head)
    if found.positions:
        rows = [[p.symbol, side_of(p.side), num(p.quantity), num(p.entry_price), num(p.stop_loss)]
                for p in found.positions]
        text += "\n<b>Positions</b>\n" + table(["SYMBOL", "S", "QTY", "ENTRY", "SL"], rows,
                                               [False, False, True, True, True])
    else:
        text += "\nNo open positions."
    return text


# -- /trades ---------------------------------------------------------------------------------------------
async def trades(message: Message, command: CommandObject, principal: Principal, link: Link,
                 services: Services) -> None:
    if link.mode == "real":
        await answer(message, REAL_LATER.format(command="trades"))
        return
    most = count(command.args, 10, 50)
    generation = (await services.paper.status(principal)).status.generation
    reviews = [a.review for a in await services.paper.trade_analyses(principal, most, 0) if a.generation == generation]
    if not reviews:
        await answer(message, "No closed trades yet.")
        return
    rows = [[str(r.trade_id), r.symbol, side_of(r.side), money(r.net_pnl, signed=True), pct(r.return_pct),
             when(r.exit_time)[5:]] for r in reviews]
    await answer(message, f"<b>🧾 Last {len(rows)} closed trades</b>\n"
                 + table(["ID", "SYMBOL", "S", "NET", "ROI", "EXIT (UTC)"], rows,
                         [True, False, False, True, True, False]))


# -- /profit ---------------------------------------------------------------------------------------------
async def profit(message: Message, principal: Principal, link: Link, services: Services) -> None:
    if link.mode == "real":
        await answer(message, REAL_LATER.format(command="profit"))
        return
    found = (await services.paper.status(principal)).status
    account = (await services.paper.portfolio(principal)).account
    basic = (await services.paper.settings_view(principal)).basic
    rows = await closed_rows(services, principal, found.generation)
    metrics = found.metrics or {}
    start = float(metrics.get("starting_balance") or basic["starting_balance"])
    equity = float(account["equity"])
    realised = sum(net_of(r) for r in rows)
    wins = sum(1 for r in rows if net_of(r) > 0)
    by_pair: dict[str, float] = defaultdict(float)
    for r in rows:
        by_pair[r["symbol"]] += net_of(r)
    best = max(by_pair.items(), key=lambda kv: kv[1]) if by_pair else None
    durations = [int(r["trade"]["exit_time"]) - int(r["trade"]["entry_time"]) for r in rows]
    unit = currency(basic)
    items = [("Closed trades", str(len(rows))),
             ("Wins / losses", f"{wins} / {len(rows) - wins}"),
             ("Realised", f"{money(realised, signed=True)} {unit}"),
             ("Unrealised", f"{money(float(account['unrealised']), signed=True)} {unit}"),
             ("Equity", f"{money(equity)} {unit}"),
             ("Total return", ratio_pct(equity / start - 1 if start else None)),
             ("Fees paid", f"{money(float(account['fees_paid']))} {unit}"),
             ("Profit factor", num(metrics.get("profit_factor"))),
             ("Max drawdown", ratio_pct(metrics.get("max_drawdown"), signed=False)),
             ("Avg duration", duration(sum(durations) // len(durations)) if durations else "–")]
    if best is not None:
        items.append(("Best pair", f"{best[0]} {money(best[1], signed=True)}"))
    if rows:
        items += [("First exit", when(rows[-1]["trade"]["exit_time"])),
                  ("Latest exit", when(rows[0]["trade"]["exit_time"]))]
    await answer(message, "<b>💰 Profit (paper)</b>\n" + pairs(items))


# -- /balance --------------------------------------------------------------------------------------------
async def balance(message: Message, principal: Principal, link: Link, services: Services) -> None:
    if link.mode == "real":
        account = await services.real_account.balance(principal)
        items = [("Wallet", money(account.total_wallet_balance)),
                 ("Unrealised", money(account.total_unrealized_profit, signed=True)),
                 ("Margin balance", money(account.total_margin_balance)),
                 ("Initial margin", money(account.total_initial_margin)),
                 ("Available", money(account.available_balance))]
        rows = [[a.asset, money(a.wallet_balance), money(a.available_balance)]
                for a in account.assets if a.wallet_balance]
        text = "<b>🏦 Balance (real, USDⓈ-M futures)</b>\n" + pairs(items)
        if rows:
            text += "\n" + table(["ASSET", "WALLET", "AVAILABLE"], rows)
        await answer(message, text)
        return
    portfolio = await services.paper.portfolio(principal)
    unit = currency((await services.paper.settings_view(principal)).basic)
    a = portfolio.account
    items = [("Cash", money(a["cash"])), ("Unrealised", money(a["unrealised"], signed=True)),
             ("Equity", money(a["equity"])), ("Margin in use", money(a["margin_in_use"])),
             ("Available", money(a["available"])), ("Fees paid", money(a["fees_paid"])),
             ("Funding paid", money(a["funding_paid"], signed=True)),
             ("Open / pending", f"{a['open_positions']} / {a['pending_orders']}")]
    await answer(message, f"<b>🏦 Balance (paper, {esc(unit)})</b>\n" + pairs(items))


# -- /daily /weekly /monthly -----------------------------------------------------------------------------
async def period_table(message: Message, command: CommandObject, principal: Principal, link: Link,
                       services: Services, period: Period, default: int, most: int) -> None:
    name = {"day": "daily", "week": "weekly", "month": "monthly"}[period]
    if link.mode == "real":
        await answer(message, REAL_LATER.format(command=name))
        return
    n = count(command.args, default, most)
    found = (await services.paper.status(principal)).status
    basic = (await services.paper.settings_view(principal)).basic
    points = await services.paper.equity_history(principal, EQUITY_POINTS, None, found.generation)
    rows = await closed_rows(services, principal, found.generation)
    start = float((found.metrics or {}).get("starting_balance") or basic["starting_balance"])
    now_ms = found.market_time or (points[-1]["time"] if points else int(datetime.now(UTC).timestamp() * 1000))
    made = profits(points, [int(r["trade"]["exit_time"]) for r in rows], start, now_ms, period, n)
    table_rows = [[label(p.start, period), money(p.profit, signed=True), pct(p.profit_pct), str(p.trades)]
                  for p in made]
    await answer(message, f"<b>📅 {name.capitalize()} profit (paper, {esc(currency(basic))}, market time UTC)</b>\n"
                 + table(["PERIOD", "PROFIT", "%", "TRADES"], table_rows))


async def daily(message: Message, command: CommandObject, principal: Principal, link: Link,
                services: Services) -> None:
    await period_table(message, command, principal, link, services, "day", 7, 31)


async def weekly(message: Message, command: CommandObject, principal: Principal, link: Link,
                 services: Services) -> None:
    await period_table(message, command, principal, link, services, "week", 4, 26)


async def monthly(message: Message, command: CommandObject, principal: Principal, link: Link,
                  services: Services) -> None:
    await period_table(message, command, principal, link, services, "month", 6, 24)


# -- /performance /count ---------------------------------------------------------------------------------
async def performance(message: Message, principal: Principal, link: Link, services: Services) -> None:
    if link.mode == "real":
        await answer(message, REAL_LATER.format(command="performance"))
        return
    found = (await services.paper.status(principal)).status
    rows = await closed_rows(services, principal, found.generation)
    if not rows:
        await answer(message, "No closed trades yet.")
        return
    per: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        per[r["symbol"]].append(net_of(r))
    ranked = sorted(per.items(), key=lambda kv: sum(kv[1]), reverse=True)
    table_rows = [[symbol, money(sum(nets), signed=True), str(len(nets)),
                   pct(sum(1 for x in nets if x > 0) / len(nets) * 100, signed=False)] for symbol, nets in ranked]
    await answer(message, "<b>🏁 Performance per pair (paper)</b>\n"
                 + table(["SYMBOL", "NET", "TRADES", "WIN"], table_rows))


async def count_trades(message: Message, principal: Principal, link: Link, services: Services) -> None:
    if link.mode == "real":
        await answer(message, REAL_LATER.format(command="count"))
        return
    found = (await services.paper.status(principal)).status
    portfolio = await services.paper.portfolio(principal)
    # One position per symbol (one-way mode): the most open at once is the number of symbols traded.
    most = len(found.symbols)
    items = [("Open trades", f"{len(portfolio.positions)} / {most}"),
             ("Pending orders", str(portfolio.account.get("pending_orders", 0)))]
    await answer(message, "<b>🔢 Count (paper)</b>\n" + pairs(items) + "\nOne position per symbol traded.")


# -- /show_config ----------------------------------------------------------------------------------------
async def show_config(message: Message, principal: Principal, link: Link, services: Services) -> None:
    if link.mode == "real":
        record = await services.real_sessions.trading_settings(principal)
        basic, symbols, interval, title = record.engine_settings, ", ".join(record.symbols), record.interval, "real"
        strategy: dict[str, Any] = {}
    else:
        view = await services.paper.settings_view(principal)
        found = await services.paper.symbols(principal)
        basic, strategy, title = view.basic, view.strategy, "paper"
        symbols, interval = ", ".join(found.symbols), found.interval
    risk = basic.get("risk") or {}
    items = [("Symbols", symbols or "–"), ("Interval", interval or "–"), ("Market", str(basic.get("market"))),
             ("Currency", currency(basic)), ("Leverage", f"{basic.get('leverage')}x"),
             ("Start balance", money(basic.get("starting_balance"))),
             ("Sizing", str(basic.get("position_sizing"))),
             ("Stop loss", pct(basic.get("stop_loss_pct"), signed=False)),
             ("Take profit", pct(basic.get("take_profit_pct"), signed=False)),
             ("Trailing stop", pct(basic.get("trailing_stop_pct"), signed=False)),
             ("Risk / trade", pct(risk.get("risk_per_trade_pct"), signed=False)),
             ("Max daily loss", pct(risk.get("max_daily_loss_pct"), signed=False)),
             ("Taker fee", ratio_pct(basic.get("taker_fee"), signed=False))]
    if strategy:
        items += [("Min agree", str(strategy.get("min_agree"))),
                  ("Min confidence", num(basic.get("min_confidence")))]
    await answer(message, f"<b>⚙️ Settings ({title})</b>\n" + pairs(items)
                 + "\nChange settings in the dashboard (or through tuning proposals).")


# -- /approvals ------------------------------------------------------------------------------------------
async def approvals(message: Message, principal: Principal, services: Services) -> None:
    waiting = await services.tuning.proposals(principal, "awaiting", 20)
    if not waiting:
        await answer(message, "No tuning proposals are waiting for you.")
        return
    lines = ["<b>🗳 Waiting for your approval</b>"]
    for p in waiting:
        changes = ", ".join(f"{c['path']}: {c['current']} → {c['proposed']}" for c in p.get("changes") or ())
        lines.append(f"#{p['number']} {esc(p.get('tier', ''))} ({esc(p.get('mode', 'paper'))}): {esc(changes)}"
                     f"\n   {esc(p.get('reason', ''))[:200]}")
    lines.append("Approve or reject them in the dashboard (Tuning) for now.")
    await answer(message, "\n".join(lines))


def router() -> Router:
    """A fresh router of these handlers (a router joins one dispatcher only)."""
    made = Router(name="reads")
    made.message.register(status, Command("status", ignore_case=True))
    made.message.register(trades, Command("trades", ignore_case=True))
    made.message.register(profit, Command("profit", ignore_case=True))
    made.message.register(balance, Command("balance", ignore_case=True))
    made.message.register(daily, Command("daily", ignore_case=True))
    made.message.register(weekly, Command("weekly", ignore_case=True))
    made.message.register(monthly, Command("monthly", ignore_case=True))
    made.message.register(performance, Command("performance", ignore_case=True))
    made.message.register(count_trades, Command("count", ignore_case=True))
    made.message.register(show_config, Command("show_config", ignore_case=True))
    made.message.register(approvals, Command("approvals", ignore_case=True))
    return made
