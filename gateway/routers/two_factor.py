"""``/api/auth/2fa``: two-factor authentication (TOTP) set-up, step-up, recovery codes, the step-up
notional, and (admins) who must use it. An adapter over ``services.two_factor.TwoFactor``."""

from __future__ import annotations

from fastapi import APIRouter, Response

from gateway.auth.deps import ADMIN_ERRORS, AUTH_ERRORS, STEP_UP, CurrentUser, EnrollingUser, Responses
from gateway.auth.schemas import ErrorOut
from gateway.auth.two_factor_schemas import (
    CodeIn,
    PolicyIo,
    RecoveryCodesOut,
    StepUpDoneOut,
    StepUpNotionalIn,
    TwoFactorSetupOut,
    TwoFactorStatusOut,
)
from gateway.deps import TwoFactorDep
from gateway.errors import RejectedOut
from services.principal import Principal
from services.two_factor import TwoFactor

router = APIRouter(prefix="/api/auth/2fa", tags=["auth"])

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
INVALID: Responses = {400: {"model": ErrorOut, "description": "The body is not valid JSON"},
                      422: {"model": RejectedOut, "description": "Invalid input, or a wrong or used code"}}
CONFLICT: Responses = {409: {"model": RejectedOut, "description": "Two-factor is not in the state this needs"}}
TOO_MANY: Responses = {429: {"model": ErrorOut, "description": "Too many attempts; see Retry-After"}}


async def _status(user: Principal, two_factor: TwoFactor) -> TwoFactorStatusOut:
    status = await two_factor.status(user)
    return TwoFactorStatusOut.model_validate(status, from_attributes=True)


@router.get("", response_model=TwoFactorStatusOut, responses=AUTH_ERRORS)
async def status(user: EnrollingUser, two_factor: TwoFactorDep) -> TwoFactorStatusOut:
    return await _status(user, two_factor)


@router.post("/setup", response_model=TwoFactorSetupOut, responses={**AUTH_ERRORS, **CONFLICT})
async def setup(user: EnrollingUser, two_factor: TwoFactorDep, response: Response) -> TwoFactorSetupOut:
    """A new secret for an authenticator app, waiting for its first code (POST /enable)."""
    response.headers.update(NO_STORE)
    found = await two_factor.setup(user)
    return TwoFactorSetupOut(secret=found.secret, provisioning_uri=found.provisioning_uri, qr_svg=found.qr_svg)


@router.post("/enable", response_model=RecoveryCodesOut, responses={**AUTH_ERRORS, **CONFLICT, **INVALID, **TOO_MANY})
async def enable(body: CodeIn, user: EnrollingUser, two_factor: TwoFactorDep, response: Response) -> RecoveryCodesOut:
    """Turn two-factor on with a first code. Answers the ten recovery codes, this once; your other login
    sessions end."""
    response.headers.update(NO_STORE)
    return RecoveryCodesOut(recovery_codes=await two_factor.enable(user, body.code))


@router.post("/step-up", response_model=StepUpDoneOut, responses={**AUTH_ERRORS, **CONFLICT, **INVALID, **TOO_MANY})
async def step_up(body: CodeIn, user: CurrentUser, two_factor: TwoFactorDep) -> StepUpDoneOut:
    """A fresh code (or a recovery code): money and access actions are allowed in this login session for
    5 minutes. A token refresh ends that."""
    return StepUpDoneOut(step_up_until=await two_factor.step_up(user, body.code))


@router.post("/disable", status_code=204, responses={**AUTH_ERRORS, **STEP_UP})
async def disable(user: CurrentUser, two_factor: TwoFactorDep) -> Response:
    """Needs a two-factor code from the last 5 minutes; refused where an administrator requires two-factor."""
    await two_factor.disable(user)
    return Response(status_code=204)


@router.post("/recovery-codes", response_model=RecoveryCodesOut, responses={**AUTH_ERRORS, **STEP_UP, **CONFLICT})
async def regenerate_recovery_codes(user: CurrentUser, two_factor: TwoFactorDep,
                                    response: Response) -> RecoveryCodesOut:
    """Ten new recovery codes (the old ones stop working). Needs a two-factor code from the last 5 minutes."""
    response.headers.update(NO_STORE)
    return RecoveryCodesOut(recovery_codes=await two_factor.regenerate_recovery_codes(user))


@router.put("/step-up-notional", response_model=TwoFactorStatusOut,
            responses={**AUTH_ERRORS, **STEP_UP, **CONFLICT, **INVALID})
async def set_step_up_notional(body: StepUpNotionalIn, user: CurrentUser,
                               two_factor: TwoFactorDep) -> TwoFactorStatusOut:
    """Confirming a real order above this notional needs a fresh code. Changing it needs one too."""
    await two_factor.set_step_up_notional(user, body.step_up_notional)
    return await _status(user, two_factor)


@router.get("/policy", response_model=PolicyIo, responses=ADMIN_ERRORS)
async def policy(user: CurrentUser, two_factor: TwoFactorDep) -> PolicyIo:
    return PolicyIo(require=await two_factor.policy(user))


@router.put("/policy", response_model=PolicyIo, responses={**ADMIN_ERRORS, **STEP_UP, **INVALID})
async def set_policy(body: PolicyIo, user: CurrentUser, two_factor: TwoFactorDep) -> PolicyIo:
    """Who must use two-factor: nobody, admins, or every user. Needs the admin's own recent code."""
    return PolicyIo(require=await two_factor.set_policy(user, body.require))
