"""Monitoring: the user's alerts, the risk and performance of their paper session, what their agents called,
their account's security events, and what the system runs (AUTHENTICATED reads, the user's own data)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from gateway.mcp.registry import current, tool
from services.auth.audit import AuditAction

Limit = Annotated[int, Field(ge=1, le=200, description="at most this many, newest first")]
Scalar = str | int | float | bool | None


class AlertOut(BaseModel):
    alert_id: str
    kind: str = Field(description="e.g. real_halted, exchange_ip_ban")
    severity: str = Field(description="warning or critical")
    message: str
    created_at: datetime
    resolved_at: datetime | None
    shared: bool = Field(description="about the system every user shares (the exchange), not one of your sessions")
    session_id: str | None


@tool("Monitoring", "authenticated", title="Alerts", read_only=True)
async def get_alerts(limit: Limit = 50, include_resolved: bool = True) -> list[AlertOut]:
    """Alerts about the user's sessions (a real session halted, …) and those every user shares (the exchange
    banning this server's IP), newest first; `include_resolved=false` keeps only the open ones."""
    call = current()
    return [AlertOut(**asdict(a)) for a in await call.services.monitoring.alerts(call.principal, limit,
                                                                                 include_resolved)]


class PositionRiskOut(BaseModel):
    trade_id: int
    symbol: str
    side: str
    quantity: float
    entry_price: float
    notional_at_entry: float
    leverage: int
    margin: float
    liquidation_price: float = Field(description="0 when the position cannot be liquidated")
    stop: float | None = Field(description="the nearer of stop loss and trailing stop; null: no stop")
    loss_at_stop: float | None = Field(description="what reaching the stop costs, fees included; null: unbounded")


class RiskLimitsOut(BaseModel):
    risk_per_trade_pct: float
    max_stop_distance_pct: float
    max_portfolio_risk_pct: float
    max_daily_loss_pct: float
    max_consecutive_losses: int
    cooldown_minutes: float
    max_correlation: float
    enabled: list[str] = Field(description="the risk checks every entry must pass")


class RiskMetricsOut(BaseModel):
    session_id: str
    status: str = Field(description="the paper session's state: new, running, stopped, …")
    market_time: int = Field(description="the session's market time, ms")
    entries_enabled: bool
    equity: float
    cash: float
    unrealised: float
    margin_in_use: float
    available: float
    margin_ratio: float | None = Field(description="margin in use / equity")
    notional_at_entry: float = Field(description="open positions' size at their entry prices")
    open_risk: float | None = Field(description="the loss if every stop is hit; null while a position has no stop")
    open_risk_limit: float = Field(description="max_portfolio_risk_pct of equity: the engine refuses entries past it")
    max_drawdown: float | None = Field(description="since the last reset, a fraction of the peak equity")
    exposure: float | None = Field(description="share of steps with a position open")
    leverage: int
    limits: RiskLimitsOut
    positions: list[PositionRiskOut]
    degraded: dict[str, str] | None = Field(description="what does not work as it should now, with the reason")


@tool("Monitoring", "authenticated", title="Risk metrics", read_only=True)
async def get_risk_metrics() -> RiskMetricsOut:
    """The paper session's risk now: equity, margin in use and its ratio to equity, each open position's stop and
    loss at that stop, the total against the portfolio-risk limit, drawdown, exposure, and the risk limits."""
    call = current()
    view = await call.services.monitoring.risk(call.principal)
    return RiskMetricsOut(**{**asdict(view), "limits": RiskLimitsOut.model_validate(view.limits)})


class RunningMetricsOut(BaseModel):
    starting_balance: float
    final_equity: float
    total_return: float
    trades: int
    wins: int
    win_rate: float | None
    profit_factor: float | None
    sharpe: float | None = Field(description="annualised with sqrt(365) over daily returns")
    sortino: float | None
    max_drawdown: float
    exposure: float
    average_trade: float | None
    days: int


class DayOut(BaseModel):
    date: str = Field(description="YYYY-MM-DD, UTC market time")
    start_equity: float
    end_equity: float
    daily_return: float
    net_pnl: float = Field(description="realised net PnL of the trades closed that day")
    trades: int
    wins: int


class PerformanceOut(BaseModel):
    session_id: str
    status: str
    generation: int = Field(description="counts the session's resets; the figures are since the last one")
    metrics: RunningMetricsOut | None = Field(description="null before the session traded its first candle")
    days: list[DayOut] = Field(description="closed UTC days, newest first")


@tool("Monitoring", "authenticated", title="Performance metrics", read_only=True)
async def get_performance_metrics(days: Annotated[int, Field(ge=1, le=366)] = 30) -> PerformanceOut:
    """The paper session's performance since its last reset (return, trades, win rate, profit factor, Sharpe,
    Sortino, max drawdown, exposure) and its last `days` closed UTC days."""
    call = current()
    view = await call.services.monitoring.performance(call.principal, days)
    return PerformanceOut(session_id=view.session_id, status=view.status, generation=view.generation,
                          metrics=RunningMetricsOut.model_validate(view.metrics) if view.metrics else None,
                          days=[DayOut.model_validate(d) for d in view.days])


class McpCallOut(BaseModel):
    call_id: str
    at: datetime
    tool: str
    tier: str
    outcome: str = Field(description="ok, or the kind of error")
    ms: float
    arguments: list[str] = Field(description="the names of the arguments given (never their values)")
    client_id: str
    grant_id: str


@tool("Monitoring", "authenticated", title="Agent calls", read_only=True)
async def list_mcp_calls(
    limit: Limit = 50,
    tool_name: Annotated[str | None, Field(pattern=r"^[a-z][a-z0-9_]{1,63}$", description="only this tool")] = None,
) -> list[McpCallOut]:
    """The MCP tool calls made for the user by any of their agents, newest first: tool, tier, outcome, duration,
    the names of the arguments, and the grant used."""
    call = current()
    return [McpCallOut.model_validate(d) for d in await call.services.monitoring.mcp_calls(call.principal, limit,
                                                                                           tool_name)]


class SecurityEventOut(BaseModel):
    event_id: str
    at: datetime
    action: str
    ip: str | None
    by_you: bool = Field(description="false when someone else acted on the account (an administrator)")
    details: dict[str, Scalar]


def _scalar(value: Any) -> Scalar:
    return value if isinstance(value, str | int | float | bool | None) else str(value)


@tool("Monitoring", "authenticated", title="Security events", read_only=True)
async def list_security_events(
    limit: Limit = 50,
    action: Annotated[AuditAction | None, Field(description="only this kind of event")] = None,
) -> list[SecurityEventOut]:
    """The account's security events, newest first: logins and failed logins, sessions ended, exchange keys
    saved, tested or deleted, two-factor changes, agent grants created or revoked; each with its IP address and
    details (IDs, never a secret)."""
    call = current()
    return [SecurityEventOut(event_id=d["event_id"], at=d["at"], action=d["action"], ip=d.get("ip"),
                             by_you=d.get("actor_id") in (None, d["user_id"]),
                             details={k: _scalar(v) for k, v in d["details"].items()})
            for d in await call.services.monitoring.security_events(call.principal, limit, action)]


class QueueWorkersOut(BaseModel):
    role: str = Field(description="trading, market, ai or real")
    task_queue: str
    workflow_pollers: int
    activity_pollers: int


class SessionLoadOut(BaseModel):
    status: str
    market_time: int
    candles_processed: int
    queued: int = Field(description="candles received and not traded yet")
    pending_writes: int = Field(description="records waiting to be written to MongoDB")
    lagging: list[str]
    degraded: dict[str, str] | None


class SystemMetricsOut(BaseModel):
    measured_at: datetime
    workers: list[QueueWorkersOut] = Field(description="worker processes polling each task queue (0: none runs)")
    websocket_clients: int = Field(description="dashboard connections to the gateway process that answered")
    events_delivered: int = Field(description="events that gateway process handed to them since it started")
    feed_subscribers_failing: int = Field(description="sessions the market feed cannot signal now (all users)")
    paper_session: SessionLoadOut
    your_events_24h: int
    your_mcp_calls_24h: int
    your_open_alerts: int


@tool("Monitoring", "authenticated", title="System metrics", read_only=True)
async def get_system_metrics() -> SystemMetricsOut:
    """What runs now, as counts: workers polling each task queue, the answering gateway's WebSocket clients and
    events delivered, the market feed's failing subscribers; and the user's paper session load (candles
    processed and queued, writes pending), events and agent calls in the last 24 hours, and open alerts."""
    call = current()
    found = await call.services.monitoring.system(call.principal)
    session = found.paper_session
    return SystemMetricsOut(
        measured_at=found.measured_at, workers=[QueueWorkersOut(**asdict(w)) for w in found.workers],
        websocket_clients=found.websocket_clients, events_delivered=found.events_delivered,
        feed_subscribers_failing=found.feed_subscribers_failing,
        paper_session=SessionLoadOut(status=session.status, market_time=session.market_time,
                                     candles_processed=session.candles_processed, queued=session.queued,
                                     pending_writes=session.pending_writes, lagging=list(session.lagging),
                                     degraded=session.degraded),
        your_events_24h=found.your_events_24h, your_mcp_calls_24h=found.your_mcp_calls_24h,
        your_open_alerts=found.your_open_alerts)
