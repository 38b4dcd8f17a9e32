"""``/api/settings``: exchange API keys, notification preferences, web push subscriptions.

Every query names the caller's ``user_id``, so another user's key or subscription is a 404, the
same as one that does not exist. Exchange keys are sealed (AES-GCM, bound to user and key ID) before
they are stored, returned only masked, and decrypted only to sign the exchange test calls.
"""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from pymongo.errors import DuplicateKeyError

from activities.binance.key_vault import ApiCredentials, KeyVaultError, open_credentials, seal_credentials
from activities.binance.signed import ApiRestrictions, SignedBinanceClient
from activities.exchange_errors import PermanentExchangeError, TemporaryExchangeError
from gateway.auth.audit import record_audit
from gateway.auth.deps import AUTH_ERRORS, AuthDep, CurrentUser, Responses, client_ip
from gateway.auth.schemas import ErrorOut
from gateway.auth.secret_safe_route import SecretSafeRoute
from gateway.auth.settings_schemas import (
    ApiKeyIn,
    ApiKeyOut,
    ApiRestrictionsOut,
    KeyTestOut,
    NotificationPreferences,
    PushSubscriptionIn,
    PushSubscriptionOut,
)
from gateway.deps import DbDep, SettingsDep

log = logging.getLogger("durabot.gateway.settings")

router = APIRouter(prefix="/api/settings", tags=["settings"], route_class=SecretSafeRoute)

MAX_KEYS_PER_USER = 20
MAX_PUSH_SUBSCRIPTIONS_PER_USER = 20
ObjectId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
INVALID: Responses = {400: {"model": ErrorOut, "description": "The body is not valid JSON"},
                      422: {"description": "Invalid input"}}
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such object of yours"}}
WITHDRAWALS_WARNING = ("DANGER: this key can WITHDRAW funds. Anyone who obtains it can empty the account. "
                       "Create a key with withdrawals disabled.")
NO_IP_WARNING = ("WARNING: this key has no IP allowlist: it works from any address. "
                 "Restrict it to this server's IP on the exchange.")


def _not_found(what: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no such {what}")


def _key_out(doc: dict[str, Any]) -> ApiKeyOut:
    return ApiKeyOut(key_id=doc["key_id"], label=doc["label"], exchange=doc["exchange"],
                     api_key_masked=doc["api_key_masked"], created_at=doc["created_at"],
                     last_test=KeyTestOut.model_validate(doc["last_test"]) if doc.get("last_test") else None)


# -- exchange API keys ------------------------------------------------------------------------------
@router.get("/api-keys", response_model=list[ApiKeyOut], responses=AUTH_ERRORS)
async def list_api_keys(user: CurrentUser, db: DbDep) -> list[ApiKeyOut]:
    return [_key_out(d) async for d in db.api_keys.find({"user_id": user.user_id}).sort("created_at", 1)]


@router.post("/api-keys", status_code=201, response_model=ApiKeyOut,
             responses={**AUTH_ERRORS, 409: {"model": ErrorOut, "description": "Too many keys"}, **INVALID})
async def save_api_key(body: ApiKeyIn, user: CurrentUser, auth: AuthDep, request: Request, db: DbDep) -> ApiKeyOut:
    """Store a key pair encrypted; the reply shows only its last 4 characters."""
    if await db.api_keys.count_documents({"user_id": user.user_id}) >= MAX_KEYS_PER_USER:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"at most {MAX_KEYS_PER_USER} keys per user")
    credentials = ApiCredentials(body.api_key.get_secret_value(), body.api_secret.get_secret_value())
    key_id = secrets.token_urlsafe(12)
    doc = {"user_id": user.user_id, "key_id": key_id, "label": body.label, "exchange": body.exchange,
           "api_key_masked": credentials.masked_key, "created_at": datetime.now(UTC), "last_test": None,
           **seal_credentials(auth.keyring, user.user_id, key_id, credentials)}
    await db.api_keys.insert_one(doc)
    await record_audit(db, "api_key_saved", user_id=user.user_id, ip=client_ip(request),
                       details={"key_id": key_id, "exchange": body.exchange, "api_key": credentials.masked_key})
    return _key_out(doc)


@router.delete("/api-keys/{key_id}", status_code=204, responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID})
async def delete_api_key(key_id: ObjectId, user: CurrentUser, request: Request, db: DbDep) -> Response:
    done = await db.api_keys.delete_one({"user_id": user.user_id, "key_id": key_id})
    if done.deleted_count == 0:
        raise _not_found("API key")
    await record_audit(db, "api_key_deleted", user_id=user.user_id, ip=client_ip(request), details={"key_id": key_id})
    return Response(status_code=204)


@router.post("/api-keys/{key_id}/test", response_model=KeyTestOut,
             responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID,
                        409: {"model": ErrorOut, "description": "The stored key cannot be decrypted; save it again"},
                        502: {"model": ErrorOut, "description": "The exchange could not be reached or failed"}})
async def test_api_key(key_id: ObjectId, user: CurrentUser, auth: AuthDep, settings: SettingsDep, request: Request,
                       db: DbDep) -> KeyTestOut:
    """Signed calls to the exchange's `/api/v3/account` and `/sapi/v1/account/apiRestrictions`: what the key
    may do, with loud warnings for withdrawal rights or a missing IP allowlist."""
    doc = await db.api_keys.find_one({"user_id": user.user_id, "key_id": key_id})
    if doc is None:
        raise _not_found("API key")
    try:
        credentials = open_credentials(auth.keyring, doc)
    except KeyVaultError as exc:
        log.error("stored API key cannot be decrypted", extra={"fields": {"key_id": key_id, "error": str(exc)}})
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail="the stored key cannot be decrypted; save it again") from None
    result = KeyTestOut(key_id=key_id, ok=False, tested_at=datetime.now(UTC))
    try:
        async with SignedBinanceClient(settings.exchange_rest_url, credentials) as exchange:
            await exchange.sync_time()
            account = await exchange.account()
            restrictions = await exchange.api_restrictions()
    except PermanentExchangeError as exc:
        result.error = f"the exchange refused the key: {exc}"
    except TemporaryExchangeError as exc:
        log.warning("exchange unavailable for a key test", extra={"fields": {"key_id": key_id, "error": str(exc)}})
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, detail=f"the exchange is unavailable: {exc}") from None
    else:
        result = KeyTestOut(
            key_id=key_id, ok=True, tested_at=result.tested_at, account_type=account.account_type,
            can_trade=account.can_trade, can_withdraw=account.can_withdraw, can_deposit=account.can_deposit,
            permissions=list(account.permissions), restrictions=_restrictions_out(restrictions),
            warnings=_warnings(restrictions, account.can_withdraw))
        if result.warnings:
            log.warning("exchange key is over-privileged",
                        extra={"fields": {"user_id": user.user_id, "key_id": key_id, "warnings": result.warnings}})
    await db.api_keys.update_one({"user_id": user.user_id, "key_id": key_id},
                                 {"$set": {"last_test": result.model_dump(mode="python")}})
    await record_audit(db, "api_key_tested", user_id=user.user_id, ip=client_ip(request),
                       details={"key_id": key_id, "ok": result.ok, "warnings": len(result.warnings)})
    return result


def _restrictions_out(r: ApiRestrictions) -> ApiRestrictionsOut:
    return ApiRestrictionsOut(
        ip_restrict=r.ip_restrict, enable_reading=r.enable_reading,
        enable_spot_and_margin_trading=r.enable_spot_and_margin_trading, enable_withdrawals=r.enable_withdrawals,
        enable_internal_transfer=r.enable_internal_transfer, enable_margin=r.enable_margin,
        enable_futures=r.enable_futures, permits_universal_transfer=r.permits_universal_transfer)


def _warnings(restrictions: ApiRestrictions, can_withdraw: bool) -> list[str]:
    warnings = []
    if restrictions.enable_withdrawals or can_withdraw:
        warnings.append(WITHDRAWALS_WARNING)
    if not restrictions.ip_restrict:
        warnings.append(NO_IP_WARNING)
    return warnings


# -- notification preferences ------------------------------------------------------------------------
@router.get("/notifications", response_model=NotificationPreferences, responses=AUTH_ERRORS)
async def get_notifications(user: CurrentUser, db: DbDep) -> NotificationPreferences:
    doc = await db.users.find_one({"user_id": user.user_id}, {"notification_preferences": 1})
    stored = (doc or {}).get("notification_preferences")
    return NotificationPreferences.model_validate(stored) if stored else NotificationPreferences()


@router.put("/notifications", response_model=NotificationPreferences, responses={**AUTH_ERRORS, **INVALID})
async def put_notifications(body: NotificationPreferences, user: CurrentUser, db: DbDep) -> NotificationPreferences:
    await db.users.update_one({"user_id": user.user_id},
                              {"$set": {"notification_preferences": body.model_dump(),
                                        "updated_at": datetime.now(UTC)}})
    return body


# -- web push subscriptions --------------------------------------------------------------------------
def _push_out(doc: dict[str, Any]) -> PushSubscriptionOut:
    return PushSubscriptionOut(subscription_id=doc["subscription_id"], endpoint=doc["endpoint"],
                               created_at=doc["created_at"])


@router.get("/push-subscriptions", response_model=list[PushSubscriptionOut], responses=AUTH_ERRORS)
async def list_push_subscriptions(user: CurrentUser, db: DbDep) -> list[PushSubscriptionOut]:
    return [_push_out(d) async for d in db.push_subscriptions.find({"user_id": user.user_id}).sort("created_at", 1)]


@router.post("/push-subscriptions", status_code=201, response_model=PushSubscriptionOut,
             responses={**AUTH_ERRORS, **INVALID,
                        409: {"model": ErrorOut, "description": "Already subscribed, or too many subscriptions"}})
async def add_push_subscription(body: PushSubscriptionIn, user: CurrentUser, db: DbDep) -> PushSubscriptionOut:
    if await db.push_subscriptions.count_documents({"user_id": user.user_id}) >= MAX_PUSH_SUBSCRIPTIONS_PER_USER:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            detail=f"at most {MAX_PUSH_SUBSCRIPTIONS_PER_USER} push subscriptions per user")
    doc = {"user_id": user.user_id, "subscription_id": secrets.token_urlsafe(12), "endpoint": body.endpoint,
           "keys": body.keys.model_dump(), "expiration_time": body.expirationTime, "created_at": datetime.now(UTC)}
    try:
        await db.push_subscriptions.insert_one(doc)
    except DuplicateKeyError:
        raise HTTPException(status.HTTP_409_CONFLICT, detail="this endpoint is already subscribed") from None
    return _push_out(doc)


@router.delete("/push-subscriptions/{subscription_id}", status_code=204,
               responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID})
async def delete_push_subscription(subscription_id: ObjectId, user: CurrentUser, db: DbDep) -> Response:
    done = await db.push_subscriptions.delete_one({"user_id": user.user_id, "subscription_id": subscription_id})
    if done.deleted_count == 0:
        raise _not_found("push subscription")
    return Response(status_code=204)
