"""Rate limits: per API key (per client address without one), a tighter one on portal logins.

Every limit answers 429 as a problem+json body with `Retry-After` (seconds). Counters live in
RATELIMIT_STORAGE_URI: `memory://` counts per process, so with several gunicorn workers the
effective limit is that many times higher; `redis://...` shares the counters between workers
and hosts. If the storage cannot be reached the limiter falls back to per-process counters
rather than failing requests, and goes back to the storage when it answers again.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, Response, current_app, request
from flask_limiter import Limit, Limiter, RateLimitExceeded
from limits import parse_many
from werkzeug.exceptions import TooManyRequests

from referral_service.errors import problem

log = logging.getLogger(__name__)

View = TypeVar("View", bound=Callable[..., Any])

# Probes, metrics and the API's own documentation are never limited: a load balancer or a
# scraper polling them must not use up anyone's quota, nor be refused.
EXEMPT_ENDPOINTS = frozenset({"health.healthz", "health.readyz", "prometheus_metrics"})
EXEMPT_ENDPOINT_SUFFIXES = ("openapi_json", "openapi_swagger_ui", "openapi_redoc",
                            "swagger_assets")
# A slow or unreachable Redis must not stall requests: give up quickly and fall back.
REDIS_TIMEOUT_SECONDS = 0.5


class TooManyLoginAttempts(TooManyRequests):
    """Too many sign-in attempts from one address; `retry_after` says when to try again."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many sign-in attempts from this address; wait and try again.")
        self.retry_after = retry_after


def caller_key() -> str:
    """Return whom a request counts against: its API key, else its client address.

    The key is stored as a digest so that the rate-limit storage never holds a usable secret.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return "key:" + hashlib.sha256(token.strip().encode()).hexdigest()[:32]
    return "addr:" + client_address()


def client_address() -> str:
    """Return the client's address (put ProxyFix in front when behind a reverse proxy)."""
    return request.remote_addr or "unknown"


def _is_exempt() -> bool:
    endpoint = request.endpoint or ""
    return endpoint in EXEMPT_ENDPOINTS or endpoint.endswith(EXEMPT_ENDPOINT_SUFFIXES)


def _failed_authentication(response: Response) -> bool:
    return response.status_code == 401


def init_app(app: Flask) -> None:
    """Create the app's limiter (one per app: its counters must not leak between apps)."""
    config = app.config
    for name in ("RATELIMIT_DEFAULT", "RATELIMIT_AUTH_FAILURES", "RATELIMIT_LOGIN"):
        # A typo in a limit fails at start-up, not as a 500 on every request.
        try:
            parse_many(config[name])
        except ValueError as error:
            raise ValueError(f"{name}={config[name]!r} is not a rate limit: {error}") from None
    storage_options: dict[str, Any] = dict(config.get("RATELIMIT_STORAGE_OPTIONS") or {})
    if str(config.get("RATELIMIT_STORAGE_URI", "")).startswith(("redis://", "rediss://")):
        storage_options.setdefault("socket_connect_timeout", REDIS_TIMEOUT_SECONDS)
        storage_options.setdefault("socket_timeout", REDIS_TIMEOUT_SECONDS)
    config["RATELIMIT_STORAGE_OPTIONS"] = storage_options
    limiter = Limiter(
        key_func=caller_key,
        default_limits=[
            # Shared: one budget per caller across every route, not one per route.
            Limit(lambda: current_app.config["RATELIMIT_DEFAULT"], scope="caller", shared=True),
            # Counts only answers of 401, per address: someone cycling through made-up keys
            # would otherwise get a fresh budget with every key they invent.
            Limit(lambda: current_app.config["RATELIMIT_AUTH_FAILURES"],
                  key_function=lambda: "addr:" + client_address(), scope="auth-failures",
                  shared=True, deduct_when=_failed_authentication),
        ],
        in_memory_fallback_enabled=True,
        headers_enabled=False,
    )
    limiter.request_filter(_is_exempt)
    limiter.init_app(app)
    # Flask-Limiter keeps its own set of limiters under "limiter" (its CLI reads it); this is
    # the one instance the app's code asks for.
    app.extensions.setdefault("limiter", {limiter})
    app.extensions["rate_limiter"] = limiter
    app.register_error_handler(TooManyRequests, handle_too_many_requests)


def handle_too_many_requests(error: TooManyRequests) -> Response:
    """Answer 429 as a problem, with Retry-After in seconds until the window resets."""
    retry_after = getattr(error, "retry_after", None)
    if isinstance(error, RateLimitExceeded):
        retry_after = max(1, _seconds_until_reset())
        detail = f"Rate limit exceeded ({error.limit.limit}); retry after {retry_after} s."
    else:
        detail = error.description or "Too many requests."
    if not isinstance(retry_after, int):
        retry_after = 1
    return problem(429, "Too many requests", detail, retry_after=max(1, retry_after))


def _seconds_until_reset() -> int:
    limit = current_app.extensions["rate_limiter"].current_limit
    if limit is None:
        return 1
    try:
        reset_at = limit.window[0]
    except Exception:  # the storage went away between the hit and now
        log.warning("rate limit storage unavailable while computing Retry-After")
        return 1
    return math.ceil(reset_at - time.time())


def check_login_attempt() -> None:
    """Count one sign-in attempt from this address; raise TooManyLoginAttempts over the limit."""
    limiter: Limiter = current_app.extensions["rate_limiter"]
    if not (limiter.enabled and limiter.initialized):
        return
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX") or ""
    identifiers = [part for part in (prefix, "login", client_address()) if part]
    for item in parse_many(current_app.config["RATELIMIT_LOGIN"]):
        try:
            allowed = limiter.limiter.hit(item, *identifiers)
            reset_at = limiter.limiter.get_window_stats(item, *identifiers).reset_time
        except Exception:  # storage down: never lock everyone out of the portal for it
            log.warning("rate limit storage unavailable; login attempt not counted")
            return
        if not allowed:
            raise TooManyLoginAttempts(max(1, math.ceil(reset_at - time.time())))


def login_limit() -> Callable[[View], View]:
    """Return a view decorator limiting its POSTs per client address to RATELIMIT_LOGIN.

    Usage on the portal's sign-in view: `@limits.login_limit()`. A refused attempt raises
    TooManyLoginAttempts (a 429, rendered as problem+json unless the portal handles it).
    """

    def decorator(view: View) -> View:
        @wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            if request.method == "POST":
                check_login_attempt()
            return view(*args, **kwargs)

        return limited  # type: ignore[return-value]

    return decorator
