"""Domain errors raised by services; errors.py maps each one to an HTTP status."""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of every error a service raises on purpose."""

    title = "Request failed"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        # A member with no value is left out of the problem, not sent as null.
        self.extra = {key: value for key, value in extra.items() if value is not None}


class NotFound(ServiceError):
    """The object does not exist, or is not the caller's to know of."""

    title = "Not found"


class Forbidden(ServiceError):
    """The caller may see the object but not do this to it."""

    title = "Forbidden"


class Conflict(ServiceError):
    """The request conflicts with the current state (duplicate, double credit, capacity)."""

    title = "Conflict"


class InvalidTransition(Conflict):
    """A referral status move that the lifecycle does not allow."""

    title = "Status change not allowed"


class PreconditionFailed(ServiceError):
    """If-Match named a version that is no longer current."""

    title = "Precondition failed"


class ValidationFailed(ServiceError):
    """Input that passed the schema but not the domain rules; `errors` maps field to messages."""

    title = "Validation failed"

    def __init__(self, detail: str, errors: dict[str, Any]) -> None:
        super().__init__(detail, errors=errors)
        self.errors = errors


class Unavailable(ServiceError):
    """A dependency (database, geocoder) is down; the client may retry later."""

    title = "Service unavailable"
