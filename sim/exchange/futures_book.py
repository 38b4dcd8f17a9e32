"""USDⓈ-M futures accounts of the sim: orders, algo orders, positions, fills and income (state only).

Order, trade and income times are virtual market time (ms), like kline times. Every change appends
user-data events (Binance payloads) to ``outbox``; the owner persists the book and publishes the
events. Pricing and rules live in ``futures_engine``."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sim.exchange.futures_models import (
    D0,
    MARGIN_ASSET,
    Account,
    AlgoOrder,
    FeeSchedule,
    Order,
    Position,
    dump_record,
    load_record,
    text,
)

__all__ = ["D0", "MARGIN_ASSET", "Account", "AlgoOrder", "FeeSchedule", "FuturesBook", "Order", "Position", "text"]


class FuturesBook:
    def __init__(self, fees: FeeSchedule) -> None:
        self.fees = fees
        self.orders: dict[int, Order] = {}
        self.algos: dict[int, AlgoOrder] = {}
        self.accounts: dict[str, Account] = {}
        self.next_order_id = 8_000_000_001
        self.next_algo_id = 4_000_000_001
        self.next_trade_id = 900_000_001
        self.next_tran_id = 7_000_000_001
        # Candles closing and funding due at or before this virtual instant have been handled.
        self.matched_through_ms: int | None = None
        self.outbox: list[tuple[str, dict[str, Any]]] = []
        # The working orders, kept apart so matching on every clock event does not walk the history.
        self.live: dict[int, Order] = {}
        self.live_algos: dict[int, AlgoOrder] = {}

    # -- ids and accounts --------------------------------------------------------------------------
    def account(self, api_key: str, initial_wallet: Decimal) -> Account:
        if api_key not in self.accounts:
            self.accounts[api_key] = Account(api_key, initial_wallet)
        return self.accounts[api_key]

    def new_order_id(self) -> int:
        self.next_order_id += 1
        return self.next_order_id - 1

    def new_algo_id(self) -> int:
        self.next_algo_id += 1
        return self.next_algo_id - 1

    def _tran_id(self) -> int:
        self.next_tran_id += 1
        return self.next_tran_id - 1

    def open_orders(self, api_key: str, symbol: str | None = None) -> list[Order]:
        return [o for o in self.live.values() if o.api_key == api_key and (symbol is None or o.symbol == symbol)]

    def open_algos(self, api_key: str, symbol: str | None = None) -> list[AlgoOrder]:
        return [a for a in self.live_algos.values() if a.api_key == api_key and (symbol is None or a.symbol == symbol)]

    def working_symbols(self) -> set[str]:
        return {o.symbol for o in self.live.values()} | {a.symbol for a in self.live_algos.values()}

    # -- order lifecycle ---------------------------------------------------------------------------
    def add_order(self, order: Order) -> None:
        self.orders[order.order_id] = order
        self.live[order.order_id] = order
        self._order_event(order, "NEW", order.time_ms)

    def add_algo(self, algo: AlgoOrder) -> None:
        self.algos[algo.algo_id] = algo
        self.live_algos[algo.algo_id] = algo
        self.outbox.append((algo.api_key, algo.event(algo.create_ms)))

    def finish(self, order: Order, status: str, now_ms: int) -> None:
        """Close an open order without (more) fills: CANCELED or EXPIRED."""
        order.status, order.update_ms = status, now_ms
        self.live.pop(order.order_id, None)
        self._order_event(order, status, now_ms)

    def set_algo_status(self, algo: AlgoOrder, status: str, now_ms: int) -> None:
        algo.status, algo.update_ms = status, now_ms
        if not algo.is_open:
            self.live_algos.pop(algo.algo_id, None)
        self.outbox.append((algo.api_key, algo.event(now_ms)))

    def fill(self, order: Order, qty: Decimal, price: Decimal, maker: bool, now_ms: int) -> None:
        """Book one fill: position, realized PnL, commission, trade, income and events."""
        account = self.accounts[order.api_key]
        position = account.position(order.symbol)
        signed = qty if order.side == "BUY" else -qty
        before = position.amount
        realized = D0
        if before == 0 or (before > 0) == (signed > 0):
            total = abs(before) + qty
            position.entry_price = (abs(before) * position.entry_price + qty * price) / total
        else:
            closed = min(qty, abs(before))
            realized = closed * (price - position.entry_price) * (1 if before > 0 else -1)
            if qty > abs(before):
                position.entry_price = price
            elif qty == abs(before):
                position.entry_price = D0
        position.amount = before + signed
        position.update_ms = now_ms
        rate = self.fees.maker if maker else self.fees.taker
        commission = (qty * price * rate).quantize(Decimal("0.00000001"))
        account.wallet += realized - commission
        order.executed_qty += qty
        order.cum_quote += qty * price
        order.status = "FILLED" if order.executed_qty >= order.orig_qty else "PARTIALLY_FILLED"
        order.update_ms = now_ms
        if not order.is_open:
            self.live.pop(order.order_id, None)
        trade_id = self.next_trade_id
        self.next_trade_id += 1
        account.trades.append(
            {
                "buyer": order.side == "BUY",
                "commission": text(commission),
                "commissionAsset": MARGIN_ASSET,
                "id": trade_id,
                "maker": maker,
                "orderId": order.order_id,
                "price": text(price),
                "qty": text(qty),
                "quoteQty": text(qty * price),
                "realizedPnl": text(realized),
                "side": order.side,
                "positionSide": "BOTH",
                "symbol": order.symbol,
                "time": now_ms,
            }
        )
        if realized:
            self._income(account, "REALIZED_PNL", realized, order.symbol, now_ms, trade_id)
        self._income(account, "COMMISSION", -commission, order.symbol, now_ms, trade_id)
        self._order_event(order, "TRADE", now_ms, last=(qty, price, commission, realized, maker, trade_id))
        self.account_event(account, "ORDER", now_ms, [order.symbol])

    def book_funding(self, account: Account, symbol: str, amount: Decimal, now_ms: int) -> None:
        account.wallet += amount
        self._income(account, "FUNDING_FEE", amount, symbol, now_ms, None)
        self.account_event(account, "FUNDING_FEE", now_ms, [symbol])

    def _income(
        self, account: Account, kind: str, amount: Decimal, symbol: str, now_ms: int, trade_id: int | None
    ) -> None:
        account.income.append(
            {
                "symbol": symbol,
                "incomeType": kind,
                "income": text(amount.quantize(Decimal("0.00000001"))),
                "asset": MARGIN_ASSET,
                "info": kind,
                "time": now_ms,
                "tranId": self._tran_id(),
                "tradeId": "" if trade_id is None else str(trade_id),
            }
        )

    # -- user-data events --------------------------------------------------------------------------
    def _order_event(
        self,
        order: Order,
        execution: str,
        now_ms: int,
        last: tuple[Decimal, Decimal, Decimal, Decimal, bool, int] | None = None,
    ) -> None:
        qty, price, commission, realized, maker, trade_id = last or (D0, D0, D0, D0, False, 0)
        self.outbox.append(
            (
                order.api_key,
                {
                    "e": "ORDER_TRADE_UPDATE",
                    "E": now_ms,
                    "T": now_ms,
                    "o": {
                        "s": order.symbol,
                        "c": order.client_order_id,
                        "S": order.side,
                        "o": order.type,
                        "f": order.time_in_force,
                        "q": text(order.orig_qty),
                        "p": text(order.price),
                        "ap": text(order.avg_price),
                        "sp": text(order.stop_price),
                        "x": execution,
                        "X": order.status,
                        "i": order.order_id,
                        "l": text(qty),
                        "z": text(order.executed_qty),
                        "L": text(price),
                        "N": MARGIN_ASSET,
                        "n": text(commission),
                        "T": now_ms,
                        "t": trade_id,
                        "b": "0",
                        "a": "0",
                        "m": maker,
                        "R": order.reduce_only,
                        "wt": order.working_type,
                        "ot": order.orig_type or order.type,
                        "ps": "BOTH",
                        "cp": order.close_position,
                        "rp": text(realized),
                        "pP": False,
                        "si": 0,
                        "ss": 0,
                        "V": "EXPIRE_MAKER",
                        "pm": "NONE",
                        "gtd": 0,
                    },
                },
            )
        )

    def account_event(self, account: Account, reason: str, now_ms: int, symbols: list[str]) -> None:
        positions = []
        for symbol in symbols:
            position = account.position(symbol)
            positions.append(
                {
                    "s": symbol,
                    "pa": text(position.amount),
                    "ep": text(position.entry_price),
                    "bep": text(position.entry_price),
                    "cr": "0",
                    "up": "0",
                    "mt": "isolated" if account.isolated(symbol) else "cross",
                    "iw": "0",
                    "ps": "BOTH",
                    "ma": MARGIN_ASSET,
                }
            )
        self.outbox.append(
            (
                account.api_key,
                {
                    "e": "ACCOUNT_UPDATE",
                    "E": now_ms,
                    "T": now_ms,
                    "a": {
                        "m": reason,
                        "B": [{"a": MARGIN_ASSET, "wb": text(account.wallet), "cw": text(account.wallet), "bc": "0"}],
                        "P": positions,
                    },
                },
            )
        )

    def take_events(self) -> list[tuple[str, dict[str, Any]]]:
        events, self.outbox = self.outbox, []
        return events

    # -- persistence -------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        return {
            "orders": [dump_record(o) for o in self.orders.values()],
            "algos": [dump_record(a) for a in self.algos.values()],
            "accounts": [
                {**dump_record(a), "positions": [dump_record(p) for p in a.positions.values()]}
                for a in self.accounts.values()
            ],
            "next_ids": [self.next_order_id, self.next_algo_id, self.next_trade_id, self.next_tran_id],
            "matched_through_ms": self.matched_through_ms,
        }

    def load(self, raw: dict[str, Any]) -> None:
        self.orders = {o.order_id: o for o in (load_record(Order, r) for r in raw["orders"])}
        self.algos = {a.algo_id: a for a in (load_record(AlgoOrder, r) for r in raw["algos"])}
        self.live = {i: o for i, o in self.orders.items() if o.is_open}
        self.live_algos = {i: a for i, a in self.algos.items() if a.is_open}
        self.accounts = {}
        for record in raw["accounts"]:
            positions = {p["symbol"]: load_record(Position, p) for p in record["positions"]}
            account = load_record(Account, {**record, "positions": {}})
            account.positions = positions
            self.accounts[account.api_key] = account
        self.next_order_id, self.next_algo_id, self.next_trade_id, self.next_tran_id = raw["next_ids"]
        self.matched_through_ms = raw["matched_through_ms"]
