"""``/api/telegram``: linking the caller's Telegram account to the bot. An adapter over
``services.telegram_links``.

``POST /link-code`` shows a one-time code (10 minutes, one use) and the deep link that sends it to the
bot as ``/start CODE``; ``GET`` says whether a Telegram account is linked; ``DELETE /link`` unlinks it
(``/unlink`` in Telegram does the same)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from gateway.auth.deps import AUTH_ERRORS, CurrentUser
from gateway.deps import ServicesDep
from services.telegram_links import LinkStatus, TelegramLinks

router = APIRouter(prefix="/api/telegram", tags=["telegram"])


def _links(services: ServicesDep) -> TelegramLinks:
    return services.telegram_links


TelegramLinksDep = Annotated[TelegramLinks, Depends(_links)]


class LinkCodeOut(BaseModel):
    code: str = Field(description="send it to the bot as `/start CODE`; shown once, valid once")
    expires_at: datetime
    deep_link: str | None = Field(description="https://t.me/<bot>?start=CODE (null while the bot's name is unknown)")
    start_command: str = Field(description="what to send the bot by hand")
    web_chat_url: str | None = Field(description="the offline Telegram stand-in's chat page, when in use")


class TelegramStatusOut(BaseModel):
    linked: bool
    telegram_user_id: int | None
    telegram_username: str | None
    telegram_name: str | None
    chat_id: int | None
    linked_at: datetime | None
    mode: Literal["paper", "real"] | None = Field(description="which session the bot's commands address")
    bot_configured: bool = Field(description="a bot token is set, so a bot process can run")
    bot_username: str | None
    web_chat_url: str | None


def status_out(status: LinkStatus) -> TelegramStatusOut:
    link = status.link
    return TelegramStatusOut(
        linked=status.linked, telegram_user_id=link.telegram_user_id if link else None,
        telegram_username=link.username if link else None, telegram_name=link.first_name if link else None,
        chat_id=link.chat_id if link else None, linked_at=link.linked_at if link else None,
        mode=link.mode if link else None, bot_configured=status.bot_configured, bot_username=status.bot_username,
        web_chat_url=status.web_chat_url)


@router.post("/link-code", status_code=201, response_model=LinkCodeOut, responses=AUTH_ERRORS)
async def issue_link_code(user: CurrentUser, links: TelegramLinksDep) -> LinkCodeOut:
    """A one-time code that links the Telegram account that sends it to the bot (the previous one stops working)."""
    issued = await links.issue_code(user)
    return LinkCodeOut(code=issued.code, expires_at=issued.expires_at, deep_link=issued.deep_link,
                       start_command=f"/start {issued.code}", web_chat_url=links.web_chat_url)


@router.get("", response_model=TelegramStatusOut, responses=AUTH_ERRORS)
async def telegram_status(user: CurrentUser, links: TelegramLinksDep) -> TelegramStatusOut:
    """Whether a Telegram account is linked, which, since when, and the bot's name."""
    return status_out(await links.status(user))


@router.delete("/link", response_model=TelegramStatusOut, responses=AUTH_ERRORS)
async def unlink_telegram(user: CurrentUser, links: TelegramLinksDep) -> TelegramStatusOut:
    """Unlink the Telegram account: the bot stops obeying it at once (without a link, nothing changes)."""
    return status_out(await links.unlink(user))
