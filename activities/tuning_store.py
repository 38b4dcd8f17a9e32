"""What self-tuning reads and writes outside its workflows.

``take_snapshot`` reads a session's settings from the session itself (a query: the version it
answers is the one an update will compare with) and stores them in ``settings_snapshots``.
``apply_changes`` sends the session one settings update with the expected version, under an update
ID derived from the proposal's, so a retried activity applies nothing twice; a refusal (another
version, a value the session will not take) is the proposal's failure, not a retry.
``record_proposal`` writes a proposal's status through: ``tuning_proposals``, ``audit_logs``,
``strategy_configs`` once applied, and a ``TuningUpdate`` event for /ws.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from pymongo.asynchronous.database import AsyncDatabase
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities import events
from activities.trade_reads import rule_suggestions
from core.contracts import (
    SessionSettingsRecord,
    SessionStatus,
    SignalIntervalInput,
    UpdateSettingsInput,
)
from core.event_types import TUNING_UPDATE
from core.tuning_contracts import (
    APPLIED,
    SESSION_SET_SIGNAL_INTERVAL,
    SESSION_SETTINGS_QUERY,
    SESSION_STATUS_QUERY,
    SESSION_UPDATE_SETTINGS,
    ApplyChangesInput,
    ApplyChangesResult,
    ProposeInput,
    Proposer,
    RecordProposalInput,
    RuleProposalsInput,
    SettingsSnapshot,
    SettingsWritten,
    TakeSnapshotInput,
)
from core.tuning_plans import changes_of, propose_input
from trading.errors import InvalidInput
from trading.setting_catalog import SETTINGS, label
from trading.tuning_table import Tier, value_in

NO_SESSION = "NoSession"


class TuningActivities:
    def __init__(self, db: AsyncDatabase, temporal: Client) -> None:
        self.db = db
        self.temporal = temporal

    async def _settings(self, session_id: str) -> SessionSettingsRecord:
        record: SessionSettingsRecord | None = await self.temporal.get_workflow_handle(session_id).query(
            SESSION_SETTINGS_QUERY, result_type=cast(type, SessionSettingsRecord | None))
        if record is None:
            raise ApplicationError(f"session {session_id} has no settings yet", type=NO_SESSION, non_retryable=True)
        return record

    @staticmethod
    async def _applied_before(handle: Any, update_id: str) -> bool:
        """Whether a previous attempt of this activity applied the update already (then the values
        moved because of it)."""
        try:
            await handle.get_update_handle(update_id).result(rpc_timeout=timedelta(seconds=5))
        except (RPCError, WorkflowUpdateFailedError):
            return False
        return True

    @activity.defn
    async def take_snapshot(self, request: TakeSnapshotInput) -> SettingsSnapshot:
        """Store the session's current settings under ``snapshot_id`` (the first write of an ID
        wins: a retry returns what the first attempt stored)."""
        found = await self.db.settings_snapshots.find_one({"snapshot_id": request.snapshot_id}, {"_id": 0})
        if found is not None:
            return SettingsSnapshot(**found)
        record = await self._settings(request.session_id)
        snapshot = SettingsSnapshot(
            snapshot_id=request.snapshot_id, user_id=request.user_id, session_id=request.session_id,
            name=request.name, automatic=request.automatic, version=record.version, interval=record.interval,
            engine_settings=record.engine_settings, analysis_settings=record.analysis_settings,
            taken_at_ms=int(datetime.now(UTC).timestamp() * 1000), reason=request.reason)
        await self.db.settings_snapshots.update_one({"snapshot_id": request.snapshot_id},
                                                    {"$setOnInsert": asdict(snapshot)}, upsert=True)
        stored = await self.db.settings_snapshots.find_one({"snapshot_id": request.snapshot_id}, {"_id": 0})
        return SettingsSnapshot(**stored) if stored else snapshot

    @activity.defn
    async def apply_changes(self, request: ApplyChangesInput) -> ApplyChangesResult:
        handle = self.temporal.get_workflow_handle(request.session_id)
        version: int | None = None
        engine: dict[str, Any] | None = None
        analysis: dict[str, Any] | None = None
        record = await self._settings(request.session_id)
        now = {path: value_in(record.engine_settings, record.analysis_settings, path)
               for path in request.expected if path in SETTINGS}
        moved = [f"{label(path)} is {now[path]!r} now, not {was!r}"
                 for path, was in request.expected.items() if path in now and now[path] != was]
        if moved and not await self._applied_before(handle, request.update_id):
            return ApplyChangesResult(applied=False, reason="the settings moved on since the proposal: "
                                                            + "; ".join(moved))
        try:
            if request.engine_patch or request.analysis_patch:
                # The version just read: nothing may change between this check and the update.
                done: SettingsWritten = await handle.execute_update(
                    SESSION_UPDATE_SETTINGS,
                    UpdateSettingsInput(request.engine_patch, request.analysis_patch, record.version),
                    id=request.update_id, result_type=SettingsWritten)
                version, engine, analysis = (done.settings.version, done.settings.engine_settings,
                                             done.settings.analysis_settings)
            if request.interval:
                await handle.execute_update(SESSION_SET_SIGNAL_INTERVAL, SignalIntervalInput(request.interval),
                                            id=f"{request.update_id}:interval")
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            reason = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
            return ApplyChangesResult(applied=False, reason=f"the session refused the change: {reason}")
        return ApplyChangesResult(applied=True, version=version, engine_settings=engine, analysis_settings=analysis)

    @activity.defn
    async def rule_proposals(self, request: RuleProposalsInput) -> list[ProposeInput]:
        """The config rules' suggestions for the session that would apply at once (GREEN, or lowering
        risk), as proposals of the rule that made each."""
        handle = self.temporal.get_workflow_handle(request.session_id)
        status: SessionStatus | None = await handle.query(SESSION_STATUS_QUERY,
                                                          result_type=cast(type, SessionStatus | None))
        record = await self._settings(request.session_id)
        if status is None:
            return []
        found, _ = await rule_suggestions(self.db, request.session_id, status.generation, status.metrics,
                                          record.engine_settings, record.analysis_settings)
        overrides = {Tier[name]: seconds for name, seconds in request.cooldown_overrides.items()}
        proposals = []
        for suggestion in found:
            if suggestion.tier not in (Tier.GREEN.name, Tier.NONE.name):
                continue
            try:
                proposals.append(propose_input(
                    user_id=request.user_id, session_id=request.session_id,
                    changes=changes_of(record.engine_settings, record.analysis_settings,
                                       {suggestion.parameter: suggestion.proposed}),
                    reason=f"{suggestion.rule}: {suggestion.reason}",
                    proposer=Proposer("rule", suggestion.rule, "worker"), version=record.version,
                    cooldown_overrides=overrides, expiry_s=0.0))
            except InvalidInput:
                continue  # outside what tuning may set (the rule's value is beyond the tuning bounds)
        return proposals

    @activity.defn
    async def record_proposal(self, request: RecordProposalInput) -> None:
        view = request.view
        doc = asdict(view)
        await self.db.tuning_proposals.update_one({"proposal_id": view.proposal_id}, {"$set": doc}, upsert=True)
        key = f"{view.proposal_id}:{request.event}"
        await self.db.audit_logs.update_one({"event_id": f"tuning:{key}"}, {"$setOnInsert": {
            "event_id": f"tuning:{key}", "at": datetime.now(UTC), "action": f"tuning_{request.event}",
            "user_id": view.user_id, "actor_id": view.decided_by or view.proposer.name,
            "ip": None, "details": _audit_details(view)}}, upsert=True)
        if view.status == APPLIED and request.engine_settings is not None:
            await self.db.strategy_configs.update_one(
                {"user_id": view.user_id, "name": f"v{view.applied_version}:{view.proposal_id}"},
                {"$setOnInsert": {
                    "config_id": uuid.uuid5(uuid.NAMESPACE_URL, key).hex, "session_id": view.session_id,
                    "version": view.applied_version, "engine_settings": request.engine_settings,
                    "analysis_settings": request.analysis_settings, "changed_by": view.proposer.name,
                    "approved_by": view.decided_by, "reason": view.reason, "created_at": datetime.now(UTC)}},
                upsert=True)
        await events.publish(self.db, [events.event_doc(TUNING_UPDATE, key, {"event": request.event, **doc},
                                                        user_id=view.user_id)])


def _audit_details(view: Any) -> dict[str, Any]:
    return {"proposal_id": view.proposal_id, "tier": view.tier, "status": view.status,
            "changes": [asdict(c) for c in view.changes], "reason": view.reason, "proposer": asdict(view.proposer),
            "session_id": view.session_id, "failure": view.failure}
