"""``/api/settings``: exchange API keys, notification preferences, web push subscriptions. An adapter
over ``services.user_settings.UserSettings``: another user's key or subscription is a 404, keys come
back only masked."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from gateway.auth.deps import AUTH_ERRORS, STEP_UP, CurrentUser, Responses
from gateway.auth.schemas import ErrorOut
from gateway.auth.settings_schemas import (
    ApiKeyIn,
    ApiKeyOut,
    KeyTestOut,
    NotificationPreferences,
    PushSubscriptionIn,
    PushSubscriptionOut,
)
from gateway.deps import UserSettingsDep
from gateway.errors import RejectedOut

router = APIRouter(prefix="/api/settings", tags=["settings"])

ObjectId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
INVALID: Responses = {400: {"model": ErrorOut, "description": "The body is not valid JSON"},
                      422: {"description": "Invalid input"}}
NOT_FOUND: Responses = {404: {"model": ErrorOut, "description": "No such object of yours"}}


def _key_out(doc: dict[str, Any]) -> ApiKeyOut:
    return ApiKeyOut(key_id=doc["key_id"], label=doc["label"], exchange=doc["exchange"],
                     api_key_masked=doc["api_key_masked"], created_at=doc["created_at"],
                     last_test=KeyTestOut.model_validate(doc["last_test"]) if doc.get("last_test") else None)


# -- exchange API keys ------------------------------------------------------------------------------
@router.get("/api-keys", response_model=list[ApiKeyOut], responses=AUTH_ERRORS)
async def list_api_keys(user: CurrentUser, settings: UserSettingsDep) -> list[ApiKeyOut]:
    return [_key_out(d) for d in await settings.api_keys(user)]


@router.post("/api-keys", status_code=201, response_model=ApiKeyOut,
             responses={**AUTH_ERRORS, **STEP_UP, 409: {"model": RejectedOut, "description": "Too many keys"},
                        **INVALID})
async def save_api_key(body: ApiKeyIn, user: CurrentUser, settings: UserSettingsDep) -> ApiKeyOut:
    """Store a key pair encrypted; the reply shows only its last 4 characters. Needs a recent two-factor code."""
    return _key_out(await settings.save_api_key(user, body.label, body.exchange, body.api_key.get_secret_value(),
                                                body.api_secret.get_secret_value()))


@router.delete("/api-keys/{key_id}", status_code=204, responses={**AUTH_ERRORS, **STEP_UP, **NOT_FOUND, **INVALID})
async def delete_api_key(key_id: ObjectId, user: CurrentUser, settings: UserSettingsDep) -> Response:
    """Needs a recent two-factor code."""
    await settings.delete_api_key(user, key_id)
    return Response(status_code=204)


@router.post("/api-keys/{key_id}/test", response_model=KeyTestOut,
             responses={**AUTH_ERRORS, **STEP_UP, **NOT_FOUND, **INVALID,
                        409: {"model": RejectedOut, "description": "The stored key cannot be decrypted; save it again"},
                        502: {"model": ErrorOut, "description": "The exchange could not be reached or failed"}})
async def test_api_key(key_id: ObjectId, user: CurrentUser, settings: UserSettingsDep) -> KeyTestOut:
    """Signed calls to the exchange's `/api/v3/account` and `/sapi/v1/account/apiRestrictions`: what the key
    may do, with loud warnings for withdrawal rights or a missing IP allowlist. Needs a recent two-factor code."""
    return KeyTestOut.model_validate(asdict(await settings.test_api_key(user, key_id)))


# -- notification preferences ------------------------------------------------------------------------
@router.get("/notifications", response_model=NotificationPreferences, responses=AUTH_ERRORS)
async def get_notifications(user: CurrentUser, settings: UserSettingsDep) -> NotificationPreferences:
    stored = await settings.notification_preferences(user)
    return NotificationPreferences.model_validate(stored) if stored else NotificationPreferences()


@router.put("/notifications", response_model=NotificationPreferences, responses={**AUTH_ERRORS, **INVALID})
async def put_notifications(body: NotificationPreferences, user: CurrentUser,
                            settings: UserSettingsDep) -> NotificationPreferences:
    await settings.set_notification_preferences(user, body.model_dump())
    return body


# -- web push subscriptions --------------------------------------------------------------------------
def _push_out(doc: dict[str, Any]) -> PushSubscriptionOut:
    return PushSubscriptionOut(subscription_id=doc["subscription_id"], endpoint=doc["endpoint"],
                               created_at=doc["created_at"])


@router.get("/push-subscriptions", response_model=list[PushSubscriptionOut], responses=AUTH_ERRORS)
async def list_push_subscriptions(user: CurrentUser, settings: UserSettingsDep) -> list[PushSubscriptionOut]:
    return [_push_out(d) for d in await settings.push_subscriptions(user)]


@router.post("/push-subscriptions", status_code=201, response_model=PushSubscriptionOut,
             responses={**AUTH_ERRORS, **INVALID,
                        409: {"model": RejectedOut, "description": "Already subscribed, or too many subscriptions"}})
async def add_push_subscription(body: PushSubscriptionIn, user: CurrentUser,
                                settings: UserSettingsDep) -> PushSubscriptionOut:
    return _push_out(await settings.add_push_subscription(user, body.endpoint, body.keys.model_dump(),
                                                          body.expirationTime))


@router.delete("/push-subscriptions/{subscription_id}", status_code=204,
               responses={**AUTH_ERRORS, **NOT_FOUND, **INVALID})
async def delete_push_subscription(subscription_id: ObjectId, user: CurrentUser,
                                   settings: UserSettingsDep) -> Response:
    await settings.delete_push_subscription(user, subscription_id)
    return Response(status_code=204)
