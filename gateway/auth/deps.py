"""FastAPI dependencies: ``CurrentUser`` (a valid access token of a live session) and ``AdminUser``.

Every failure is a 401 with ``WWW-Authenticate: Bearer`` (RFC 6750); a valid user without the
admin role gets 403 from ``AdminUser``. The role comes from the database on every request, so a
demotion takes effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pymongo.asynchronous.database import AsyncDatabase

from gateway.auth.services import AuthServices
from gateway.auth.sessions import active_session
from gateway.auth.tokens import InvalidTokenError
from gateway.auth.users import Role, find_user
from gateway.deps import DbDep, State

bearer_scheme = HTTPBearer(auto_error=False, description="An access token from /api/auth/login or /refresh.")


@dataclass(frozen=True)
class User:
    user_id: str
    email: str
    role: Role
    display_name: str
    created_at: datetime
    session_id: str
    token_expires_at: int

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def get_auth(state: State) -> AuthServices:
    if state.auth is None:
        raise RuntimeError("the gateway was started without auth services")
    return state.auth


AuthDep = Annotated[AuthServices, Depends(get_auth)]


def unauthorized(reason: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=reason,
                         headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def authenticate_access_token(token: str, auth: AuthServices, db: AsyncDatabase) -> User:
    """The user a bearer token stands for; raises ``InvalidTokenError`` with a reason."""
    claims = auth.tokens.verify(token, "access")
    if await active_session(db, claims.session_id, claims.user_id) is None:
        raise InvalidTokenError("session ended (logged out or revoked)")
    doc = await find_user(db, claims.user_id)
    if doc is None:
        raise InvalidTokenError("user no longer exists")
    return User(user_id=doc["user_id"], email=doc["email"], role=doc["role"], display_name=doc["display_name"],
                created_at=doc["created_at"], session_id=claims.session_id,
                token_expires_at=claims.expires_at)


async def current_user(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)], auth: AuthDep, db: DbDep
) -> User:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise unauthorized("missing bearer token")
    try:
        return await authenticate_access_token(credentials.credentials, auth, db)
    except InvalidTokenError as exc:
        raise unauthorized(exc.reason) from None


CurrentUser = Annotated[User, Depends(current_user)]


async def admin_user(user: CurrentUser) -> User:
    if not user.is_admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="admin role required")
    return user


AdminUser = Annotated[User, Depends(admin_user)]

Responses = dict[int | str, dict[str, Any]]

AUTH_ERRORS: Responses = {
    401: {"description": "Missing, invalid or expired access token, or an ended session"},
}
ADMIN_ERRORS: Responses = {
    **AUTH_ERRORS, 403: {"description": "The caller is not an admin"},
}
