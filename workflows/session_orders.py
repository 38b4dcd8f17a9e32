"""Manual trading on a session: market, limit and stop-limit orders, cancels and closes. A market
order or a close between candles fills at the feed's latest price (read by an activity) ± slippage,
stamped with that price's market time; a stopped session takes reduce-only orders only.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from trading.engine import Engine, OrderError, StepResult
    from workflows.contracts import (
        SESSION_RUNNING,
        CancelOrderInput,
        CloseTradeInput,
        ManualOrderInput,
        ManualOrderResult,
    )
    from workflows.session_base import (
        PATCH_STOPPED_BLOCKS_ENTRIES,
        SessionBase,
    )
    from workflows.session_rules import (
        rejected,
    )


class ManualOrders(SessionBase):
    @workflow.update
    async def place_order(self, order: ManualOrderInput) -> ManualOrderResult:
        async with self._lock:
            price, time = None, self._engine.now
            if order.order_type == "market":
                price, time = await self._latest_price(order.symbol)
            try:
                if workflow.patched(PATCH_STOPPED_BLOCKS_ENTRIES):
                    self._check_may_open(order)  # the session may have stopped since the validator ran
                placed, result = self._place(self._engine, order, price, time)
            except (OrderError, ValueError) as exc:
                raise rejected(str(exc)) from None
            if result.fills:
                await self._commit(result, None, order.symbol)
            return ManualOrderResult(placed.to_dict() if placed else None,
                                     tuple(f.to_dict() for f in result.fills),
                                     tuple(t.to_dict() for t in result.trades))

    @place_order.validator
    def _validate_place_order(self, order: ManualOrderInput) -> None:
        if order.symbol not in self._symbols:
            raise ValueError(f"{order.symbol!r} is not one of this session's symbols {list(self._symbols)}")
        self._check_may_open(order)
        price = None
        if order.order_type == "market":
            price = self._engine.last_close.get(order.symbol)
            if price is None:
                raise ValueError(f"no price for {order.symbol} yet: wait for its first candle")
        self._place(self._engine_copy(), order, price, self._engine.now)

    def _check_may_open(self, order: ManualOrderInput) -> None:
        # A stopped session takes no new exposure, manual or not; reducing what is open is fine.
        if self._status != SESSION_RUNNING and not order.reduce_only:
            raise ValueError(f"the session is {self._status}: only reduce_only orders until it is started")

    @staticmethod
    def _place(engine: Engine, order: ManualOrderInput, price: float | None,
               time: int) -> tuple[Any, StepResult]:
        return engine.place_order(
            order.symbol, order.side, order.order_type, order.quantity, time=time, price=price,
            limit_price=order.limit_price, stop_price=order.stop_price, reduce_only=order.reduce_only,
            stop_loss=order.stop_loss, take_profit=order.take_profit,
        )

    @workflow.update
    def cancel_order(self, request: CancelOrderInput) -> dict:
        try:
            return self._engine.cancel_order(request.order_id).to_dict()
        except OrderError as exc:
            raise rejected(str(exc)) from None

    @cancel_order.validator
    def _validate_cancel_order(self, request: CancelOrderInput) -> None:
        if request.order_id not in self._engine.orders:
            raise ValueError(f"no pending order {request.order_id!r}")

    @workflow.update
    async def close_trade(self, request: CloseTradeInput) -> dict:
        async with self._lock:
            position = self._open_position(request.trade_id)
            price, time = await self._latest_price(position.symbol)
            try:
                trade = self._engine.close_trade(request.trade_id, price, time)
            except OrderError as exc:
                raise rejected(str(exc)) from None
            await self._commit(StepResult(trades=(trade,)), None, trade.symbol)
            return trade.to_dict()

    @close_trade.validator
    def _validate_close_trade(self, request: CloseTradeInput) -> None:
        self._open_position(request.trade_id)

    def _open_position(self, trade_id: int) -> Any:
        for position in self._engine.positions.values():
            if position.trade_id == trade_id:
                return position
        raise rejected(f"no open trade {trade_id!r}")

