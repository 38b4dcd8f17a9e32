"""Self-tuning: proposals, approvals, snapshots and restores of the caller's paper session settings.

Every change is a proposal to ``tuning:{user}`` (``TuningWorkflow``): GREEN and what lowers risk
apply at once; YELLOW and RED wait in ``approval:{user}:{n}`` for the owner, in a human session,
with the one-time token of their channel (YELLOW) or the exact approval text (RED). Tokens are
minted here, shown to their owner once, and only their HMACs (keyed by the master key) reach a
workflow. Rules, AI and agents propose through ``propose`` like a person does; none of them approves.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any, NoReturn

from pymongo.asynchronous.database import AsyncDatabase
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from activities.tuning_store import TuningActivities
from core.contracts import TASK_QUEUE_TRADING, SessionSettingsRecord, task_queue_name
from core.settings import Settings
from core.tuning_contracts import (
    AWAITING,
    TOKEN_CHANNELS,
    ApproveInput,
    AutoApply,
    IssueTokenInput,
    ProposalView,
    Proposer,
    RejectInput,
    SettingsSnapshot,
    TakeSnapshotInput,
    TuningState,
    TuningSummary,
    approval_workflow_id,
    tuning_workflow_id,
)
from core.tuning_plans import changes_of, propose_input
from services.errors import Forbidden, NotFound, Rejected
from services.idempotency import checked_key, update_id
from services.one_time_tokens import TOKEN_CHANNEL, OneTimeTokens, human_channel
from services.paper import PaperTrading
from services.principal import Principal
from services.two_factor import TwoFactor
from services.workflow_updates import (
    execute_entity_update,
    execute_update_with_start,
    unavailable,
)
from trading.errors import InvalidInput
from trading.setting_catalog import label
from trading.tuning_table import (
    NEVER_RESTORED,
    REAL_TRADING,
    TUNABLES,
    Change,
    Tier,
    Tunable,
    check_changes,
)
from workflows.trading_session import TradingSessionWorkflow
from workflows.tuning import TuningWorkflow
from workflows.tuning_approval import TuningApprovalWorkflow

# Which approval token a human channel carries.
TOKEN_PURPOSE = b"durabot approval tokens"
HISTORY_LIMIT = 200


@dataclass(frozen=True)
class ProposalCreated:
    proposal: ProposalView
    # The one-time token of the caller's channel (YELLOW, to a human session only), shown this once.
    approval_token: str | None = None


class WrongTier(Rejected):
    """A proposal of another tier than the caller allowed (``tier``: the tier it has). Nothing was proposed."""

    def __init__(self, field: str, tier: Tier, reason: str) -> None:
        super().__init__(field, reason)
        self.tier = tier


def _flatten(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


class Tuning:
    def __init__(self, settings: Settings, temporal: Client, db: AsyncDatabase, master_key: bytes,
                 paper: PaperTrading, two_factor: TwoFactor) -> None:
        self.settings = settings
        self.temporal = temporal
        self.db = db
        self.paper = paper
        self.two_factor = two_factor
        self._tokens = OneTimeTokens(master_key, TOKEN_PURPOSE)
        self._store = TuningActivities(db, temporal)

    # -- the workflows -----------------------------------------------------------------------------
    def _tuning(self, user_id: str) -> WorkflowHandle[TuningWorkflow, None]:
        return self.temporal.get_workflow_handle_for(TuningWorkflow.run, tuning_workflow_id(user_id))

    def _approval(self, user_id: str, number: int) -> WorkflowHandle[TuningApprovalWorkflow, ProposalView]:
        return self.temporal.get_workflow_handle_for(TuningApprovalWorkflow.run, approval_workflow_id(user_id, number))

    async def _update_tuning(self, user_id: str, update: Any, arg: Any, write_id: str) -> Any:
        start = WithStartWorkflowOperation(
            TuningWorkflow.run, TuningState(user_id), id=tuning_workflow_id(user_id),
            task_queue=task_queue_name(TASK_QUEUE_TRADING, self.settings.task_queue_prefix),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
        return await execute_update_with_start(self.temporal, update, arg, start=start, update_id=write_id)

    async def _repeated(self, user_id: str, write_id: str) -> ProposalView | None:
        """The answer of a proposal already made under this update ID (a repeated Idempotency-Key), if any."""
        try:
            found: ProposalView = await self._tuning(user_id).get_update_handle_for(
                TuningWorkflow.propose, write_id).result(rpc_timeout=timedelta(seconds=5))
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                return None
            raise unavailable(exc) from None
        except WorkflowUpdateFailedError:
            return None  # refused the first time: checked again, refused again with today's reason
        return found

    async def _update_approval(self, principal: Principal, number: int, update: Any, arg: Any) -> Any:
        async def closed() -> NoReturn:
            await self._raise_final(principal, number)
            raise NotFound(f"no proposal {number}")

        return await execute_entity_update(self._approval(principal.user_id, number), update, arg, closed)

    async def _raise_final(self, principal: Principal, number: int) -> None:
        """A closed approval: say how it ended (a repeat approval, a token after the end)."""
        found = await self.db.tuning_proposals.find_one({"user_id": principal.user_id, "number": number},
                                                        {"status": 1})
        if found is not None:
            raise Rejected(None, f"proposal {number} is {found['status'].lower()} already")

    # -- reads -------------------------------------------------------------------------------------
    def parameters(self) -> list[Tunable]:
        return list(TUNABLES.values())

    def cooldown_overrides(self) -> dict[Tier, float | None]:
        return {Tier.GREEN: self.settings.tuning_green_cooldown_s, Tier.YELLOW: self.settings.tuning_yellow_cooldown_s,
                Tier.RED: self.settings.tuning_red_cooldown_s}

    async def summary(self, principal: Principal) -> TuningSummary:
        try:
            found: TuningSummary = await self._tuning(principal.user_id).query(TuningWorkflow.summary)
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise unavailable(exc) from None
            return TuningSummary(principal.user_id, False, (), {}, (), 0)
        return found

    async def proposals(self, principal: Principal, status: str | None, limit: int) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"user_id": principal.user_id}
        if status:
            query["status"] = status.upper()
        return await self.db.tuning_proposals.find(query, {"_id": 0}).sort("number", -1).limit(limit).to_list()

    async def proposal(self, principal: Principal, number: int) -> dict[str, Any]:
        found = await self.db.tuning_proposals.find_one(
            {"user_id": principal.user_id, "number": number}, {"_id": 0})
        if found is None:
            raise NotFound(f"no proposal {number}")
        return found

    async def history(self, principal: Principal, limit: int) -> list[dict[str, Any]]:
        cursor = self.db.audit_logs.find({"user_id": principal.user_id, "action": {"$regex": "^tuning_"}},
                                         {"_id": 0}).sort("at", -1).limit(min(limit, HISTORY_LIMIT))
        return await cursor.to_list()

    async def snapshots(self, principal: Principal, limit: int) -> list[SettingsSnapshot]:
        cursor = self.db.settings_snapshots.find({"user_id": principal.user_id}, {"_id": 0}) \
            .sort("taken_at_ms", -1).limit(limit)
        return [SettingsSnapshot(**d) async for d in cursor]

    # -- proposing ---------------------------------------------------------------------------------
    async def _session_settings(self, principal: Principal) -> SessionSettingsRecord:
        record: SessionSettingsRecord | None = await self.paper.session(principal).query(
            TradingSessionWorkflow.settings)
        if record is None:
            raise NotFound("no paper session yet: start one before tuning it")
        return record

    async def propose(self, principal: Principal, values: dict[str, Any], reason: str, key: str | None, *,
                      proposer_kind: str = "user", proposer_name: str | None = None,
                      expected_effect: str = "", tiers: Collection[Tier] | None = None) -> ProposalCreated:
        """Propose new ``values`` (path → value) for the caller's paper session."""
        return await self.propose_for(principal, await self._session_settings(principal), values, reason, key,
                                      proposer_kind=proposer_kind, proposer_name=proposer_name,
                                      expected_effect=expected_effect, tiers=tiers)

    async def propose_for(self, principal: Principal, record: SessionSettingsRecord, values: dict[str, Any],
                          reason: str, key: str | None, *, mode: str = "paper", proposer_kind: str = "user",
                          proposer_name: str | None = None, expected_effect: str = "",
                          tiers: Collection[Tier] | None = None) -> ProposalCreated:
        """Propose new ``values`` (path → value) for the session ``record`` is of (``mode``: paper or real).
        ``tiers``: the only tiers the caller accepts (an agent whose grant reaches GREEN but not an
        approval); a proposal of another tier is refused with ``WrongTier`` before anything is proposed."""
        principal.require("sensitive")
        if not values:
            raise Rejected("changes", "a proposal changes at least one parameter")
        if REAL_TRADING.path in values:
            raise Rejected(REAL_TRADING.path, "real trading is switched on by starting a real session "
                                              "(POST /api/real-trading/start), after a RED approval")
        changes = changes_of(record.engine_settings, record.analysis_settings, values)
        return await self._submit(principal, record, changes, reason, key, proposer_kind, proposer_name,
                                  expected_effect, restoring=None, mode=mode, tiers=tiers)

    async def _submit(self, principal: Principal, record: SessionSettingsRecord, changes: list[Change], reason: str,
                      key: str | None, proposer_kind: str, proposer_name: str | None, expected_effect: str,
                      restoring: str | None, mode: str = "paper",
                      tiers: Collection[Tier] | None = None) -> ProposalCreated:
        request: dict[str, Any] = {"changes": [[c.path, c.proposed] for c in changes], "reason": reason,
                                   "restoring": restoring}
        if mode != "paper":
            request["mode"] = mode  # the same values for the real session are another proposal
        write_id = update_id(principal.user_id, "tuning.propose", checked_key(key, required=False), request)
        if key is not None and (repeated := await self._repeated(principal.user_id, write_id)) is not None:
            return self._created(principal, repeated, write_id)  # its first answer (and the same token)
        try:
            tier = check_changes(changes, restoring=restoring is not None)
            tokens = {c: self._tokens.digest(self._tokens.derived(write_id, c)) for c in TOKEN_CHANNELS} \
                if tier == Tier.YELLOW else {}
            proposal = propose_input(
                user_id=principal.user_id, session_id=record.session_id, changes=changes, reason=reason,
                proposer=Proposer(proposer_kind, proposer_name or principal.user_id, principal.channel),
                version=record.version, cooldown_overrides=self.cooldown_overrides(),
                expiry_s=self.settings.tuning_approval_expiry_s, token_hmacs=tokens, restoring=restoring,
                effect=expected_effect, mode=mode)
        except InvalidInput as exc:
            raise Rejected(exc.field, exc.reason) from None
        if tiers is not None and tier not in tiers:
            worst = max(changes, key=lambda c: c.tier)
            kind = "lowers risk" if tier == Tier.NONE else f"is a {tier.name} change"
            raise WrongTier(worst.path, tier, f"{label(worst.path)} {worst.current!r} → {worst.proposed!r} {kind}")
        view = await self._update_tuning(principal.user_id, TuningWorkflow.propose, proposal, write_id)
        return self._created(principal, view, write_id)

    async def propose_real_start(self, principal: Principal, session_id: str, reason: str,
                                 key: str | None) -> ProposalCreated:
        """The RED proposal that starts ``session_id`` (a real session): approved by a person typing its
        text with a fresh step-up, it tells the session to start (``workflows.tuning_apply``)."""
        changes = [Change(REAL_TRADING.path, 0, 1)]
        request = {"changes": [[REAL_TRADING.path, 1]], "reason": reason, "session": session_id}
        write_id = update_id(principal.user_id, "tuning.propose", checked_key(key, required=False), request)
        if key is not None and (repeated := await self._repeated(principal.user_id, write_id)) is not None:
            return self._created(principal, repeated, write_id)
        try:
            proposal = replace(propose_input(
                user_id=principal.user_id, session_id=session_id, changes=changes, reason=reason,
                proposer=Proposer("user" if principal.human else "agent", principal.user_id, principal.channel),
                version=None, cooldown_overrides=self.cooldown_overrides(),
                expiry_s=self.settings.tuning_approval_expiry_s), mode="real")
        except InvalidInput as exc:
            raise Rejected(exc.field, exc.reason) from None
        view = await self._update_tuning(principal.user_id, TuningWorkflow.propose, proposal, write_id)
        return self._created(principal, view, write_id)

    def _created(self, principal: Principal, view: ProposalView, write_id: str) -> ProposalCreated:
        """The answer to a proposal: the token of the caller's channel only to a human session, only
        while it awaits approval."""
        channel = human_channel(principal)
        shown = channel is not None and view.tier == Tier.YELLOW.name and view.status == AWAITING
        return ProposalCreated(view, self._tokens.derived(write_id, channel) if shown and channel else None)

    async def propose_suggestion(self, principal: Principal, parameter: str, key: str | None) -> ProposalCreated:
        """Turn the config-rules suggestion for ``parameter`` into a proposal (its tier decides the rest)."""
        found = await self.paper.config_suggestions(principal)
        suggestion = next((s for s in found.suggestions if s.parameter == parameter), None)
        if suggestion is None:
            raise NotFound(f"no suggestion for {label(parameter)} right now")
        return await self.propose(principal, {parameter: suggestion.proposed},
                                  f"{suggestion.rule}: {suggestion.reason}", key, proposer_kind="rule",
                                  proposer_name=suggestion.rule)

    async def write_settings_as_agent(self, principal: Principal, values: dict[str, Any], reason: str,
                                      key: str | None, *, tiers: Collection[Tier] | None = None
                                      ) -> list[ProposalCreated]:
        """An agent's settings write: parameter by parameter through the tiers (so GREEN applies and
        YELLOW or RED waits for the owner); what is not tunable is refused. ``tiers``: see ``propose_for``."""
        return [await self.propose(principal, {path: value}, reason, f"{key}.{i}" if key else None,
                                   proposer_kind="agent", proposer_name=principal.channel, tiers=tiers)
                for i, (path, value) in enumerate(values.items())]

    # -- approving ---------------------------------------------------------------------------------
    def _approver(self, principal: Principal) -> ApproveInput:
        channel = TOKEN_CHANNEL.get(principal.channel, principal.channel)
        return ApproveInput(principal.user_id, human=principal.human, channel=channel)

    async def issue_token(self, principal: Principal, number: int) -> ProposalCreated:
        """A new one-time token for the caller's channel (replacing the previous one): human sessions only."""
        channel = TOKEN_CHANNEL.get(principal.channel)
        if not principal.human or channel is None:
            raise Forbidden("approval tokens are shown only to a person in a human session")
        token = secrets.token_urlsafe(24)
        view: ProposalView = await self._update_approval(
            principal, number, TuningApprovalWorkflow.issue_token,
            IssueTokenInput(principal.user_id, True, channel, self._tokens.digest(token)))
        return ProposalCreated(view, token)

    async def approve_with_token(self, principal: Principal, number: int, token: str) -> ProposalView:
        """A YELLOW approval, with the one-time token of the caller's channel."""
        return await self._approve(principal, number, replace(self._approver(principal),
                                                              token_hmac=self._tokens.digest(token)))

    async def approve_with_text(self, principal: Principal, number: int, text: str) -> ProposalView:
        """A RED approval (the exact approval text), which also needs a two-factor step-up."""
        self.two_factor.require_step_up(principal, "approving a RED change")
        return await self._approve(principal, number, replace(self._approver(principal), text=text))

    async def _approve(self, principal: Principal, number: int, request: ApproveInput) -> ProposalView:
        view: ProposalView = await self._update_approval(principal, number, TuningApprovalWorkflow.approve, request)
        return view

    async def reject(self, principal: Principal, number: int, reason: str) -> ProposalView:
        view: ProposalView = await self._update_approval(
            principal, number, TuningApprovalWorkflow.reject, RejectInput(principal.user_id, principal.channel, reason))
        return view

    async def set_auto_apply(self, principal: Principal, enabled: bool) -> TuningSummary:
        """Whether the config rules' GREEN and risk-lowering suggestions apply by themselves (a person's
        choice: an agent may not switch it on)."""
        principal.require("sensitive")
        if enabled and not principal.human:
            raise Forbidden("only a person switches auto-apply on")
        session_id = self.paper.session(principal).workflow_id
        overrides = {tier.name: seconds for tier, seconds in self.cooldown_overrides().items() if seconds is not None}
        auto = AutoApply(enabled, session_id, self.settings.tuning_auto_apply_interval_s, overrides)
        write_id = update_id(principal.user_id, "tuning.auto_apply", None, auto)
        found: TuningSummary = await self._update_tuning(principal.user_id, TuningWorkflow.set_auto_apply, auto,
                                                         write_id)
        return found

    # -- snapshots and restore ---------------------------------------------------------------------
    async def take_snapshot(self, principal: Principal, name: str, key: str | None = None) -> SettingsSnapshot:
        """Save the paper session's settings under ``name``. With ``key``, the snapshot's ID derives from it:
        a repeat answers the first snapshot instead of taking another."""
        principal.require("sensitive")
        key = checked_key(key, required=False)
        record = await self._session_settings(principal)
        snapshot_id = hashlib.sha256(f"snapshot:{principal.user_id}:{key}".encode()).hexdigest()[:24] if key \
            else secrets.token_hex(12)
        return await self._store.take_snapshot(TakeSnapshotInput(principal.user_id, record.session_id, snapshot_id,
                                                                 name, automatic=False))

    async def restore(self, principal: Principal, snapshot_id: str, key: str | None) -> ProposalCreated:
        """Propose returning every setting to ``snapshot_id``'s values: tiered by the most dangerous
        parameter it changes, applied field for field."""
        principal.require("sensitive")
        found = await self.db.settings_snapshots.find_one({"snapshot_id": snapshot_id, "user_id": principal.user_id},
                                                          {"_id": 0})
        if found is None:
            raise NotFound("no snapshot of yours has this ID")
        snapshot = SettingsSnapshot(**found)
        record = await self._session_settings(principal)
        if snapshot.session_id != record.session_id:
            raise Rejected("snapshot_id", f"snapshot {snapshot.name!r} is of another session ({snapshot.session_id}): "
                                          "a restore returns the paper session to a snapshot of its own")
        changes = _differences(record, snapshot)
        if not changes:
            raise Rejected("snapshot_id", f"the settings equal snapshot {snapshot.name!r} already")
        kind, name = ("user", None) if principal.human else ("agent", principal.channel)
        return await self._submit(principal, record, changes, f"restore snapshot {snapshot.name!r}", key, kind, name,
                                  f"every setting as in snapshot {snapshot.name!r}", restoring=snapshot_id)


def _differences(record: SessionSettingsRecord, snapshot: SettingsSnapshot) -> list[Change]:
    changes = []
    for now, then in ((record.engine_settings, snapshot.engine_settings),
                      (record.analysis_settings, snapshot.analysis_settings)):
        current, saved = _flatten(now), _flatten(then)
        for path in sorted(set(current) | set(saved)):
            if path.split(".")[0] in NEVER_RESTORED or current.get(path) == saved.get(path):
                continue
            changes.append(Change(path, current.get(path), saved.get(path)))
    return changes
