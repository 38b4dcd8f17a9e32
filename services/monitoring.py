"""Monitoring of one user: their alerts, the risk and the performance of their paper session, the calls
their agents made on the MCP server, the security events of their account, and what runs for them.

Every query names the caller's ``user_id`` or session, so another user's record is never found. What
the system runs (workers polling each task queue, this gateway's WebSocket clients) is given as counts
only: nothing of another user shows through them. Every figure is read or derived from what the
components record; none is estimated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from activities.market_feed import subscribers_config_key
from core.contracts import TASK_QUEUES, SessionStatus, task_queue_name
from core.settings import Settings
from services.errors import Unavailable
from services.event_hub import EventHub
from services.paper import PaperTrading
from services.principal import Principal
from trading.broker import effective_stop
from trading.models import Position
from trading.risk import loss_at_stop

# Alerts about what every user shares (the exchange banning this server's IP): they name no user.
SHARED_ALERT_KINDS = ("exchange_ip_ban",)
# Audit details that stay in the dashboard: a key's masked form says which key, and agents need no key.
HIDDEN_DETAILS = frozenset({"api_key"})
RECENT = timedelta(hours=24)


@dataclass(frozen=True)
class Alert:
    alert_id: str
    kind: str
    severity: str
    message: str
    created_at: datetime
    resolved_at: datetime | None
    shared: bool  # about the system every user shares, not about this user's own sessions
    session_id: str | None


@dataclass(frozen=True)
class OpenPositionRisk:
    trade_id: int
    symbol: str
    side: str
    quantity: float
    entry_price: float
    notional_at_entry: float
    leverage: int
    margin: float
    liquidation_price: float
    stop: float | None  # the stop loss or the trailing stop, whichever is nearer
    loss_at_stop: float | None  # None: no stop, the loss is unbounded


@dataclass(frozen=True)
class RiskView:
    session_id: str
    status: str
    market_time: int
    entries_enabled: bool
    equity: float
    cash: float
    unrealised: float
    margin_in_use: float
    available: float
    margin_ratio: float | None  # margin in use / equity
    notional_at_entry: float
    open_risk: float | None  # loss if every stop is hit; None while a position has no stop
    open_risk_limit: float  # max_portfolio_risk_pct of equity, what the engine's check allows
    max_drawdown: float | None
    exposure: float | None
    leverage: int
    limits: dict[str, Any]  # the session's risk settings (trading.settings.RiskSettings)
    positions: list[OpenPositionRisk]
    degraded: dict[str, str] | None


@dataclass(frozen=True)
class PerformanceView:
    session_id: str
    status: str
    generation: int
    metrics: dict[str, Any] | None  # trading.running_metrics.RunningMetrics.snapshot()
    days: list[dict[str, Any]]  # performance_metrics rows (trading.running_metrics.DayClosed), newest first


@dataclass(frozen=True)
class QueueWorkers:
    role: str
    task_queue: str
    workflow_pollers: int
    activity_pollers: int


@dataclass(frozen=True)
class SystemMetrics:
    measured_at: datetime
    workers: list[QueueWorkers]
    websocket_clients: int  # connected to this gateway process
    events_delivered: int  # by this gateway process since it started
    feed_subscribers_failing: int
    paper_session: SessionStatus
    your_events_24h: int
    your_mcp_calls_24h: int
    your_open_alerts: int


class Monitoring:
    def __init__(self, settings: Settings, temporal: Client, db: AsyncDatabase, paper: PaperTrading,
                 hub: EventHub) -> None:
        self.settings = settings
        self.temporal = temporal
        self.db = db
        self.paper = paper
        self.hub = hub

    def _alerts_query(self, principal: Principal) -> dict[str, Any]:
        return {"$or": [{"user_id": principal.user_id}, {"kind": {"$in": list(SHARED_ALERT_KINDS)}}]}

    async def alerts(self, principal: Principal, limit: int, include_resolved: bool = True) -> list[Alert]:
        """The caller's alerts (real sessions halting, …) and those every user shares, newest first."""
        query = self._alerts_query(principal)
        if not include_resolved:
            query["resolved_at"] = None
        cursor = self.db.monitoring_alerts.find(query, {"_id": 0}).sort("created_at", -1).limit(limit)
        return [Alert(alert_id=d["alert_id"], kind=d.get("kind", ""), severity=d.get("severity", "warning"),
                      message=d.get("message", ""), created_at=d["created_at"], resolved_at=d.get("resolved_at"),
                      shared=d.get("user_id") != principal.user_id, session_id=d.get("session_id"))
                async for d in cursor]

    async def risk(self, principal: Principal) -> RiskView:
        """The paper session's risk now: margin, notional, the loss at every stop against the engine's
        portfolio-risk limit, drawdown so far, and the risk limits in force."""
        view = await self.paper.status(principal)
        status = view.status
        portfolio = await self.paper.portfolio(principal)
        basic = (await self.paper.settings_view(principal)).basic
        positions = [_position_risk(p, float(basic["taker_fee"])) for p in portfolio.positions]
        account = portfolio.account
        equity = float(account["equity"])
        losses = [p.loss_at_stop for p in positions]
        metrics = status.metrics or {}
        limits = dict(basic["risk"])
        return RiskView(
            session_id=status.workflow_id, status=status.status, market_time=status.market_time,
            entries_enabled=status.entries_enabled, equity=equity, cash=float(account["cash"]),
            unrealised=float(account["unrealised"]), margin_in_use=float(account["margin_in_use"]),
            available=float(account["available"]),
            margin_ratio=float(account["margin_in_use"]) / equity if equity > 0 else None,
            notional_at_entry=sum(p.notional_at_entry for p in positions),
            open_risk=None if None in losses else sum(x for x in losses if x is not None),
            open_risk_limit=equity * float(limits["max_portfolio_risk_pct"]) / 100,
            max_drawdown=metrics.get("max_drawdown"), exposure=metrics.get("exposure"),
            leverage=int(basic["leverage"]), limits=limits, positions=positions, degraded=status.degraded)

    async def performance(self, principal: Principal, days: int) -> PerformanceView:
        """The paper session's metrics since its last reset and its last ``days`` closed UTC days."""
        status = (await self.paper.status(principal)).status
        cursor = self.db.performance_metrics.find(
            {"session_id": status.workflow_id, "user_id": principal.user_id, "generation": status.generation},
            {"_id": 0, "session_id": 0, "user_id": 0}).sort("date", -1).limit(days)
        return PerformanceView(session_id=status.workflow_id, status=status.status, generation=status.generation,
                               metrics=status.metrics, days=await cursor.to_list())

    async def mcp_calls(self, principal: Principal, limit: int, tool: str | None = None) -> list[dict[str, Any]]:
        """The tool calls agents made for the caller (``gateway.mcp.registry`` audits each), newest first."""
        query: dict[str, Any] = {"user_id": principal.user_id}
        if tool is not None:
            query["tool"] = tool
        cursor = self.db.mcp_audit.find(query, {"_id": 0, "user_id": 0}).sort("at", -1).limit(limit)
        return await cursor.to_list()

    async def security_events(self, principal: Principal, limit: int,
                              action: str | None = None) -> list[dict[str, Any]]:
        """The caller's account's security events (logins, keys saved, two-factor, grants), newest first."""
        query: dict[str, Any] = {"user_id": principal.user_id}
        if action is not None:
            query["action"] = action
        cursor = self.db.audit_logs.find(query, {"_id": 0}).sort("at", -1).limit(limit)
        return [{**d, "details": {k: v for k, v in (d.get("details") or {}).items() if k not in HIDDEN_DETAILS}}
                async for d in cursor]

    async def system(self, principal: Principal) -> SystemMetrics:
        """Workers polling each task queue, this gateway's WebSocket clients, the market feed's failing
        subscribers (a count), and the caller's session, events, agent calls and open alerts."""
        now = datetime.now(UTC)
        since = now - RECENT
        failing = await self.db.system_config.find_one({"key": subscribers_config_key(self.settings.market_source)})
        open_alerts = {**self._alerts_query(principal), "resolved_at": None}
        return SystemMetrics(
            measured_at=now, workers=[await self._workers(role) for role in TASK_QUEUES],
            websocket_clients=len(self.hub.subscribers), events_delivered=self.hub.delivered,
            feed_subscribers_failing=len((failing or {}).get("value") or {}),
            paper_session=(await self.paper.status(principal)).status,
            your_events_24h=await self.db.events.count_documents(
                {"user_id": principal.user_id, "created_at": {"$gte": since}}),
            your_mcp_calls_24h=await self.db.mcp_audit.count_documents(
                {"user_id": principal.user_id, "at": {"$gte": since}}),
            your_open_alerts=await self.db.monitoring_alerts.count_documents(open_alerts))

    async def _workers(self, role: str) -> QueueWorkers:
        queue = task_queue_name(role, self.settings.task_queue_prefix)
        counts = []
        for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
            try:
                reply = await self.temporal.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                    namespace=self.settings.temporal_namespace, task_queue=TaskQueue(name=queue),
                    task_queue_type=kind))
            except RPCError as exc:
                raise Unavailable(f"Temporal did not describe task queue {queue}: {exc.message}") from None
            counts.append(len(reply.pollers))
        return QueueWorkers(role=role, task_queue=queue, workflow_pollers=counts[0], activity_pollers=counts[1])


def _position_risk(found: dict[str, Any], taker_fee: float) -> OpenPositionRisk:
    position = Position.from_dict(found)
    stop, _ = effective_stop(position)
    loss = loss_at_stop(position.side, position.quantity, position.entry_price, stop, taker_fee)
    return OpenPositionRisk(
        trade_id=position.trade_id, symbol=position.symbol, side=position.side.value, quantity=position.quantity,
        entry_price=position.entry_price, notional_at_entry=position.quantity * position.entry_price,
        leverage=position.leverage, margin=position.margin, liquidation_price=position.liquidation_price,
        stop=stop, loss_at_stop=None if math.isinf(loss) else loss)
