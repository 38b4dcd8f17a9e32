"""The caller's real session ``session:{user}:real``: start it through a RED approval, stop it, stop or
resume its entries, adopt the exchange's positions, reconcile, read its status and ledger.

Starting is a person's decision twice over: the request needs a fresh two-factor step-up and creates
a RED proposal (``Tuning.propose_real_start``), and approving that proposal needs its exact text and
another step-up. The session trades the paper session's settings and analysis (the same decisions),
on USDⓈ-M futures, with the caller's saved API key. Stopping, stopping entries and flattening are
never blocked and need no step-up; adopting the exchange's positions is a person's decision.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any, NoReturn

from pymongo.asynchronous.database import AsyncDatabase
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from core.contracts import TASK_QUEUE_REAL, SessionSettingsRecord, task_queue_name
from core.real_session_contracts import (
    REAL_NEW,
    AdoptInput,
    ConfigureRealSessionInput,
    RealEntriesInput,
    RealSessionConfig,
    RealSessionState,
    RealSessionStatus,
    StopRealSessionInput,
    real_session_workflow_id,
)
from core.settings import Settings
from services.errors import Forbidden, NotFound, Rejected
from services.exchange_symbols import ExchangeSymbols
from services.idempotency import checked_key, update_id
from services.paper import PaperTrading
from services.principal import Principal
from services.real_orders import RealOrders
from services.tuning import ProposalCreated, Tuning
from services.two_factor import TwoFactor
from services.workflow_updates import (
    execute_entity_update,
    execute_update_with_start,
    unavailable,
)
from trading.settings import EngineSettings, MarketType
from trading.tuning_table import Tier
from workflows.real_session import RealSessionWorkflow
from workflows.trading_session import TradingSessionWorkflow

LEDGER_LIMIT = 500


@dataclass(frozen=True)
class RealStartRequest:
    symbols: tuple[str, ...] = ()
    interval: str | None = None
    key_id: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class RealStartRequested:
    """The session as configured, and the RED proposal whose approval starts it."""

    session: RealSessionStatus
    proposal: ProposalCreated


class RealSessions:
    def __init__(self, settings: Settings, temporal: Client, db: AsyncDatabase, exchange: ExchangeSymbols,
                 paper: PaperTrading, tuning: Tuning, orders: RealOrders, two_factor: TwoFactor) -> None:
        self.settings = settings
        self.temporal = temporal
        self.db = db
        self.exchange = exchange
        self.paper = paper
        self.tuning = tuning
        self.orders = orders
        self.two_factor = two_factor

    def _handle(self, user_id: str) -> WorkflowHandle[RealSessionWorkflow, None]:
        return self.temporal.get_workflow_handle_for(RealSessionWorkflow.run, real_session_workflow_id(user_id))

    # -- reads -------------------------------------------------------------------------------------
    async def status(self, principal: Principal) -> RealSessionStatus:
        try:
            found: RealSessionStatus = await self._handle(principal.user_id).query(RealSessionWorkflow.status)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise unavailable(exc) from None
            return _never_started(principal.user_id)
        return found

    async def trading_settings(self, principal: Principal) -> SessionSettingsRecord:
        """The settings the caller's real session trades (404 before it was configured)."""
        try:
            found: SessionSettingsRecord | None = await self._handle(principal.user_id).query(
                RealSessionWorkflow.settings)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise unavailable(exc) from None
            found = None
        if found is None:
            raise NotFound("no real session: request a start first")
        return found

    async def _configured(self, principal: Principal) -> SessionSettingsRecord | None:
        try:
            return await self.trading_settings(principal)
        except NotFound:
            return None

    async def change_settings(self, principal: Principal, values: dict[str, Any], reason: str,
                              key: str | None, *, tiers: Collection[Tier] | None = None) -> ProposalCreated:
        """Change what the real session trades through the tuning tiers: what lowers risk and GREEN apply
        at once (a new leverage is set on the exchange first), YELLOW and RED wait for the owner. A real
        session's parameters cool down apart from the paper session's. ``tiers``: see ``Tuning.propose_for``."""
        record = await self.trading_settings(principal)
        return await self.tuning.propose_for(principal, record, values, reason or "real session settings", key,
                                             mode="real", proposer_kind="user" if principal.human else "agent",
                                             proposer_name=None if principal.human else principal.channel,
                                             tiers=tiers)

    async def ledger(self, principal: Principal, limit: int = 100) -> list[dict[str, Any]]:
        """The exchange's records booked for the caller (fills and income), newest first."""
        cursor = self.db.real_ledger.find({"user_id": principal.user_id}, {"_id": 0, "booked_at": 0}) \
            .sort("time_ms", -1).limit(min(limit, LEDGER_LIMIT))
        return await cursor.to_list()

    # -- starting ----------------------------------------------------------------------------------
    async def request_start(self, principal: Principal, request: RealStartRequest,
                            key: str | None) -> RealStartRequested:
        """Configure the session with the paper session's settings and propose its start (RED). An agent
        with a critical grant may request it too: the approval (typed text, fresh step-up) is a person's."""
        if principal.human:
            self.two_factor.require_step_up(principal, "starting a real session")
        else:
            principal.require("critical")
        checked_key(key, required=True)
        key_id = await self.orders.key_id_of(principal, request.key_id)
        # Settings tuned for the real session (through the tiers) stay its own at a new start; the paper
        # session's are the first start's.
        record = await self._configured(principal) or await self.paper.session(principal).query(
            TradingSessionWorkflow.settings)
        symbols = tuple(request.symbols or (record.symbols if record else ()))
        interval = request.interval or (record.interval if record else "")
        if not symbols or not interval:
            raise Rejected("symbols", "name the symbols and interval (or start a paper session to trade its own)")
        engine = dict(record.engine_settings) if record else EngineSettings().to_dict()
        engine["market"] = MarketType.FUTURES.value
        specs = await self.exchange.specs_for(symbols, MarketType.FUTURES, engine.get("account_currency", "USDT"))
        engine["symbols"] = [asdict(spec) for spec in specs]
        config = RealSessionConfig(
            key_id=key_id, source=self.settings.market_source, symbols=symbols, interval=interval,
            engine_settings=engine, analysis_settings=dict(record.analysis_settings) if record else {},
            timing=self.orders.timing(), protection_confirm_s=self.settings.real_protection_confirm_s,
            reconcile_every_s=self.settings.real_reconcile_every_s, run_events=self.settings.real_session_run_events)
        write_id = update_id(principal.user_id, "real.configure", key, asdict(config))
        session: RealSessionStatus = await self._configure(principal.user_id, config, write_id)
        reason = request.reason or f"start real trading of {', '.join(symbols)} {interval}"
        proposal = await self.tuning.propose_real_start(principal, session.workflow_id, reason, key)
        return RealStartRequested(session, proposal)

    async def _configure(self, user_id: str, config: RealSessionConfig, write_id: str) -> RealSessionStatus:
        start = WithStartWorkflowOperation(
            RealSessionWorkflow.run, RealSessionState(user_id=user_id), id=real_session_workflow_id(user_id),
            task_queue=task_queue_name(TASK_QUEUE_REAL, self.settings.task_queue_prefix),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        done: RealSessionStatus = await execute_update_with_start(
            self.temporal, RealSessionWorkflow.configure, ConfigureRealSessionInput(user_id, config), start=start,
            update_id=write_id)
        return done

    # -- steering ----------------------------------------------------------------------------------
    async def _update(self, principal: Principal, update: Any, arg: Any) -> RealSessionStatus:
        async def closed() -> NoReturn:
            raise NotFound("no real session: request a start first")

        done: RealSessionStatus = await execute_entity_update(self._handle(principal.user_id), update, arg, closed)
        return done

    async def stop(self, principal: Principal, flatten: bool, reason: str = "") -> RealSessionStatus:
        """Stop (never blocked): entries end at once; with ``flatten`` every position is closed."""
        return await self._update(principal, RealSessionWorkflow.stop,
                                  StopRealSessionInput(principal.user_id, flatten, reason))

    async def set_entries(self, principal: Principal, enabled: bool) -> RealSessionStatus:
        """Stopping entries is never blocked; resuming them is a person's decision, once nothing differs."""
        return await self._update(principal, RealSessionWorkflow.set_entries,
                                  RealEntriesInput(principal.user_id, enabled, principal.human))

    async def adopt(self, principal: Principal) -> RealSessionStatus:
        """Take the exchange's positions as the session's (a person, with a fresh step-up)."""
        if not principal.human:
            raise Forbidden("only a person adopts positions into a real session")
        self.two_factor.require_step_up(principal, "adopting the exchange's positions")
        return await self._update(principal, RealSessionWorkflow.adopt, AdoptInput(principal.user_id, True))

    async def reconcile(self, principal: Principal) -> RealSessionStatus:
        return await self._update(principal, RealSessionWorkflow.reconcile_now, principal.user_id)


def _never_started(user_id: str) -> RealSessionStatus:
    return RealSessionStatus(
        workflow_id=real_session_workflow_id(user_id), user_id=user_id, status=REAL_NEW, entries_enabled=False,
        halted_reason="", symbols=(), interval="", key_id=None, approval_id=None, positions=(), pending_orders={},
        alerts=(), report=None, market_time=0, last_open_time={}, candles_processed=0, orders_sent=0, queued=0,
        model_equity=0.0, revision=0)
