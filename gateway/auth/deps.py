"""FastAPI dependencies: the ``Principal`` behind a bearer token.

``CurrentUser``: a valid access token of a live session (the database confirms it on every request,
so logout, revocation and demotion take effect at once); where an admin requires two-factor
authentication, only once the user has it (``EnrollingUser`` until then). ``RiskReducer``: the same, except that when
the database does not answer, a session confirmed live within the last minute is enough, so stop and
close work through a MongoDB outage. ``AdminUser``: a ``CurrentUser`` with the admin role (else 403).
Every failure is a 401 with ``WWW-Authenticate: Bearer`` (RFC 6750).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from gateway.deps import AccountsDep
from gateway.errors import StepUpOut
from services.errors import Unauthenticated
from services.principal import Principal

bearer_scheme = HTTPBearer(auto_error=False, description="An access token from /api/auth/login or /refresh.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("missing bearer token")
    return credentials.credentials


async def current_user(credentials: Credentials, request: Request, accounts: AccountsDep) -> Principal:
    found = await accounts.authenticate(_token(credentials), "rest", ip=client_ip(request))
    return found.principal


async def enrolling_user(credentials: Credentials, request: Request, accounts: AccountsDep) -> Principal:
    found = await accounts.authenticate(_token(credentials), "rest", ip=client_ip(request), enrolling=True)
    return found.principal


async def risk_reducer(credentials: Credentials, request: Request, accounts: AccountsDep) -> Principal:
    found = await accounts.authenticate(_token(credentials), "rest", reduces_risk=True, ip=client_ip(request))
    return found.principal


async def admin_user(user: Annotated[Principal, Depends(current_user)]) -> Principal:
    user.require_admin()
    return user


CurrentUser = Annotated[Principal, Depends(current_user)]
RiskReducer = Annotated[Principal, Depends(risk_reducer)]
# A CurrentUser even where an admin requires two-factor authentication and the user has not set it up
# yet: for setting it up, reading the profile and logging out.
EnrollingUser = Annotated[Principal, Depends(enrolling_user)]
AdminUser = Annotated[Principal, Depends(admin_user)]

Responses = dict[int | str, dict[str, Any]]

AUTH_ERRORS: Responses = {
    401: {"description": "Missing, invalid or expired access token, or an ended session"},
}
STEP_UP: Responses = {
    403: {"model": StepUpOut, "description": "Needs a two-factor code from the last 5 minutes (`step_up`: "
                                             "`code`), or two-factor set up first (`enrol`)"},
}
ADMIN_ERRORS: Responses = {
    **AUTH_ERRORS, 403: {"description": "The caller is not an admin"},
}
