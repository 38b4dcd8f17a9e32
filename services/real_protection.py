"""Stop loss and take profit of a real position: exchange-side conditional orders (close-position
STOP_MARKET / TAKE_PROFIT_MARKET through the Algo Order API), each an ``OrderWorkflow``.

Setting a stop where there is none, or tightening it, lowers risk and acts at once. Moving a stop
further from the price raises the possible loss: that new stop waits for the owner's 2-step
confirmation like an order that opens risk. A moved stop or take profit is a new order that
replaces the old one: the old one is cancelled only once the new one is on the exchange, so the
position is never left without its protection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from core.order_contracts import LIVE_STATES, client_order_id
from services.errors import NotFound, Rejected
from services.idempotency import checked_key
from services.principal import Principal
from services.real_account import RealAccount
from services.real_orders import OrderRequest, OrderRequested, RealOrders

STOP, TAKE = "STOP_MARKET", "TAKE_PROFIT_MARKET"


@dataclass(frozen=True)
class Protection:
    stop_loss: OrderRequested | None
    take_profit: OrderRequested | None


class RealProtection:
    def __init__(self, db: AsyncDatabase, orders: RealOrders, account: RealAccount) -> None:
        self.db = db
        self.orders = orders
        self.account = account

    async def _current(self, principal: Principal, symbol: str, order_type: str) -> dict[str, Any] | None:
        """The live protective order of this kind on ``symbol`` (the newest, if several)."""
        return await self.db.real_orders.find_one(
            {"user_id": principal.user_id, "terms.symbol": symbol, "terms.order_type": order_type,
             "status": {"$in": sorted(LIVE_STATES)}}, sort=[("created_at_ms", -1)])

    async def set_protection(self, principal: Principal, symbol: str, stop_loss: float | None,
                             take_profit: float | None, key: str | None) -> Protection:
        principal.require("sensitive")
        key = checked_key(key, required=True)
        if stop_loss is None and take_profit is None:
            raise Rejected(None, "give a stop_loss, a take_profit or both")
        symbol = symbol.upper()
        position = next((p for p in await self.account.positions(principal) if p.symbol == symbol), None)
        if position is None:
            raise NotFound(f"there is no open {symbol} position to protect")
        long = position.position_amt > 0
        mark = position.mark_price
        closing_side = "SELL" if long else "BUY"
        if stop_loss is not None and (stop_loss >= mark if long else stop_loss <= mark):
            raise Rejected("stop_loss", f"a stop of a {'long' if long else 'short'} position lies "
                                        f"{'below' if long else 'above'} the mark price {mark:g}")
        if take_profit is not None and (take_profit <= mark if long else take_profit >= mark):
            raise Rejected("take_profit", f"a take profit of a {'long' if long else 'short'} position lies "
                                          f"{'above' if long else 'below'} the mark price {mark:g}")
        placed: dict[str, OrderRequested | None] = {STOP: None, TAKE: None}
        for order_type, trigger in ((STOP, stop_loss), (TAKE, take_profit)):
            if trigger is None:
                continue
            current = await self._current(principal, symbol, order_type)
            old_trigger = float(current["terms"]["trigger_price"]) if current else None
            # Only a stop moved away from the price adds risk; a first stop, a tighter one or any
            # take profit lowers it.
            riskier = (order_type == STOP and old_trigger is not None
                       and (trigger < old_trigger if long else trigger > old_trigger))
            placed[order_type] = await self.orders.request_order(
                principal,
                OrderRequest(symbol=symbol, side=closing_side, order_type=order_type, quantity=None,
                             trigger_price=trigger, close_position=True),
                f"{key}.{order_type}", confirm=riskier,
                order_id=client_order_id("p", f"{principal.user_id}:{key}:{order_type}"),
                replaces=current["order_id"] if current else None)
        return Protection(placed[STOP], placed[TAKE])
