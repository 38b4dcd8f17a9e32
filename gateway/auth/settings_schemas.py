"""API shapes of /api/settings: exchange keys (write-only secrets), notification preferences, web push."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, SecretStr, WithJsonSchema

from gateway.auth.schemas import StrictModel

KEY_PATTERN = re.compile(r"^[A-Za-z0-9]{16,128}$")


def _key_characters(value: SecretStr) -> SecretStr:
    # SecretStr keeps the value out of the 422 body; the message says what is wrong without echoing it.
    if not KEY_PATTERN.match(value.get_secret_value()):
        raise ValueError("must be 16-128 letters and digits, as the exchange issues them")
    return value


KeyText = Annotated[SecretStr, AfterValidator(_key_characters),
                    WithJsonSchema({"type": "string", "format": "password", "writeOnly": True,
                                    "pattern": KEY_PATTERN.pattern, "minLength": 16, "maxLength": 128})]
Base64Url = r"^[A-Za-z0-9_-]+={0,2}$"


class ApiKeyIn(StrictModel):
    label: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
    exchange: Literal["binance"] = "binance"
    api_key: KeyText
    api_secret: KeyText


class ApiRestrictionsOut(BaseModel):
    ip_restrict: bool
    enable_reading: bool
    enable_spot_and_margin_trading: bool
    enable_withdrawals: bool
    enable_internal_transfer: bool
    enable_margin: bool
    enable_futures: bool
    permits_universal_transfer: bool


class KeyTestOut(BaseModel):
    key_id: str
    ok: bool = Field(description="the exchange accepted the signed calls")
    tested_at: datetime
    account_type: str | None = None
    can_trade: bool | None = None
    can_withdraw: bool | None = None
    can_deposit: bool | None = None
    permissions: list[str] = []
    restrictions: ApiRestrictionsOut | None = None
    warnings: list[str] = Field(default=[], description="withdrawals enabled, no IP allowlist, ...")
    error: str | None = Field(None, description="why the exchange refused the key, when ok is false")


class ApiKeyOut(BaseModel):
    key_id: str
    label: str
    exchange: str
    api_key_masked: str = Field(description="`****` and the key's last 4 characters; keys are never returned")
    created_at: datetime
    last_test: KeyTestOut | None = None


class NotificationChannels(StrictModel):
    web_push: bool = True
    telegram: bool = False


class NotificationEvents(StrictModel):
    trade_executed: bool = True
    bot_status: bool = True
    ai_signal: bool = False
    risk_alert: bool = True
    daily_summary: bool = False


class NotificationPreferences(StrictModel):
    channels: NotificationChannels = NotificationChannels()
    events: NotificationEvents = NotificationEvents()


class PushKeys(StrictModel):
    p256dh: str = Field(min_length=16, max_length=256, pattern=Base64Url)
    auth: str = Field(min_length=8, max_length=64, pattern=Base64Url)


class PushSubscriptionIn(StrictModel):
    """A browser's ``PushSubscription.toJSON()``."""

    endpoint: str = Field(min_length=12, max_length=2048, pattern=r"^https://[^\s/]+/\S*$")
    keys: PushKeys
    expirationTime: int | None = Field(None, ge=0)  # noqa: N815 (the browser's own field name)


class PushSubscriptionOut(BaseModel):
    subscription_id: str
    endpoint: str
    created_at: datetime
