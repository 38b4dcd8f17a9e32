"""What each write does to a session's Engine, as one function the session applies and a replay of its
journal applies again.

A session applies every write through ``apply(engine, kind, change)`` and journals ``(kind, change)``
under the next sequence number, so replaying the journal through a copy of the Engine, between the
same candles, gives the session's state exactly. ``change`` holds what the Engine needs and nothing it
could read elsewhere: the full settings after a merge, the price and market time a fill used.

Pure and deterministic (no I/O, no clock): safe in workflow code.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from core.contracts import JournalEntry, ManualOrderInput
from trading.engine import Engine, StepResult
from trading.errors import InvalidInput
from trading.models import Order, Trade
from trading.settings import EngineSettings

START = "start"
STOP = "stop"
UPDATE_SETTINGS = "update_settings"
UPDATE_SYMBOLS = "update_symbols"
SET_SIGNAL_INTERVAL = "set_signal_interval"
RESET = "reset"
PLACE_ORDER = "place_order"
CANCEL_ORDER = "cancel_order"
CLOSE_TRADE = "close_trade"
ANALYZE_NOW = "analyze_now"
KINDS = (START, STOP, UPDATE_SETTINGS, UPDATE_SYMBOLS, SET_SIGNAL_INTERVAL, RESET, PLACE_ORDER, CANCEL_ORDER,
         CLOSE_TRADE, ANALYZE_NOW)
# Engine counters a fresh account keeps, so trade and order IDs never repeat within a session.
KEPT_BY_A_FRESH_ACCOUNT = ("now", "last_close", "last_open_time", "next_trade_id", "next_order_id", "fill_counter")


def rebuilt_engine(engine: Engine, settings: EngineSettings, fresh: bool) -> Engine:
    """The Engine under new settings: a fresh account at the starting balance (before a start, or
    after a reset) that keeps the market clock and the ID counters, else the same account."""
    state = engine.to_state()
    if fresh:
        new = Engine(settings).to_state()
        for kept in KEPT_BY_A_FRESH_ACCOUNT:
            new[kept] = state[kept]
        if "funding_rates" in state:  # market data, not the account's
            new["funding_rates"] = state["funding_rates"]
        return Engine.from_state(new)
    state["settings"] = settings.to_dict()
    return Engine.from_state(state)


def settings_change(settings: EngineSettings, fresh: bool) -> dict[str, Any]:
    return {"engine_settings": settings.to_dict(), "fresh": fresh}


def order_change(order: ManualOrderInput, price: float | None, time: int) -> dict[str, Any]:
    return {"order": asdict(order), "price": price, "time": time}


def place(engine: Engine, order: ManualOrderInput, price: float | None, time: int) -> tuple[Any, StepResult]:
    """``Engine.place_order`` with a manual order's fields (raises ``OrderError``)."""
    return engine.place_order(
        order.symbol, order.side, order.order_type, order.quantity, time=time, price=price,
        limit_price=order.limit_price, stop_price=order.stop_price, reduce_only=order.reduce_only,
        stop_loss=order.stop_loss, take_profit=order.take_profit,
    )


def flatten(engine: Engine, prices: dict[str, Any]) -> tuple[tuple[Order, ...], tuple[Trade, ...]]:
    """What a reset does before the fresh account: cancel every pending order (its reserved margin
    comes back), then close every position at ``prices[symbol]`` = (price, market time)."""
    cancelled = tuple(engine.cancel_order(order_id) for order_id in list(engine.orders))
    closes = tuple(engine.close_trade(p.trade_id, *prices[p.symbol]) for p in list(engine.positions.values()))
    return cancelled, closes


def apply(engine: Engine, kind: str, change: dict[str, Any]) -> tuple[Engine, Any]:
    """Apply one write; return the Engine after it (the same object, or a rebuilt one) and what the
    write produced (an order and its step, a closed trade, a reset's cancels and closes, or None)."""
    if kind in (START, UPDATE_SETTINGS) or (kind == UPDATE_SYMBOLS and "engine_settings" in change):
        engine = rebuilt_engine(engine, EngineSettings.from_dict(change["engine_settings"]), change["fresh"])
        if kind == START:
            engine.entries_enabled = True
        return engine, None
    if kind == STOP:
        engine.entries_enabled = False
        return engine, None
    if kind == PLACE_ORDER:
        return engine, place(engine, ManualOrderInput(**change["order"]), change["price"], change["time"])
    if kind == CANCEL_ORDER:
        return engine, engine.cancel_order(change["order_id"])
    if kind == CLOSE_TRADE:
        return engine, engine.close_trade(change["trade_id"], change["price"], change["time"])
    if kind == RESET:
        produced = flatten(engine, change["prices"])
        return rebuilt_engine(engine, engine.settings, fresh=True), produced
    if kind in KINDS:
        return engine, None  # symbols, interval and analysis on demand leave the Engine as it is
    raise InvalidInput("kind", f"unknown journal entry kind {kind!r}")


def replay(engine: Engine, entries: list[JournalEntry]) -> Engine:
    """The Engine after applying ``entries`` in sequence order (no candles between them)."""
    for entry in sorted(entries, key=lambda e: e.seq):
        engine, _ = apply(engine, entry.kind, entry.change)
    return engine
