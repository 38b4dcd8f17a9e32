"""API schemas of the real session (``/api/real-trading``: status, start, stop, entries, adopt, settings, ledger)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gateway.paper.tuning_schemas import ProposalCreatedOut


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RealStartIn(_Strict):
    symbols: list[str] = Field(default_factory=list, max_length=10,
                               description="Futures symbols to trade; empty: the paper session's.")
    interval: str | None = Field(None, pattern=r"^\d{1,2}[mhdwM]$", description="Empty: the paper session's.")
    key_id: str | None = Field(None, max_length=64, description="The saved API key to trade with; empty: your first.")
    reason: str = Field("", max_length=500)


class RealStopIn(_Strict):
    flatten: bool = Field(False, description="Also close every position of the session (reduce-only, at once).")
    reason: str = Field("", max_length=500)


class RealEntriesIn(_Strict):
    enabled: bool = Field(description="false: stop entries (always allowed); true: resume them (a person, once "
                                      "the last reconciliation found nothing).")


class ManagedPositionOut(BaseModel):
    symbol: str
    side: Literal["LONG", "SHORT"]
    quantity: float
    entry_price: float
    opened_at_ms: int
    stop_loss: float | None
    take_profit: float | None
    stop_order: str | None = Field(description="Client algo ID of the exchange-side stop.")
    take_order: str | None
    adopted: bool


class RealAlertOut(BaseModel):
    at_ms: int
    kind: str
    message: str


class RealSessionOut(BaseModel):
    workflow_id: str
    status: Literal["NEW", "RUNNING", "HALTED", "STOPPED"] = Field(
        description="HALTED: running with entries stopped by the session (see halted_reason).")
    entries_enabled: bool
    halted_reason: str
    symbols: list[str]
    interval: str
    key_id: str | None
    approval_id: str | None = Field(description="The RED proposal whose approval started the session.")
    positions: list[ManagedPositionOut]
    pending_orders: dict[str, str] = Field(description="Orders sent and not final: client order ID -> symbol.")
    alerts: list[RealAlertOut]
    report: dict[str, Any] | None = Field(description="The last reconciliation: {ok, differences, checked_at_ms}.")
    market_time: int
    last_open_time: dict[str, int] = Field(description="Per symbol, the open time of the last candle the session "
                                                       "finished with (its orders answered).")
    candles_processed: int
    orders_sent: int
    queued: int
    leverage: dict[str, int] = Field(description="Per symbol, the leverage the exchange confirmed at the start.")
    margin_types: dict[str, str] = Field(description="Per symbol, the margin type set at the start (ISOLATED).")
    model_equity: float = Field(description="The equity of the session's model of the account (decisions are "
                                            "sized on it); the exchange's balance is the truth.")
    stream_connections: int = Field(description="User-data stream connections so far; each one is followed by a "
                                                "gap-fill of the ledger from the exchange's REST records.")
    last_hint_ms: int = Field(description="When the user-data stream last hinted a fill, a balance change or a "
                                          "(re)connection (wall ms; 0: not in this run).")


class RealStartOut(BaseModel):
    session: RealSessionOut
    proposal: ProposalCreatedOut = Field(
        description="The RED proposal: approve it with its exact text and a fresh two-factor step-up "
                    "(POST /api/tuning/proposals/{n}/approve-text).")


class RealSettingsOut(BaseModel):
    session_id: str
    status: str
    symbols: list[str]
    interval: str
    version: int | None = Field(description="Raised by every change; a proposal made at another version fails.")
    engine_settings: dict[str, Any]
    analysis_settings: dict[str, Any]


class LedgerEntryOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: Literal["fill", "income"]
    entry_id: str
    symbol: str
    time_ms: int
