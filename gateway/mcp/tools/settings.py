"""Settings: notification preferences (read: AUTHENTICATED; change: SENSITIVE), the exchange API keys saved
(metadata only), two-factor status and the paper session's settings document (AUTHENTICATED).

Saving, testing or deleting an exchange key and every two-factor change need the person (a secret, a code
or a fresh two-factor step-up): they stay in the dashboard."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from gateway.auth.settings_schemas import KeyTestOut, NotificationChannels, NotificationEvents, NotificationPreferences
from gateway.auth.two_factor_schemas import TwoFactorStatusOut
from gateway.mcp.registry import IdempotencyKey, current, tool
from gateway.routers.settings import get_notifications
from gateway.routers.two_factor import _status


@tool("Settings", "authenticated", title="Notification settings", read_only=True)
async def get_notification_settings() -> NotificationPreferences:
    """Which channels (web push, Telegram) notify the user, and of which events (trades executed, bot status,
    AI signals, risk alerts, a daily summary)."""
    call = current()
    return await get_notifications(call.principal, call.services.user_settings)


@tool("Settings", "sensitive", title="Change notification settings", idempotent=True)
async def update_notification_settings(channels: NotificationChannels, events: NotificationEvents,
                                       idempotency_key: IdempotencyKey) -> NotificationPreferences:
    """Replace the notification settings with these channels and events (read them first with
    get_notification_settings and change what you mean to). Returns the settings now in force."""
    call = current()
    chosen = NotificationPreferences(channels=channels, events=events)
    saved = await call.services.user_settings.set_notification_preferences(call.principal, chosen.model_dump(),
                                                                           idempotency_key)
    return NotificationPreferences.model_validate(saved)


class ApiKeyInfoOut(BaseModel):
    key_id: str
    label: str
    exchange: str
    created_at: datetime
    last_test: KeyTestOut | None = Field(description="the owner's last test of the key on the exchange: what it may "
                                                     "do, with warnings; null if never tested")


@tool("Settings", "authenticated", title="Exchange API keys", read_only=True)
async def list_api_keys() -> list[ApiKeyInfoOut]:
    """The exchange API keys the user saved, as metadata only (ID, label, exchange, when saved, the last test's
    outcome and warnings): never the key or its secret. Use key_id where a real-trading tool asks for one."""
    call = current()
    return [ApiKeyInfoOut(key_id=d["key_id"], label=d["label"], exchange=d["exchange"], created_at=d["created_at"],
                          last_test=KeyTestOut.model_validate(d["last_test"]) if d.get("last_test") else None)
            for d in await call.services.user_settings.api_keys(call.principal)]


@tool("Settings", "authenticated", title="Two-factor status", read_only=True)
async def get_two_factor_status() -> TwoFactorStatusOut:
    """Whether two-factor authentication is on, since when, recovery codes left, whether an administrator
    requires it, and the notional above which a real order's confirmation needs a fresh code. step_up_until is
    always null for an agent: only a person steps up."""
    call = current()
    return await _status(call.principal, call.services.two_factor)


class SettingsDocumentOut(BaseModel):
    format: Literal["durabot-settings"]
    version: int
    market: str = Field(description="the market data the settings were used on (the session's feed source)")
    symbols: list[str]
    interval: str
    engine: dict[str, Any] = Field(description="engine settings: account, fees, stops, sizing, risk checks")
    analysis: dict[str, Any] = Field(description="analysis settings: strategies, indicators, AI mode")


@tool("Settings", "authenticated", title="Export settings", read_only=True)
async def export_settings_document() -> SettingsDocumentOut:
    """The paper session's settings as a settings document (format durabot-settings, version 1), the document a
    backtest takes unchanged. A session that never saved settings gives the defaults a start would use."""
    call = current()
    document = await call.services.backtests.session_settings(call.principal)
    return SettingsDocumentOut.model_validate(document.to_dict())
