"""One table from errors to HTTP statuses, and every error body as application/problem+json."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json, request
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from referral_service.services import errors as service_errors

log = logging.getLogger(__name__)

PROBLEM_TYPE_BASE = "https://referral-service.example/problems/"
RETRY_AFTER_SECONDS = 5
# Every 422, whether the schema or a service refused the input, is this one problem type,
# so that a client has one thing to recognise; `errors` says what was wrong.
VALIDATION_TITLE = "Validation failed"
VALIDATION_TYPE = PROBLEM_TYPE_BASE + "validation-failed"

# The one mapping from a service error to its HTTP status.
STATUS_BY_ERROR: dict[type[service_errors.ServiceError], int] = {
    service_errors.NotFound: 404,
    service_errors.Forbidden: 403,
    service_errors.InvalidTransition: 409,
    service_errors.Conflict: 409,
    service_errors.PreconditionFailed: 412,
    service_errors.ValidationFailed: 422,
    service_errors.Unavailable: 503,
}


def problem(
    status: int, title: str, detail: str, *, type_: str | None = None, **extra: Any
) -> Response:
    """Build an RFC 9457 problem response; every 422 gets the one validation type and title."""
    retry_after = extra.pop("retry_after", RETRY_AFTER_SECONDS)
    if status == 422:
        title, type_ = VALIDATION_TITLE, VALIDATION_TYPE
        extra.setdefault("errors", {})
    body = {
        "type": type_ or PROBLEM_TYPE_BASE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    response = Response(json.dumps(body), status=status, mimetype="application/problem+json")
    if status in (429, 503):
        response.headers["Retry-After"] = str(retry_after)
    return response


def _flatten_messages(messages: Any) -> dict[str, Any]:
    """Turn webargs' {location: {field: [...]}} into {field: [...]}."""
    if not isinstance(messages, dict):
        return {"_schema": messages}
    flat: dict[str, Any] = {}
    for location, fields in messages.items():
        if isinstance(fields, dict):
            flat.update(fields)
        else:
            flat[location] = fields
    return flat


def status_of(error: service_errors.ServiceError) -> int:
    """Return the HTTP status of a domain error (the table above; 400 if none matches)."""
    return next((code for cls, code in STATUS_BY_ERROR.items() if isinstance(error, cls)), 400)


def handle_service_error(error: service_errors.ServiceError) -> Response:
    """Render a domain error."""
    return problem(status_of(error), error.title, error.detail, **error.extra)


def handle_http_exception(error: HTTPException) -> Response:
    """Render a werkzeug/flask-smorest HTTP error as a problem."""
    status = error.code or 500
    title = error.name
    detail = error.description or title
    extra: dict[str, Any] = {}
    data = getattr(error, "data", None) or {}
    messages = data.get("messages")
    if status == 422 and messages is not None:
        detail = "The request has invalid fields; see errors."
        extra["errors"] = _flatten_messages(messages)
    elif status == 400 and messages is not None:
        detail = "The request body is not valid JSON." if _is_json_error(messages) else detail
        extra["errors"] = _flatten_messages(messages)
    elif status == 413:
        detail = "The request body is larger than the configured limit."
    elif status == 404:
        detail = f"Nothing is found at {request.path}."
    elif status == 405:
        detail = f"{request.method} is not allowed on {request.path}."
    if data.get("message") and status not in (404, 405, 413, 422):
        detail = str(data["message"])
    response = problem(status, title, detail, **extra)
    if status == 405:
        allowed = getattr(error, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(sorted(allowed))
    for name, value in (data.get("headers") or {}).items():
        response.headers[name] = value
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _is_json_error(messages: Any) -> bool:
    return "json" in messages and "Invalid JSON" in json.dumps(messages)


def handle_stale_data(_error: StaleDataError) -> Response:
    """A concurrent write changed the object first: the client re-reads and tries again."""
    return problem(
        409, "Conflict", "The object was changed by another request; read it again and retry."
    )


def handle_database_error(error: DBAPIError) -> Response:
    """Report an unreachable database as 503; any other database error as a plain 500."""
    if isinstance(error, OperationalError) or error.connection_invalidated:
        log.warning("database unavailable: %s", type(error.orig).__name__)
        return problem(
            503, "Service unavailable", "The database is unavailable; retry shortly."
        )
    log.exception("database error")
    return problem(500, "Internal server error", "An unexpected error occurred.")


def handle_unexpected(error: Exception) -> Response:
    """Log the trace, send the client none of it."""
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    log.exception("unhandled error")
    return problem(500, "Internal server error", "An unexpected error occurred.")


def init_app(app: Flask) -> None:
    """Register every error handler."""
    app.register_error_handler(service_errors.ServiceError, handle_service_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(StaleDataError, handle_stale_data)
    app.register_error_handler(DBAPIError, handle_database_error)
    app.register_error_handler(Exception, handle_unexpected)
