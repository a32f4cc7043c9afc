"""Structured logs, request ids and Prometheus metrics.

Every response carries an `X-Request-ID`: the caller's own if it sent a sensible one, else a
new one. Every log line written while a request is handled carries that id, and each request
ends with one line from the `referral_service.request` logger (method, path, status,
duration_ms, actor). LOG_FORMAT=json writes each line as one JSON object.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

from flask import Flask, Response, g, has_request_context, request
from flask.logging import default_handler
from pythonjsonlogger import json as jsonlogger

REQUEST_ID_HEADER = "X-Request-ID"
# An incoming id is echoed into headers and logs, so only a short, plain token is trusted.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
# Record attributes copied into a JSON line when present, in this order.
CONTEXT_FIELDS = ("request_id", "method", "path", "status", "duration_ms", "actor")
# The fields of a JSON line (docs/OPERATIONS.md), in order: record attribute -> JSON key.
JSON_FIELDS = {"asctime": "time", "levelname": "level", "name": "logger", "message": "message",
               **{field: field for field in CONTEXT_FIELDS}}
# python-json-logger adds a formatted trace and stack after those, under these names.
TRACE_FIELDS = {"exc_info": "exception", "stack_info": "stack"}
_JSON_KEYS = frozenset((JSON_FIELDS | TRACE_FIELDS).values())

request_log = logging.getLogger("referral_service.request")


class RequestContextFilter(logging.Filter):
    """Stamp each record with the request id, method and path of the request it belongs to."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the request's fields to the record; never drops one."""
        if has_request_context():
            if getattr(record, "request_id", None) is None:
                record.request_id = g.get("request_id")
            if getattr(record, "method", None) is None:
                record.method = request.method
            if getattr(record, "path", None) is None:
                record.path = request.path
        return True


class JsonFormatter(jsonlogger.JsonFormatter):
    """One JSON object per line: time, level, logger, message and the request's fields."""

    # The time as UTC with milliseconds and a Z (2026-11-27T03:15:11.820Z): logging.Formatter
    # builds it from these three, so no formatTime of our own.
    converter = time.gmtime
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"

    def __init__(self) -> None:
        super().__init__(list(JSON_FIELDS), rename_fields=JSON_FIELDS | TRACE_FIELDS,
                         json_ensure_ascii=False)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """Keep only the documented fields that have a value, in the documented order."""
        # A library's own `extra` attributes would otherwise become fields no one documented.
        return {key: value for key, value in log_data.items()
                if key in _JSON_KEYS and value is not None}


class TextFormatter(logging.Formatter):
    """A readable line for a terminal, with the request id when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as text, the request id in brackets."""
        line = super().format(record)
        request_id = getattr(record, "request_id", None)
        return f"{line} [{request_id}]" if request_id else line


class StderrHandler(logging.StreamHandler):
    """Write to whatever sys.stderr is when a record comes (CLI and test runners swap it)."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        """The current standard error."""
        return sys.stderr


def init_app(app: Flask) -> None:
    """Set up logging, request ids and metrics."""
    configure_logging(app.config.get("LOG_FORMAT", "json"), app.config.get("LOG_LEVEL", "INFO"))
    logging.getLogger(app.name).removeHandler(default_handler)
    app.before_request(_start_request)
    app.after_request(_finish_request)
    if app.config.get("METRICS_ENABLED", True):
        _init_metrics(app)


def configure_logging(log_format: str, level: str | int) -> logging.Handler:
    """Send log records to stderr as JSON or text; calling it again replaces its handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "referral_service", False):
            root.removeHandler(handler)
    handler = StderrHandler()
    handler.referral_service = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestContextFilter())
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler


def request_id_from(header: str | None) -> str:
    """Return the caller's request id if it is a short plain token, else a new one."""
    if header and _VALID_REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


def _start_request() -> None:
    g.request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER))
    g.request_started = time.perf_counter()


def _finish_request(response: Response) -> Response:
    request_id = g.get("request_id") or request_id_from(None)
    response.headers[REQUEST_ID_HEADER] = request_id
    started = g.get("request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
    status = response.status_code
    request_log.log(
        logging.WARNING if status >= 500 else logging.INFO,
        "%s %s %s", request.method, request.path, status,
        extra={"request_id": request_id, "status": status, "duration_ms": duration_ms,
               "actor": _actor_name()},
    )
    return response


def _actor_name() -> str | None:
    """Return who made the request, once authentication has said so."""
    principal = g.get("principal")
    return getattr(principal, "name", None)


def _init_metrics(app: Flask) -> None:
    # Imported here, not at the top: prometheus_client chooses its multiprocess mode when it
    # is first imported, and gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before that.
    from prometheus_client import CollectorRegistry
    from prometheus_flask_exporter import PrometheusMetrics

    # A registry per app, so that building several apps in one process (tests) never
    # registers a metric twice. In multiprocess mode /metrics reads every worker's files.
    metrics = PrometheusMetrics(app, registry=CollectorRegistry(), group_by="url_rule",
                                path="/metrics")
    app.extensions["metrics"] = metrics
