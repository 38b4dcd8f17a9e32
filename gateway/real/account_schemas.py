"""API schemas of the real futures account (``/api/real-trading``: balance, positions, open orders,
closed trades, reconciliation). Built from the account client's records with ``model_validate``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from gateway.real.schemas import OrderOut, OrderRequestedOut


class _Record(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class AssetBalanceOut(_Record):
    asset: str
    wallet_balance: float
    unrealized_profit: float
    margin_balance: float
    available_balance: float
    max_withdraw_amount: float
    initial_margin: float
    maint_margin: float


class BalanceOut(_Record):
    total_wallet_balance: float
    total_unrealized_profit: float
    total_margin_balance: float = Field(description="Wallet balance plus unrealized profit.")
    total_initial_margin: float
    total_maint_margin: float
    available_balance: float = Field(description="What new orders may use as margin.")
    max_withdraw_amount: float
    assets: list[AssetBalanceOut]


class SpotAssetOut(_Record):
    asset: str
    free: float
    locked: float = Field(description="Held by open orders.")


class SpotBalanceOut(_Record):
    can_trade: bool = Field(description="Whether the key may trade spot.")
    account_type: str
    permissions: list[str]
    balances: list[SpotAssetOut] = Field(description="Assets held (none at zero).")


class PositionOut(_Record):
    symbol: str
    position_side: str
    position_amt: float = Field(description="Signed quantity: negative is short.")
    entry_price: float
    break_even_price: float
    mark_price: float
    unrealized_profit: float
    liquidation_price: float
    notional: float
    margin_asset: str
    isolated_margin: float
    initial_margin: float
    maint_margin: float
    update_time_ms: int


class ExchangeOrderOut(_Record):
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    order_type: str
    orig_type: str
    status: str
    price: float
    stop_price: float
    orig_qty: float
    executed_qty: float
    avg_price: float
    reduce_only: bool
    close_position: bool
    time_in_force: str
    position_side: str
    time_ms: int
    update_time_ms: int


class AlgoOrderOut(_Record):
    symbol: str
    algo_id: int
    client_algo_id: str
    side: str
    order_type: str
    status: str
    quantity: float
    trigger_price: float
    price: float
    reduce_only: bool
    close_position: bool
    working_type: str
    position_side: str
    create_time_ms: int
    update_time_ms: int


class OpenOrdersOut(_Record):
    orders: list[ExchangeOrderOut]
    algo_orders: list[AlgoOrderOut] = Field(description="Conditional orders (stops, take-profits) not triggered yet.")


class UserTradeOut(_Record):
    symbol: str
    trade_id: int
    order_id: int
    side: str
    price: float
    qty: float
    quote_qty: float
    realized_pnl: float
    commission: float
    commission_asset: str
    maker: bool
    position_side: str
    time_ms: int


class DifferenceOut(_Record):
    kind: str = Field(description="position_mismatch, unknown_position, missing_position, unknown_order, "
                                  "missing_order, unknown_algo_order, missing_algo_order, hedge_mode, margin_type "
                                  "or leverage.")
    symbol: str | None
    expected: float | int | str | None
    actual: float | int | str | None
    detail: str


class ReconciliationOut(BaseModel):
    ok: bool = Field(description="True only when nothing differs: reconciliation fails closed.")
    differences: list[DifferenceOut]
    checked_at_ms: int


class FlattenOut(BaseModel):
    orders: list[OrderOut] = Field(description="One reduce-only MARKET order per position closed.")


class ProtectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stop_loss: float | None = Field(None, gt=0, description="Stop trigger price (close-position STOP_MARKET).")
    take_profit: float | None = Field(None, gt=0, description="Take-profit trigger price (close-position "
                                                               "TAKE_PROFIT_MARKET).")


class ProtectionOut(BaseModel):
    stop_loss: OrderRequestedOut | None
    take_profit: OrderRequestedOut | None
