"""Bot API error answers: ``{"ok": false, "error_code", "description", "parameters"?}``, Telegram's texts."""

from __future__ import annotations

from typing import Any


class BotApiError(Exception):
    """A refused Bot API call. ``description`` is Telegram's full text, prefix included."""

    def __init__(self, status: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.status, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


def bad_request(message: str) -> BotApiError:
    """A 400 as Telegram words it: ``Bad Request: <message>``."""
    return BotApiError(400, f"Bad Request: {message}")


def forbidden(message: str) -> BotApiError:
    return BotApiError(403, f"Forbidden: {message}")


def too_many_requests(retry_after: int) -> BotApiError:
    return BotApiError(429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after)


# Fresh instances per refusal: a raised exception keeps its traceback, so constants would share one.
def unauthorized() -> BotApiError:
    return BotApiError(401, "Unauthorized")


def not_found() -> BotApiError:
    return BotApiError(404, "Not Found")


def blocked() -> BotApiError:
    return forbidden("bot was blocked by the user")


def cant_initiate() -> BotApiError:
    return forbidden("bot can't initiate conversation with a user")


def chat_not_found() -> BotApiError:
    return bad_request("chat not found")


def not_modified() -> BotApiError:
    return bad_request("message is not modified: specified new message content and reply markup are exactly the "
                       "same as a current content and reply markup of the message")


def query_too_old() -> BotApiError:
    return bad_request("query is too old and response timeout expired or query ID is invalid")


def poll_conflict() -> BotApiError:
    return BotApiError(409, "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
                            "is running")


def server_error() -> BotApiError:
    return BotApiError(500, "Internal Server Error")
