"""``/api/auth``: register, login, refresh, logout, me, login sessions, and (admins) users and roles."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from pymongo import ReturnDocument

from gateway.auth.audit import record_audit
from gateway.auth.deps import (
    ADMIN_ERRORS,
    AUTH_ERRORS,
    AdminUser,
    AuthDep,
    CurrentUser,
    Responses,
    client_ip,
    unauthorized,
)
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
from gateway.auth.secret_safe_route import SecretSafeRoute
from gateway.auth.sessions import (
    RefreshReuseError,
    TokenPair,
    list_sessions,
    open_session,
    revoke_session,
    rotate_refresh_token,
)
from gateway.auth.tokens import InvalidTokenError
from gateway.auth.users import EmailTakenError, create_user, find_user, find_user_by_email, set_role
from gateway.deps import DbDep

router = APIRouter(prefix="/api/auth", tags=["auth"], route_class=SecretSafeRoute)

SessionId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
UserId = Annotated[str, Path(min_length=1, max_length=32, pattern=r"^[a-z2-7]+$")]
TOO_MANY: Responses = {429: {"model": ErrorOut, "description": "Too many attempts; see Retry-After"}}
INVALID: Responses = {400: {"model": ErrorOut, "description": "The body is not valid JSON"},
                      422: {"description": "Invalid input"}}
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _user_out(doc: dict[str, Any]) -> UserOut:
    return UserOut(user_id=doc["user_id"], email=doc["email"], role=doc["role"], display_name=doc["display_name"],
                   created_at=doc["created_at"])


def _token_out(pair: TokenPair, response: Response) -> TokenOut:
    response.headers.update(NO_STORE)
    now = int(datetime.now(UTC).timestamp())
    return TokenOut(access_token=pair.access.token, refresh_token=pair.refresh.token,
                    expires_in=pair.access.expires_at - now, refresh_expires_in=pair.refresh.expires_at - now,
                    session_id=pair.session_id)


def _too_many(retry_after: int) -> HTTPException:
    return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, detail="too many attempts; try again later",
                         headers={"Retry-After": str(retry_after)})


@router.post("/register", status_code=201, response_model=UserOut,
             responses={409: {"model": ErrorOut, "description": "Email already registered"}, **TOO_MANY, **INVALID})
async def register(body: RegisterIn, request: Request, auth: AuthDep, db: DbDep) -> UserOut:
    """Create an account with the `user` role (admins come from `durabot user create --admin`)."""
    ip = client_ip(request)
    # Each registration costs a bcrypt hash: the per-IP login budget bounds that work too.
    wait = auth.login_attempts_by_ip.retry_after(ip)
    if wait:
        raise _too_many(wait)
    auth.login_attempts_by_ip.record(ip)
    try:
        doc = await create_user(db, auth.hasher, body.email, body.password, display_name=body.display_name)
    except EmailTakenError:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="email already registered") from None
    await record_audit(db, "register", user_id=doc["user_id"], ip=ip)
    return _user_out(doc)


@router.post("/login", response_model=TokenOut,
             responses={401: {"model": ErrorOut, "description": "Wrong email or password"}, **TOO_MANY, **INVALID})
async def login(body: LoginIn, request: Request, response: Response, auth: AuthDep, db: DbDep) -> TokenOut:
    """Rate-limited per IP and per email; unknown emails take as long as wrong passwords."""
    ip, email_key = client_ip(request), body.email.strip().lower()
    wait = auth.login_attempts_by_ip.retry_after(ip) or auth.login_failures_by_email.retry_after(email_key)
    if wait:
        raise _too_many(wait)
    auth.login_attempts_by_ip.record(ip)
    user = await find_user_by_email(db, body.email)
    if not await auth.hasher.verify(body.password, user["password_hash"] if user else None):
        auth.login_failures_by_email.record(email_key)
        await record_audit(db, "login_failed", user_id=user["user_id"] if user else None, ip=ip,
                           details={"email": email_key})
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="wrong email or password")
    assert user is not None
    pair = await open_session(db, auth.tokens, user["user_id"], ip=ip, user_agent=request.headers.get("user-agent"))
    await record_audit(db, "login", user_id=user["user_id"], ip=ip, details={"session_id": pair.session_id})
    return _token_out(pair, response)


@router.post("/refresh", response_model=TokenOut,
             responses={401: {"model": ErrorOut, "description": "Invalid, expired, revoked or reused refresh token"},
                        **INVALID})
async def refresh(body: RefreshIn, request: Request, response: Response, auth: AuthDep, db: DbDep) -> TokenOut:
    """Swap a refresh token for a new pair. The old one stops working; presenting it again revokes the session."""
    try:
        pair = await rotate_refresh_token(db, auth.tokens, body.refresh_token)
    except RefreshReuseError as reuse:
        await record_audit(db, "refresh_reuse_detected", user_id=reuse.user_id, ip=client_ip(request),
                           details={"session_id": reuse.session_id})
        raise unauthorized(reuse.reason) from None
    except InvalidTokenError as exc:
        raise unauthorized(exc.reason) from None
    return _token_out(pair, response)


@router.post("/logout", status_code=204, responses=AUTH_ERRORS)
async def logout(user: CurrentUser, request: Request, db: DbDep) -> Response:
    """End this login session: its access and refresh tokens stop working at once."""
    await revoke_session(db, user.session_id, user.user_id, "logout")
    await record_audit(db, "logout", user_id=user.user_id, ip=client_ip(request),
                       details={"session_id": user.session_id})
    return Response(status_code=204)


@router.get("/me", response_model=UserOut, responses=AUTH_ERRORS)
async def me(user: CurrentUser, db: DbDep) -> UserOut:
    doc = await find_user(db, user.user_id)
    if doc is None:
        raise unauthorized("user no longer exists")
    return _user_out(doc)


@router.patch("/me", response_model=UserOut, responses={**AUTH_ERRORS, **INVALID})
async def update_me(body: ProfileUpdate, user: CurrentUser, db: DbDep) -> UserOut:
    """Only the profile fields listed in the schema; anything else (e.g. `role`) is a 422."""
    doc = await db.users.find_one_and_update(
        {"user_id": user.user_id}, {"$set": {"display_name": body.display_name, "updated_at": datetime.now(UTC)}},
        return_document=ReturnDocument.AFTER)
    if doc is None:
        raise unauthorized("user no longer exists")
    return _user_out(doc)


@router.get("/sessions", response_model=list[SessionOut], responses=AUTH_ERRORS)
async def sessions(user: CurrentUser, db: DbDep) -> list[SessionOut]:
    return [SessionOut(session_id=d["session_id"], created_at=d["created_at"], last_used_at=d["last_used_at"],
                       expires_at=d["expires_at"], ip=d.get("ip"), user_agent=d.get("user_agent", ""),
                       current=d["session_id"] == user.session_id)
            for d in await list_sessions(db, user.user_id)]


@router.delete("/sessions/{session_id}", status_code=204,
               responses={**AUTH_ERRORS, 404: {"model": ErrorOut, "description": "No such live session of yours"},
                          **INVALID})
async def end_session(session_id: SessionId, user: CurrentUser, request: Request, db: DbDep) -> Response:
    """Sign out one of your sessions (e.g. a lost device)."""
    if not await revoke_session(db, session_id, user.user_id, "revoked_by_user"):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such session")
    await record_audit(db, "session_revoked", user_id=user.user_id, ip=client_ip(request),
                       details={"session_id": session_id})
    return Response(status_code=204)


@router.get("/users", response_model=list[UserOut], responses=ADMIN_ERRORS)
async def users(admin: AdminUser, db: DbDep) -> list[UserOut]:
    return [_user_out(d) async for d in db.users.find().sort("created_at", 1).limit(1000)]


@router.put("/users/{user_id}/role", response_model=UserOut,
            responses={**ADMIN_ERRORS, 404: {"model": ErrorOut, "description": "No such user"},
                       409: {"model": ErrorOut, "description": "Admins cannot demote themselves"}, **INVALID})
async def change_role(user_id: UserId, body: RoleUpdate, admin: AdminUser, request: Request, db: DbDep) -> UserOut:
    """The only way to change a role. Audited with the acting admin."""
    if user_id == admin.user_id and body.role != "admin":
        raise HTTPException(status.HTTP_409_CONFLICT, detail="admins cannot remove their own admin role")
    previous = await set_role(db, user_id, body.role)
    if previous is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such user")
    await record_audit(db, "role_changed", user_id=user_id, actor_id=admin.user_id, ip=client_ip(request),
                       details={"from": previous, "to": body.role})
    doc = await find_user(db, user_id)
    assert doc is not None
    return _user_out(doc)
