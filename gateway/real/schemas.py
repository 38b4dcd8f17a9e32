"""API schemas of ``/api/real-trading`` (apart from the workflow contracts they are built from)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str = Field(min_length=5, max_length=20, pattern=r"^[A-Za-z0-9]+$", examples=["BTCUSDT"])
    side: Literal["BUY", "SELL"]
    order_type: Literal["MARKET", "LIMIT", "STOP_MARKET", "TAKE_PROFIT_MARKET"] = "MARKET"
    quantity: float | None = Field(None, gt=0, description="Base asset quantity, rounded down to the symbol's "
                                                           "step; not with close_position.")
    price: float | None = Field(None, gt=0, description="LIMIT only; rounded to the symbol's tick.")
    time_in_force: Literal["GTC", "IOC", "FOK", "GTX"] | None = None
    reduce_only: bool = Field(False, description="Only reduces a position: sent at once, no confirmation.")
    leverage: int = Field(1, ge=1, le=125, description="Leverage the summary's liquidation estimate assumes.")
    key_id: str | None = Field(None, max_length=64, description="Which saved API key; unset = your first one.")
    trigger_price: float | None = Field(None, gt=0, description="STOP_MARKET / TAKE_PROFIT_MARKET: the trigger.")
    close_position: bool = Field(False, description="STOP_MARKET / TAKE_PROFIT_MARKET: close the whole position "
                                                    "when triggered (no quantity).")
    market: Literal["futures", "spot"] = Field(
        "futures", description="USDⓈ-M futures, or spot (MARKET and LIMIT only: no leverage, no reduce-only).")


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=8, max_length=128, description="The one-time confirmation secret you were shown.")
    terms_digest: str = Field(min_length=8, max_length=64, description="The digest of the terms you were shown.")


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field("", max_length=200)


class TermsOut(BaseModel):
    market: str
    symbol: str
    side: str
    order_type: str
    quantity: str
    price: str | None
    time_in_force: str | None
    reduce_only: bool
    trigger_price: str | None = None
    close_position: bool = False


class RiskVerdictOut(BaseModel):
    check: str
    passed: bool
    detail: str


class SummaryOut(BaseModel):
    expected_price: float
    notional: float
    fee: float
    leverage: int
    liquidation_price: float | None
    risk_checks: list[RiskVerdictOut]


class TransitionOut(BaseModel):
    status: str
    at_ms: int
    note: str


class OrderOut(BaseModel):
    order_id: str = Field(description="The client order ID; also the confirmation ID.")
    status: str
    terms: TermsOut
    terms_digest: str
    origin: str
    source: str
    created_at_ms: int
    summary: SummaryOut | None
    confirm_by_ms: int | None
    confirmed_by: str | None
    exchange_order_id: int | None
    executed_qty: float
    avg_price: float
    reason: str
    updated_at_ms: int
    history: list[TransitionOut]
    replaces: str | None = Field(None, description="The protective order this one replaces (a moved stop).")


class OrderRequestedOut(BaseModel):
    order: OrderOut
    confirmation_token: str | None = Field(
        None, description="Shown once, to a person in a human session, while the order awaits confirmation.")
