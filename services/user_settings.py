"""A user's own settings: exchange API keys, notification preferences, web push subscriptions.

Every query names the caller's ``user_id``, so another user's key or subscription is not found, the
same as one that does not exist. Exchange keys are sealed (AES-GCM, bound to user and key ID) before
they are stored, returned only masked, and decrypted only to sign the exchange test calls.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from activities.binance.key_vault import ApiCredentials, KeyVaultError, open_credentials, seal_credentials
from activities.binance.signed import ApiRestrictions, SignedBinanceClient
from activities.exchange_errors import PermanentExchangeError, TemporaryExchangeError
from core.idempotency import body_hash, write_key
from core.settings import Settings
from services.auth.audit import record_audit
from services.auth.kit import AuthServices
from services.errors import Conflict, NotFound, Unauthenticated, UpstreamFailed
from services.idempotency import checked_key, request_body
from services.principal import Principal
from services.two_factor import TwoFactor

log = logging.getLogger("durabot.settings")

MAX_KEYS_PER_USER = 20
MAX_PUSH_SUBSCRIPTIONS_PER_USER = 20
NOTIFICATIONS_ROUTE = "settings.notifications"
KEYED_WRITES_KEPT = 50  # the keys of a user's latest preference changes: a retry comes within minutes
WITHDRAWALS_WARNING = ("DANGER: this key can WITHDRAW funds. Anyone who obtains it can empty the account. "
                       "Create a key with withdrawals disabled.")
NO_IP_WARNING = ("WARNING: this key has no IP allowlist: it works from any address. "
                 "Restrict it to this server's IP on the exchange.")


@dataclass
class KeyTest:
    key_id: str
    ok: bool
    tested_at: datetime
    error: str | None = None
    account_type: str | None = None
    can_trade: bool | None = None
    can_withdraw: bool | None = None
    can_deposit: bool | None = None
    permissions: list[str] = field(default_factory=list)
    restrictions: ApiRestrictions | None = None
    warnings: list[str] = field(default_factory=list)


def _warnings(restrictions: ApiRestrictions, can_withdraw: bool) -> list[str]:
    warnings = []
    if restrictions.enable_withdrawals or can_withdraw:
        warnings.append(WITHDRAWALS_WARNING)
    if not restrictions.ip_restrict:
        warnings.append(NO_IP_WARNING)
    return warnings


class UserSettings:
    def __init__(self, settings: Settings, db: AsyncDatabase, auth: AuthServices, two_factor: TwoFactor) -> None:
        self.settings = settings
        self.db = db
        self.auth = auth
        self.two_factor = two_factor

    # -- exchange API keys ---------------------------------------------------------------------------
    async def api_keys(self, principal: Principal) -> list[dict[str, Any]]:
        return [d async for d in self.db.api_keys.find({"user_id": principal.user_id}).sort("created_at", 1)]

    async def save_api_key(self, principal: Principal, label: str, exchange: str, api_key: str,
                           api_secret: str) -> dict[str, Any]:
        """Store a key pair encrypted; what comes back shows only its last 4 characters. Needs a step-up."""
        self.two_factor.require_step_up(principal, "saving an exchange API key")
        if await self.db.api_keys.count_documents({"user_id": principal.user_id}) >= MAX_KEYS_PER_USER:
            raise Conflict(None, f"at most {MAX_KEYS_PER_USER} keys per user")
        credentials = ApiCredentials(api_key, api_secret)
        key_id = secrets.token_urlsafe(12)
        doc = {"user_id": principal.user_id, "key_id": key_id, "label": label, "exchange": exchange,
               "api_key_masked": credentials.masked_key, "created_at": datetime.now(UTC), "last_test": None,
               **seal_credentials(self.auth.keyring, principal.user_id, key_id, credentials)}
        await self.db.api_keys.insert_one(doc)
        await record_audit(self.db, "api_key_saved", user_id=principal.user_id, ip=principal.ip,
                           details={"key_id": key_id, "exchange": exchange, "api_key": credentials.masked_key})
        return doc

    async def delete_api_key(self, principal: Principal, key_id: str) -> None:
        self.two_factor.require_step_up(principal, "deleting an exchange API key")
        done = await self.db.api_keys.delete_one({"user_id": principal.user_id, "key_id": key_id})
        if done.deleted_count == 0:
            raise NotFound("no such API key")
        await record_audit(self.db, "api_key_deleted", user_id=principal.user_id, ip=principal.ip,
                           details={"key_id": key_id})

    async def test_api_key(self, principal: Principal, key_id: str) -> KeyTest:
        """Signed calls to the exchange's `/api/v3/account` and `/sapi/v1/account/apiRestrictions`: what
        the key may do, with loud warnings for withdrawal rights or a missing IP allowlist. Needs a step-up."""
        self.two_factor.require_step_up(principal, "testing an exchange API key")
        doc = await self.db.api_keys.find_one({"user_id": principal.user_id, "key_id": key_id})
        if doc is None:
            raise NotFound("no such API key")
        try:
            credentials = open_credentials(self.auth.keyring, doc)
        except KeyVaultError as exc:
            log.error("stored API key cannot be decrypted", extra={"fields": {"key_id": key_id, "error": str(exc)}})
            raise Conflict(None, "the stored key cannot be decrypted; save it again") from None
        result = KeyTest(key_id=key_id, ok=False, tested_at=datetime.now(UTC))
        try:
            async with SignedBinanceClient(self.settings.exchange_rest_url, credentials) as exchange:
                await exchange.sync_time()
                account = await exchange.account()
                restrictions = await exchange.api_restrictions()
        except PermanentExchangeError as exc:
            result.error = f"the exchange refused the key: {exc}"
        except TemporaryExchangeError as exc:
            log.warning("exchange unavailable for a key test", extra={"fields": {"key_id": key_id, "error": str(exc)}})
            raise UpstreamFailed(f"the exchange is unavailable: {exc}") from None
        else:
            result = KeyTest(
                key_id=key_id, ok=True, tested_at=result.tested_at, account_type=account.account_type,
                can_trade=account.can_trade, can_withdraw=account.can_withdraw, can_deposit=account.can_deposit,
                permissions=list(account.permissions), restrictions=restrictions,
                warnings=_warnings(restrictions, account.can_withdraw))
            if result.warnings:
                log.warning("exchange key is over-privileged",
                            extra={"fields": {"user_id": principal.user_id, "key_id": key_id,
                                              "warnings": result.warnings}})
        await self.db.api_keys.update_one({"user_id": principal.user_id, "key_id": key_id},
                                          {"$set": {"last_test": asdict(result)}})
        await record_audit(self.db, "api_key_tested", user_id=principal.user_id, ip=principal.ip,
                           details={"key_id": key_id, "ok": result.ok, "warnings": len(result.warnings)})
        return result

    # -- notification preferences --------------------------------------------------------------------
    async def notification_preferences(self, principal: Principal) -> dict[str, Any] | None:
        doc = await self.db.users.find_one({"user_id": principal.user_id}, {"notification_preferences": 1})
        return (doc or {}).get("notification_preferences")

    async def set_notification_preferences(self, principal: Principal, preferences: dict[str, Any],
                                           key: str | None = None) -> dict[str, Any]:
        """Replace the preferences. With ``key``, a repeat of the request changes nothing (not even after
        a later change), and the key sent with other preferences is refused."""
        change = {"$set": {"notification_preferences": preferences, "updated_at": datetime.now(UTC)}}
        checked = checked_key(key, required=False)
        if checked is None:
            await self.db.users.update_one({"user_id": principal.user_id}, change)
            return preferences
        write = {"key": write_key(principal.user_id, NOTIFICATIONS_ROUTE, checked),
                 "request": body_hash(request_body(preferences))}
        done = await self.db.users.update_one(
            {"user_id": principal.user_id, "notification_writes.key": {"$ne": write["key"]}},
            {**change, "$push": {"notification_writes": {"$each": [write], "$slice": -KEYED_WRITES_KEPT}}})
        if done.matched_count == 0:
            user = await self.db.users.find_one({"user_id": principal.user_id}, {"notification_writes": 1})
            if user is None:
                raise Unauthenticated("user no longer exists")
            earlier = next(w for w in user["notification_writes"] if w["key"] == write["key"])
            if earlier["request"] != write["request"]:
                raise Conflict("idempotency_key", "this key was used with other preferences: use a new key")
        return preferences

    # -- web push subscriptions ----------------------------------------------------------------------
    async def push_subscriptions(self, principal: Principal) -> list[dict[str, Any]]:
        return [d async for d in self.db.push_subscriptions.find({"user_id": principal.user_id}).sort("created_at", 1)]

    async def add_push_subscription(self, principal: Principal, endpoint: str, keys: dict[str, Any],
                                    expiration_time: Any) -> dict[str, Any]:
        if await self.db.push_subscriptions.count_documents({"user_id": principal.user_id}) >= \
                MAX_PUSH_SUBSCRIPTIONS_PER_USER:
            raise Conflict(None, f"at most {MAX_PUSH_SUBSCRIPTIONS_PER_USER} push subscriptions per user")
        doc = {"user_id": principal.user_id, "subscription_id": secrets.token_urlsafe(12), "endpoint": endpoint,
               "keys": keys, "expiration_time": expiration_time, "created_at": datetime.now(UTC)}
        try:
            await self.db.push_subscriptions.insert_one(doc)
        except DuplicateKeyError:
            raise Conflict("endpoint", "this endpoint is already subscribed") from None
        return doc

    async def delete_push_subscription(self, principal: Principal, subscription_id: str) -> None:
        done = await self.db.push_subscriptions.delete_one({"user_id": principal.user_id,
                                                            "subscription_id": subscription_id})
        if done.deleted_count == 0:
            raise NotFound("no such push subscription")
