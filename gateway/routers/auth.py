"""``/api/auth``: register, login, refresh, logout, me, login sessions, and (admins) users and roles.
An adapter over ``services.accounts.Accounts``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response

from gateway.auth.deps import ADMIN_ERRORS, AUTH_ERRORS, AdminUser, CurrentUser, EnrollingUser, Responses, client_ip
from gateway.auth.schemas import (
    ErrorOut,
    LoginIn,
    ProfileUpdate,
    RefreshIn,
    RegisterIn,
    RoleUpdate,
    SessionOut,
    TokenOut,
    UserOut,
)
from gateway.auth.two_factor_schemas import LoginChallengeOut, LoginCodeIn
from gateway.deps import AccountsDep
from gateway.errors import RejectedOut
from services.accounts import Caller, LoginChallenge
from services.auth.sessions import TokenPair

router = APIRouter(prefix="/api/auth", tags=["auth"])

SessionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
UserId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[a-z2-7]+$")]
TOO_MANY: Responses = {429: {"model": ErrorOut, "description": "Too many attempts; see Retry-After"}}
INVALID: Responses = {400: {"model": ErrorOut, "description": "The body is not valid JSON"},
                      422: {"description": "Invalid input"}}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _caller(request: Request) -> Caller:
    return Caller(client_ip(request), request.headers.get("user-agent"))


def _user_out(doc: dict[str, Any]) -> UserOut:
    return UserOut(user_id=doc["user_id"], email=doc["email"], role=doc["role"], display_name=doc["display_name"],
                   created_at=doc["created_at"])


def _token_out(pair: TokenPair, response: Response) -> TokenOut:
    response.headers.update(NO_STORE)
    now = int(datetime.now(UTC).timestamp())
    return TokenOut(access_token=pair.access.token, refresh_token=pair.refresh.token,
                    expires_in=pair.access.expires_at - now, refresh_expires_in=pair.refresh.expires_at - now,
                    session_id=pair.session_id)


@router.post("/register", status_code=201, response_model=UserOut,
             responses={409: {"model": RejectedOut, "description": "Email already registered"}, **TOO_MANY, **INVALID})
async def register(body: RegisterIn, request: Request, accounts: AccountsDep) -> UserOut:
    """Create an account with the `user` role (admins come from `durabot user create --admin`)."""
    return _user_out(await accounts.register(_caller(request), body.email, body.password, body.display_name))


@router.post("/login", response_model=TokenOut | LoginChallengeOut,
             responses={401: {"model": ErrorOut, "description": "Wrong email or password"}, **TOO_MANY, **INVALID})
async def login(body: LoginIn, request: Request, response: Response,
                accounts: AccountsDep) -> TokenOut | LoginChallengeOut:
    """Rate-limited per IP and per email; unknown emails take as long as wrong passwords. With two-factor on,
    the answer is a challenge, not tokens: send it with a code to /login/2fa."""
    found = await accounts.login(_caller(request), body.email, body.password)
    if isinstance(found, LoginChallenge):
        response.headers.update(NO_STORE)
        return LoginChallengeOut(challenge=found.challenge, expires_in=found.expires_in)
    return _token_out(found, response)


@router.post("/login/2fa", response_model=TokenOut,
             responses={401: {"model": ErrorOut, "description": "Wrong, used or expired code, or an unknown or "
                                                                "expired login"}, **TOO_MANY, **INVALID})
async def login_with_code(body: LoginCodeIn, request: Request, response: Response, accounts: AccountsDep) -> TokenOut:
    """The code step of a two-factor login: the challenge from /login and a code (each accepted once) or a
    recovery code. Rate-limited per user and per IP."""
    return _token_out(await accounts.login_with_code(_caller(request), body.challenge, body.code), response)


@router.post("/refresh", response_model=TokenOut,
             responses={401: {"model": ErrorOut, "description": "Invalid, expired, revoked or reused refresh token"},
                        **INVALID})
async def refresh(body: RefreshIn, request: Request, response: Response, accounts: AccountsDep) -> TokenOut:
    """Swap a refresh token for a new pair. The old one stops working; presenting it again revokes the session."""
    return _token_out(await accounts.refresh(_caller(request), body.refresh_token), response)


@router.post("/logout", status_code=204, responses=AUTH_ERRORS)
async def logout(user: EnrollingUser, accounts: AccountsDep) -> Response:
    """End this login session: its access and refresh tokens stop working at once."""
    await accounts.logout(user)
    return Response(status_code=204)


@router.get("/me", response_model=UserOut, responses=AUTH_ERRORS)
async def me(user: EnrollingUser, accounts: AccountsDep) -> UserOut:
    return _user_out(await accounts.me(user))


@router.patch("/me", response_model=UserOut, responses={**AUTH_ERRORS, **INVALID})
async def update_me(body: ProfileUpdate, user: CurrentUser, accounts: AccountsDep) -> UserOut:
    """Only the profile fields listed in the schema; anything else (e.g. `role`) is a 422."""
    return _user_out(await accounts.update_me(user, body.display_name))


@router.get("/sessions", response_model=list[SessionOut], responses=AUTH_ERRORS)
async def sessions(user: CurrentUser, accounts: AccountsDep) -> list[SessionOut]:
    return [SessionOut(session_id=d["session_id"], created_at=d["created_at"], last_used_at=d["last_used_at"],
                       expires_at=d["expires_at"], ip=d.get("ip"), user_agent=d.get("user_agent", ""),
                       current=d["session_id"] == user.session_id)
            for d in await accounts.sessions(user)]


@router.delete("/sessions/{session_id}", status_code=204,
               responses={**AUTH_ERRORS, 404: {"model": ErrorOut, "description": "No such live session of yours"},
                          **INVALID})
async def end_session(session_id: SessionId, user: CurrentUser, accounts: AccountsDep) -> Response:
    """Sign out one of your sessions (e.g. a lost device)."""
    await accounts.end_session(user, session_id)
    return Response(status_code=204)


@router.get("/users", response_model=list[UserOut], responses=ADMIN_ERRORS)
async def users(admin: AdminUser, accounts: AccountsDep) -> list[UserOut]:
    return [_user_out(d) for d in await accounts.users(admin)]


@router.put("/users/{user_id}/role", response_model=UserOut,
            responses={**ADMIN_ERRORS, 404: {"model": ErrorOut, "description": "No such user"},
                       409: {"model": RejectedOut, "description": "Admins cannot demote themselves"}, **INVALID})
async def change_role(user_id: UserId, body: RoleUpdate, admin: AdminUser, accounts: AccountsDep) -> UserOut:
    """The only way to change a role. Audited with the acting admin."""
    return _user_out(await accounts.change_role(admin, user_id, body.role))
