"""TuningWorkflow ``tuning:{user}``: a user's self-tuning, for good.

It owns the user's cooldowns (durable timers), which parameters have a proposal awaiting approval,
and the recent GREEN changes. ``propose`` checks a proposal against them before anything is
written: a parameter cooling down or awaiting another proposal is refused with the reason. GREEN
(and what only lowers risk) is applied at once: snapshot, session update, record. YELLOW and RED
start a ``TuningApprovalWorkflow`` each, which reports back when final.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.tuning_store import TuningActivities
    from core.contracts import SA_USER
    from core.tuning_contracts import (
        APPLIED,
        AWAITING,
        PROPOSED,
        SIGNAL_APPROVAL_FINISHED,
        ApprovalFinished,
        ApprovalInput,
        AutoApply,
        CooldownView,
        ProposalView,
        ProposeInput,
        RuleProposalsInput,
        TuningState,
        TuningSummary,
        approval_workflow_id,
    )
    from trading.errors import InvalidInput
    from trading.setting_catalog import label
    from trading.tuning_table import Tier, check_changes
    from workflows.session_rules import CONFLICT, NOT_FOUND, rejected
    from workflows.tuning_apply import (
        BOUNDED,
        STEP_TIMEOUT,
        apply_proposal,
        as_changes,
        now_ms,
        record,
        reserved,
        reserved_cooldowns,
    )
    from workflows.tuning_approval import TuningApprovalWorkflow

RECENT = 20



def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@workflow.defn
class TuningWorkflow:
    @workflow.init
    def __init__(self, state: TuningState) -> None:
        self._user = state.user_id
        self._next = state.next_number
        self._cooldowns: dict[str, int] = dict(state.cooldowns)
        self._pending: dict[str, str] = dict(state.pending)
        self._recent: tuple[ProposalView, ...] = state.recent
        self._auto = state.auto_apply
        self._timers: set[asyncio.Task[None]] = set()
        self._applying = 0  # proposals between reserving their parameters and freeing them

    @workflow.run
    async def run(self, state: TuningState) -> None:
        workflow.upsert_search_attributes([SA_USER.value_set(self._user)])
        for path, until in list(self._cooldowns.items()):
            self._start_cooldown(path, until)
        auto = asyncio.create_task(self._auto_apply())
        await workflow.wait_condition(lambda: workflow.info().is_continue_as_new_suggested()
                                      and workflow.all_handlers_finished() and self._applying == 0)
        auto.cancel()
        workflow.continue_as_new(self._state())

    def _state(self) -> TuningState:
        return TuningState(self._user, self._next, dict(self._cooldowns), dict(self._pending), self._recent,
                           self._auto)

    # ------------------------------------------------------------------ auto-apply
    def _auto_changed(self, since: AutoApply) -> bool:
        return self._auto != since

    async def _auto_apply(self) -> None:
        """While on: every interval, propose the config rules' GREEN and risk-lowering suggestions."""
        while True:
            await workflow.wait_condition(lambda: self._auto.enabled)
            settings = self._auto
            try:
                await workflow.wait_condition(partial(self._auto_changed, settings),
                                              timeout=timedelta(seconds=settings.interval_s))
                continue  # switched off or changed meanwhile: wait anew
            except TimeoutError:
                pass
            try:
                found = await workflow.execute_activity_method(
                    TuningActivities.rule_proposals,
                    RuleProposalsInput(self._user, settings.session_id, dict(settings.cooldown_overrides)),
                    start_to_close_timeout=STEP_TIMEOUT, retry_policy=BOUNDED)
            except ActivityError as exc:
                workflow.logger.warning("auto-apply could not read the suggestions: %s", exc.cause or exc)
                continue
            for proposal in found:
                try:
                    self._check(proposal)
                except ApplicationError as exc:
                    workflow.logger.info("auto-apply skips %s: %s", proposal.changes[0].path, exc.message)
                    continue
                await self._run(proposal)

    # ------------------------------------------------------------------ cooldowns
    def _start_cooldown(self, path: str, until: int) -> None:
        self._cooldowns[path] = until
        task = asyncio.create_task(self._cool(path, until))
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _cool(self, path: str, until: int) -> None:
        wait_ms = until - now_ms()
        if wait_ms > 0:
            await workflow.sleep(wait_ms / 1000)
        if self._cooldowns.get(path) == until:
            del self._cooldowns[path]

    def _cooling(self, path: str) -> int | None:
        until = self._cooldowns.get(path)
        return until if until is not None and until > now_ms() else None

    # ------------------------------------------------------------------ proposing
    def _check(self, proposal: ProposeInput) -> None:
        """Refuse (before anything is written) what the tiers, cooldowns or another proposal forbid."""
        if proposal.user_id != self._user:
            raise rejected("this tuning belongs to another user", kind=NOT_FOUND)
        try:
            tier = check_changes(as_changes(proposal.changes), restoring=proposal.restoring is not None)
        except InvalidInput as exc:
            raise rejected(exc.reason, exc.field) from None
        if tier != proposal.tier:
            raise rejected(f"the proposal is {Tier(tier).name}, not {Tier(proposal.tier).name}", "tier")
        for change in as_changes(proposal.changes):
            other = self._pending.get(reserved(proposal.mode, change.path))
            if other is not None:
                raise rejected(f"{label(change.path)} has proposal {other.rsplit(':', 1)[-1]} awaiting approval",
                               change.path, CONFLICT)
            until = self._cooling(reserved(proposal.mode, change.path))
            if until is not None and change.tier != Tier.NONE and proposal.restoring is None:
                raise rejected(f"{label(change.path)} changed recently and cools down until {_iso(until)}",
                               change.path, CONFLICT)

    @workflow.update
    async def propose(self, proposal: ProposeInput) -> ProposalView:
        # Checked again: proposals accepted in one workflow task passed their validators together.
        self._check(proposal)
        return await self._run(proposal)

    async def _run(self, proposal: ProposeInput) -> ProposalView:
        """Reserve the parameters (no await before: atomic), then apply or start the approval."""
        number, self._next = self._next, self._next + 1
        proposal_id = f"{self._user}:{number}"
        paths = [reserved(proposal.mode, c.path) for c in proposal.changes]
        for path in paths:
            self._pending[path] = proposal_id
        view = ProposalView(
            proposal_id=proposal_id, user_id=self._user, session_id=proposal.session_id, mode=proposal.mode,
            number=number, tier=Tier(proposal.tier).name, status=PROPOSED, changes=proposal.changes,
            reason=proposal.reason, proposer=proposal.proposer, expected_effect=proposal.expected_effect,
            created_at_ms=now_ms(), expires_at_ms=None, approval_text=proposal.approval_text,
            restoring=proposal.restoring)
        self._applying += 1
        try:
            if proposal.tier >= Tier.YELLOW:
                expires = view.created_at_ms + int(proposal.expiry_s * 1000)
                view = replace(view, status=AWAITING, expires_at_ms=expires)
                await record(view, "created")
                await workflow.start_child_workflow(
                    TuningApprovalWorkflow.run,
                    ApprovalInput(proposal, number, view.created_at_ms, expires, workflow.info().workflow_id),
                    id=approval_workflow_id(self._user, number), parent_close_policy=ParentClosePolicy.ABANDON)
                return view
            await record(view, "created")
            done = await apply_proposal(view, proposal)
            self._finish(ApprovalFinished(proposal_id, done.status, tuple(paths), reserved_cooldowns(proposal)))
            self._recent = (done, *self._recent)[:RECENT]
            return done
        finally:
            self._applying -= 1

    @propose.validator
    def _validate_propose(self, proposal: ProposeInput) -> None:
        self._check(proposal)

    @workflow.signal(name=SIGNAL_APPROVAL_FINISHED)
    def approval_finished(self, finished: ApprovalFinished) -> None:
        self._finish(finished)

    def _finish(self, finished: ApprovalFinished) -> None:
        for path in finished.paths:
            if self._pending.get(path) == finished.proposal_id:
                del self._pending[path]
        if finished.status != APPLIED:
            return
        for path, seconds in finished.cooldowns_s.items():
            if seconds > 0:
                self._start_cooldown(path, now_ms() + int(seconds * 1000))

    # ------------------------------------------------------------------ preferences and reads
    @workflow.update
    def set_auto_apply(self, auto: AutoApply) -> TuningSummary:
        self._auto = auto
        return self.summary()

    @workflow.query
    def summary(self) -> TuningSummary:
        now = now_ms()
        cooling = tuple(CooldownView(path, until) for path, until in sorted(self._cooldowns.items()) if until > now)
        return TuningSummary(self._user, self._auto.enabled, cooling, dict(self._pending), self._recent, now)

