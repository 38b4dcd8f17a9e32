"""API shapes of /api/auth/2fa and the code step of a two-factor login (pydantic)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from gateway.auth.schemas import StrictModel
from services.auth.step_up import Policy

Code = Field(min_length=6, max_length=32, description="the 6 digits an authenticator app shows now, or a recovery "
                                                      "code (xxxxx-xxxxx)", examples=["123456"])


class LoginChallengeOut(BaseModel):
    """The password was right; the account has two-factor on: send a code with this challenge."""

    two_factor_required: Literal[True] = True
    challenge: str
    expires_in: int = Field(description="seconds the code step may still follow")


class LoginCodeIn(StrictModel):
    challenge: str = Field(min_length=1, max_length=128)
    code: str = Code


class CodeIn(StrictModel):
    code: str = Code


class TwoFactorStatusOut(BaseModel):
    enabled: bool
    enabled_at: datetime | None
    recovery_codes_left: int
    step_up_until: datetime | None = Field(description="until when this login session may take money and access "
                                                       "actions without another code")
    required: bool = Field(description="an administrator requires two-factor authentication of this account")
    step_up_notional: float = Field(description="confirming a real order above this notional needs a fresh code")


class TwoFactorSetupOut(BaseModel):
    secret: str = Field(description="base32, for typing into an authenticator app by hand")
    provisioning_uri: str = Field(description="otpauth:// URI (the QR code's content)")
    qr_svg: str = Field(description="the QR code as an SVG data URI")


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str] = Field(description="shown this once: each works once in place of a code")


class StepUpDoneOut(BaseModel):
    step_up_until: datetime


class StepUpNotionalIn(StrictModel):
    step_up_notional: float = Field(ge=0, le=1e12, allow_inf_nan=False)


class PolicyIo(StrictModel):
    require: Policy = Field(description="off: nobody must; admins: admins must; all: every user must")
