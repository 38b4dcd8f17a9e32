"""API shapes of /api/auth (pydantic), separate from the stored documents.

Inputs forbid unknown fields: a ``role`` (or any other field) sent to register or to a profile
update is a 422, never silently stored or ignored (OWASP API3, mass assignment).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from services.auth.passwords import MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS
from services.auth.users import EMAIL_PATTERN, Role, normalize_email

# Normalised (trimmed, lower-cased) during validation, so an address that stops being valid once
# lower-cased (some characters grow) is a 422 rather than a surprise later.
Email = Annotated[str, Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN, examples=["ada@example.com"]),
                  AfterValidator(normalize_email)]
DisplayName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorOut(BaseModel):
    detail: str | list[dict[str, object]]


class RegisterIn(StrictModel):
    email: Email
    password: str = Field(
        min_length=MIN_PASSWORD_CHARS, max_length=MAX_PASSWORD_CHARS,
        description=f"{MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters; every character counts (no 72-byte cut).",
    )
    display_name: DisplayName | None = None


class LoginIn(StrictModel):
    email: str = Field(min_length=1, max_length=254)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_CHARS)


class RefreshIn(StrictModel):
    refresh_token: str = Field(min_length=1, max_length=4096)


class TokenOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds until the access token expires")
    refresh_expires_in: int = Field(description="seconds until the refresh token expires (it rotates on use)")
    session_id: str


class UserOut(BaseModel):
    user_id: str = Field(description="short, permanent ID (used in workflow IDs)")
    email: str
    role: Role
    display_name: str
    created_at: datetime


class ProfileUpdate(StrictModel):
    display_name: DisplayName


class RoleUpdate(StrictModel):
    role: Role


class SessionOut(BaseModel):
    session_id: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str
    current: bool
