"""Domain errors: what a use case answers instead of a result. Adapters map each to their channel
(REST: 422, 404, 409, 401, 403, 429, 503, 502; MCP: a tool error; Telegram: a reply)."""

from __future__ import annotations


class DomainError(Exception):
    """``message`` is safe to show the caller: it never holds a secret or another user's data."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Rejected(DomainError):
    """The input cannot be accepted as it is; ``field`` names what to change (None: the request as a
    whole)."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field
        self.reason = reason


class KeyRequired(Rejected):
    """A write that moves money needs an idempotency key, so a retry can never act twice."""

    def __init__(self) -> None:
        super().__init__("Idempotency-Key", "this write needs an Idempotency-Key (any unique string of 8 to "
                                            "128 letters, digits, '-', '_', '.' or ':') so a retry never acts twice")


class NotFound(DomainError):
    """No such object of the caller's (another user's object is not found either)."""


class Conflict(DomainError):
    """The state moved on from what the caller saw; reload and try again."""

    def __init__(self, field: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field = field


class Unauthenticated(DomainError):
    """No valid credentials."""


class Forbidden(DomainError):
    """Valid credentials that may not do this."""


class StepUpRequired(Forbidden):
    """A money or access action that needs a two-factor code from the last few minutes (``need`` =
    "code"), or two-factor authentication the user has not set up yet (``need`` = "enrol")."""

    def __init__(self, message: str, need: str) -> None:
        super().__init__(message)
        self.need = need


class TooManyRequests(DomainError):
    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Unavailable(DomainError):
    """A dependency (Temporal, MongoDB) could not answer in time; nothing was changed by this call."""

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class UpstreamFailed(DomainError):
    """A third party (the exchange) could not be reached or failed."""


class NeedsConfirmation(DomainError):
    """The action waits for its owner's confirmation on a human channel (``confirmation_id``)."""

    def __init__(self, message: str, confirmation_id: str) -> None:
        super().__init__(message)
        self.confirmation_id = confirmation_id
