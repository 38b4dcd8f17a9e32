"""TuningApprovalWorkflow ``approval:{user}:{n}``: one YELLOW or RED proposal, from AWAITING to its end.

PROPOSED → AWAITING → APPROVED | REJECTED | EXPIRED → APPLIED | FAILED. The owner's approval races
the expiry timer. ``approve`` is an update whose validator refuses, before anything is written,
whatever is not the owner in a human session with the right one-time token (YELLOW; each human
channel has its own, of which only the HMAC is here) or the exact approval text (RED). Once final,
the approval tells ``tuning:{user}``, which frees its parameters and starts their cooldowns.
"""

from __future__ import annotations

import hmac
from dataclasses import replace
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core.contracts import SA_MODE, SA_STATE, SA_USER
    from core.tuning_contracts import (
        APPROVED,
        AWAITING,
        EXPIRED,
        FINAL_STATES,
        PROPOSED,
        REJECTED,
        SIGNAL_APPROVAL_FINISHED,
        TOKEN_CHANNELS,
        ApprovalFinished,
        ApprovalInput,
        ApproveInput,
        IssueTokenInput,
        ProposalView,
        RejectInput,
    )
    from trading.tuning_table import Tier
    from workflows.session_rules import FORBIDDEN, NOT_FOUND, rejected
    from workflows.tuning_apply import apply_proposal, now_ms, record, reserved, reserved_cooldowns



@workflow.defn
class TuningApprovalWorkflow:
    @workflow.init
    def __init__(self, request: ApprovalInput) -> None:
        proposal = request.proposal
        self._input = request
        self._tokens: dict[str, str] = dict(proposal.token_hmacs)
        self._view = ProposalView(
            proposal_id=f"{proposal.user_id}:{request.number}", user_id=proposal.user_id,
            session_id=proposal.session_id, mode=proposal.mode, number=request.number,
            tier=Tier(proposal.tier).name, status=PROPOSED, changes=proposal.changes, reason=proposal.reason,
            proposer=proposal.proposer, expected_effect=proposal.expected_effect,
            created_at_ms=request.created_at_ms, expires_at_ms=request.expires_at_ms,
            approval_text=proposal.approval_text, restoring=proposal.restoring)

    @workflow.run
    async def run(self, request: ApprovalInput) -> ProposalView:
        self._set(replace(self._view, status=AWAITING))
        await record(self._view, "awaiting")
        try:
            await workflow.wait_condition(lambda: self._view.status != AWAITING,
                                          timeout=timedelta(milliseconds=max(1, request.expires_at_ms - now_ms())))
        except TimeoutError:
            if self._view.status == AWAITING:  # an approval that came with the timer wins
                self._set(replace(self._view, status=EXPIRED, decided_at_ms=now_ms(), decided_by="expiry"))
        if self._view.status == APPROVED:
            self._set(await apply_proposal(self._view, request.proposal))
        else:
            await record(self._view, self._view.status.lower())
        proposal = request.proposal
        finished = ApprovalFinished(self._view.proposal_id, self._view.status,
                                    tuple(reserved(proposal.mode, c.path) for c in proposal.changes),
                                    reserved_cooldowns(proposal))
        await workflow.get_external_workflow_handle(request.parent_id).signal(SIGNAL_APPROVAL_FINISHED, finished)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._view

    def _set(self, view: ProposalView) -> None:
        self._view = view
        workflow.upsert_search_attributes([SA_USER.value_set(view.user_id), SA_MODE.value_set(view.mode),
                                           SA_STATE.value_set(view.status)])

    # ------------------------------------------------------------------ approving
    def _check_owner(self, user_id: str) -> None:
        if user_id != self._view.user_id:
            raise rejected(f"no proposal {self._view.number}", kind=NOT_FOUND)

    def _check_awaiting(self) -> None:
        if self._view.status != AWAITING:
            raise rejected(f"proposal {self._view.number} is {self._view.status.lower()} already, nothing to approve")
        if self._view.expires_at_ms is not None and now_ms() >= self._view.expires_at_ms:
            raise rejected(f"proposal {self._view.number} expired")

    @workflow.update
    async def approve(self, approval: ApproveInput) -> ProposalView:
        self._set(replace(self._view, status=APPROVED, decided_at_ms=now_ms(), decided_by=approval.channel))
        await workflow.wait_condition(lambda: self._view.status in FINAL_STATES)
        return self._view

    @approve.validator
    def _validate_approve(self, approval: ApproveInput) -> None:
        self._check_owner(approval.user_id)
        if not approval.human:
            raise rejected("only a person in a human session approves; an agent may propose, never approve",
                           kind=FORBIDDEN)
        self._check_awaiting()
        if self._view.tier == Tier.RED.name:
            if approval.text != self._view.approval_text:
                raise rejected(f"type exactly: {self._view.approval_text}", "text")
            return
        expected = self._tokens.get(approval.channel)
        if expected is None or approval.token_hmac is None:
            raise rejected(f"no approval token was issued for {approval.channel}", "token")
        if not hmac.compare_digest(expected, approval.token_hmac):
            raise rejected("the approval token does not match (a newer one may have replaced it)", "token")

    @workflow.update
    def issue_token(self, request: IssueTokenInput) -> ProposalView:
        self._tokens[request.channel] = request.token_hmac
        return self._view

    @issue_token.validator
    def _validate_issue_token(self, request: IssueTokenInput) -> None:
        self._check_owner(request.user_id)
        if not request.human:
            raise rejected("approval tokens are shown only to a person in a human session", kind=FORBIDDEN)
        if request.channel not in TOKEN_CHANNELS:
            raise rejected(f"no approval tokens for channel {request.channel}", "channel")
        if self._view.tier == Tier.RED.name:
            raise rejected("a RED proposal is approved by typing its approval text, not with a token")
        self._check_awaiting()

    @workflow.update
    def reject(self, request: RejectInput) -> ProposalView:
        reason = f"{self._view.reason} (rejected: {request.reason})" if request.reason else self._view.reason
        self._set(replace(self._view, status=REJECTED, decided_at_ms=now_ms(), decided_by=request.channel,
                          failure=request.reason or None, reason=reason))
        return self._view

    @reject.validator
    def _validate_reject(self, request: RejectInput) -> None:
        # Refusing a change lowers risk: any channel of the owner may, an agent's included.
        self._check_owner(request.user_id)
        if self._view.status != AWAITING:
            raise rejected(f"proposal {self._view.number} is {self._view.status.lower()} already, nothing to reject")

    @workflow.query
    def view(self) -> ProposalView:
        return self._view
