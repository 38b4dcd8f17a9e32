"""Manual trading on a session: market, limit and stop-limit orders, cancels and closes.

A market order or a close between candles fills at the freshest price the exchange offers (read by
an activity, falling back to the feed's and the stored candles') ± slippage, stamped with that
price's market time; a stopped session takes reduce-only orders only. Reducing risk never waits for
MongoDB: a close or a reduce-only order that cannot read a fresh price uses the last close, and what
it booked is written once MongoDB answers.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core.contracts import (
        SESSION_RUNNING,
        CancelOrderInput,
        CloseTradeInput,
        ManualOrderInput,
        ManualOrderResult,
    )
    from trading.engine import StepResult
    from trading.errors import InvalidInput
    from workflows import session_journal as journal
    from workflows import session_legacy as legacy
    from workflows.session_base import SessionBase
    from workflows.session_rules import NotFound, validating


class ManualOrders(SessionBase):
    @workflow.update
    async def place_order(self, order: ManualOrderInput) -> ManualOrderResult:
        if not self._outbox_mode():
            return await legacy.place_order(self, order)
        return await self._write(journal.PLACE_ORDER, order, ManualOrderResult, partial(self._place_order, order))

    async def _place_order(self, order: ManualOrderInput) -> ManualOrderResult:
        self._check_order(order)
        price, time = None, self._engine.now
        if order.order_type == "market":
            price, time = await self._latest_price(order.symbol, never_blocks=order.reduce_only)
        placed, result = self._apply(journal.PLACE_ORDER, journal.order_change(order, price, time))
        if result.fills:
            await self._commit(result, None, order.symbol)
        return ManualOrderResult(placed.to_dict() if placed else None, tuple(f.to_dict() for f in result.fills),
                                 tuple(t.to_dict() for t in result.trades))

    @place_order.validator
    def _validate_place_order(self, order: ManualOrderInput) -> None:
        with validating():
            if self._check_repeat(order):
                return
            self._check_order(order)
            # With a price known, every check runs on a copy of the Engine; without one (no candle
            # yet), the handler checks against the price it reads.
            price = self._engine.last_close.get(order.symbol) if order.order_type == "market" else None
            if order.order_type != "market" or price is not None:
                journal.place(self._engine_copy(), order, price, self._engine.now)

    def _check_order(self, order: ManualOrderInput) -> None:
        if order.symbol not in self._symbols:
            raise InvalidInput("symbol", f"{order.symbol!r} is not one of this session's symbols "
                                         f"{list(self._symbols)}")
        self._check_may_open(order)

    def _check_may_open(self, order: ManualOrderInput) -> None:
        # A stopped session takes no new exposure, manual or not; reducing what is open is fine.
        if self._status != SESSION_RUNNING and not order.reduce_only:
            raise InvalidInput("reduce_only", f"the session is {self._status}: only reduce_only orders until it "
                                              f"is started")

    @workflow.update
    async def cancel_order(self, request: CancelOrderInput) -> dict:
        if not self._outbox_mode():
            return legacy.cancel_order(self, request)
        return await self._write(journal.CANCEL_ORDER, request, dict, partial(self._cancel_order, request))

    async def _cancel_order(self, request: CancelOrderInput) -> dict:
        self._pending_order(request.order_id)
        cancelled = self._apply(journal.CANCEL_ORDER, {"order_id": request.order_id})
        # The account changes (reserved margin released): its snapshot is written like a step's.
        await self._commit(StepResult(), None, cancelled.symbol)
        return cancelled.to_dict()

    @cancel_order.validator
    def _validate_cancel_order(self, request: CancelOrderInput) -> None:
        with validating():
            if not self._check_repeat(request):
                self._pending_order(request.order_id)

    def _pending_order(self, order_id: int) -> None:
        if order_id not in self._engine.orders:
            raise NotFound("order_id", f"no pending order {order_id!r}")

    @workflow.update
    async def close_trade(self, request: CloseTradeInput) -> dict:
        if not self._outbox_mode():
            return await legacy.close_trade(self, request)
        return await self._write(journal.CLOSE_TRADE, request, dict, partial(self._close_trade, request))

    async def _close_trade(self, request: CloseTradeInput) -> dict:
        position = self._open_position(request.trade_id)
        price, time = await self._latest_price(position.symbol, never_blocks=True)
        trade = self._apply(journal.CLOSE_TRADE, {"trade_id": request.trade_id, "price": price, "time": time})
        await self._commit(StepResult(trades=(trade,)), None, trade.symbol)
        return trade.to_dict()

    @close_trade.validator
    def _validate_close_trade(self, request: CloseTradeInput) -> None:
        with validating():
            if not self._check_repeat(request):
                self._open_position(request.trade_id)

    def _open_position(self, trade_id: int) -> Any:
        for position in self._engine.positions.values():
            if position.trade_id == trade_id:
                return position
        raise NotFound("trade_id", f"no open trade {trade_id!r}")
