"""Rate limits: per API key (per client address without one), a tighter one on portal logins.

Every limit answers 429 as a problem+json body with `Retry-After` (seconds). Counters live in
RATELIMIT_STORAGE_URI: `memory://` counts per process, so with several gunicorn workers the
effective limit is that many times higher; `redis://...` shares the counters between workers
and hosts. If the storage cannot be reached the limiter falls back to per-process counters
rather than failing requests, and goes back to the storage when it answers again.

Failed authentication is counted only when it fails (issue 11, row 8): an address over
RATELIMIT_AUTH_FAILURES gets 429 for its next bad or missing key, while a valid key from the
same address (one proxy in front of everyone) is never refused for someone else's guesses.
A portal account is locked after LOGIN_LOCKOUT_FAILURES failed sign-ins in a row, for
LOGIN_LOCKOUT_SECONDS doubled with each further failure (at most LOGIN_LOCKOUT_MAX_SECONDS).
Behind a reverse proxy, TRUSTED_PROXIES says how many set X-Forwarded-* (ProxyFix), so the
client address is the caller's, not the proxy's.
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
from limits.storage import MemoryStorage as LimitsMemoryStorage
from werkzeug.exceptions import TooManyRequests
from werkzeug.middleware.proxy_fix import ProxyFix

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


# How long failed sign-ins of an account are remembered (a success forgets them at once).
FAILED_SIGN_INS_MEMORY_SECONDS = 24 * 3600


class MemoryStorage(LimitsMemoryStorage):
    """The counters of `memory://`: limits' own, without a thread started per burst of hits.

    limits' MemoryStorage starts a `threading.Timer` to sweep expired counters 10 ms after a
    hit whenever none is running, so a busy worker starts a thread every few requests
    (`Thread.start` was 9% of a worker's samples under bench_scale's matches, py-spy). A
    fixed-window counter is dropped when read after it expired anyway (its `get`); here the
    sweep of the others runs in the request that finds it due, at most once a second.
    Declaring the scheme `memory` makes limits build this class for `memory://`.
    """

    STORAGE_SCHEME = ["memory"]
    SWEEP_SECONDS = 1.0
    _next_sweep = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # noqa: N802 -- limits' own hook
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_SECONDS
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


class TooManyLoginAttempts(TooManyRequests):
    """Too many sign-in attempts from one address; `retry_after` says when to try again."""

    def __init__(self, retry_after: int, description: str | None = None) -> None:
        super().__init__(description
                         or "Too many sign-in attempts from this address; wait and try again.")
        self.retry_after = retry_after


class TooManyAuthenticationFailures(TooManyRequests):
    """Too many bad or missing API keys from one address; `retry_after` in seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many requests with a bad or missing API key from this address; "
                         "wait and try again.")
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


def trust_proxies(app: Flask) -> None:
    """Read the client's address and scheme from the X-Forwarded-* headers that
    TRUSTED_PROXIES reverse proxies in front of the app set (0, the default: none)."""
    proxies = int(app.config.get("TRUSTED_PROXIES") or 0)
    if proxies < 0:
        raise ValueError(f"TRUSTED_PROXIES={proxies} must be 0 or more.")
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies,  # type: ignore[method-assign]
                                x_proto=proxies, x_host=proxies, x_port=proxies)


def init_app(app: Flask) -> None:
    """Create the app's limiter (one per app: its counters must not leak between apps)."""
    trust_proxies(app)
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
            # Shared: one budget per caller across every route, not one per route. Failed
            # authentication has its own count (count_failed_authentication), taken only
            # when a key fails, so that it never refuses a valid key.
            Limit(lambda: current_app.config["RATELIMIT_DEFAULT"], scope="caller", shared=True),
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


def _counting_limiter() -> Limiter | None:
    limiter: Limiter = current_app.extensions["rate_limiter"]
    return limiter if limiter.enabled and limiter.initialized else None


def _storage_key(*parts: str) -> str:
    prefix = current_app.config.get("RATELIMIT_KEY_PREFIX") or ""
    return "/".join(part for part in (prefix, *parts) if part)


def count_failed_authentication() -> None:
    """Count one request whose API key was bad or missing, per client address; raise
    TooManyAuthenticationFailures once the address is over RATELIMIT_AUTH_FAILURES.

    Called only after a key failed: a valid key is never counted nor refused here, so made-up
    keys from one address (a proxy everyone shares) lock out no one else's valid key.
    """
    limiter = _counting_limiter()
    if limiter is None:
        return
    identifiers = [_storage_key("auth-failures", client_address())]
    for item in parse_many(current_app.config["RATELIMIT_AUTH_FAILURES"]):
        try:
            allowed = limiter.limiter.hit(item, *identifiers)
            reset_at = limiter.limiter.get_window_stats(item, *identifiers).reset_time
        except Exception:  # storage down: answer the 401, never a 500
            log.warning("rate limit storage unavailable; failed authentication not counted")
            return
        if not allowed:
            raise TooManyAuthenticationFailures(max(1, math.ceil(reset_at - time.time())))


def _account_keys(email: str) -> tuple[str, str]:
    # A digest: the storage never holds the address typed.
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return _storage_key("login-failures", account), _storage_key("login-locked", account)


def check_account_lockout(email: str) -> None:
    """Raise TooManyLoginAttempts while this account is locked after failed sign-ins."""
    limiter = _counting_limiter()
    if limiter is None:
        return
    _, locked = _account_keys(email)
    try:
        storage = limiter.limiter.storage
        if storage.get(locked) <= 0:
            return
        retry_after = max(1, math.ceil(storage.get_expiry(locked) - time.time()))
    except Exception:  # storage down: never lock everyone out of the portal for it
        log.warning("rate limit storage unavailable; account lockout not checked")
        return
    raise TooManyLoginAttempts(retry_after, "Too many failed sign-ins for this account; "
                                            f"try again in {retry_after} s.")


def record_failed_sign_in(email: str) -> None:
    """Count a failed sign-in of an account; from LOGIN_LOCKOUT_FAILURES in a row on, lock
    it for LOGIN_LOCKOUT_SECONDS * 2^(failures - LOGIN_LOCKOUT_FAILURES), at most
    LOGIN_LOCKOUT_MAX_SECONDS (the counters are shared by every worker with Redis)."""
    limiter = _counting_limiter()
    config = current_app.config
    threshold = int(config["LOGIN_LOCKOUT_FAILURES"])
    if limiter is None or threshold <= 0:
        return
    failures_key, locked = _account_keys(email)
    try:
        storage = limiter.limiter.storage
        failures = storage.incr(failures_key, FAILED_SIGN_INS_MEMORY_SECONDS)
        if failures >= threshold:
            # back-off: base * 2^(failures beyond the threshold), capped
            seconds = min(float(config["LOGIN_LOCKOUT_MAX_SECONDS"]),
                          float(config["LOGIN_LOCKOUT_SECONDS"]) * 2 ** (failures - threshold))
            storage.clear(locked)
            storage.incr(locked, max(1, math.ceil(seconds)))
    except Exception:
        log.warning("rate limit storage unavailable; failed sign-in not counted")


def forget_failed_sign_ins(email: str) -> None:
    """Forget an account's failed sign-ins once it signs in."""
    limiter = _counting_limiter()
    if limiter is None:
        return
    try:
        for key in _account_keys(email):
            limiter.limiter.storage.clear(key)
    except Exception:
        log.warning("rate limit storage unavailable; failed sign-ins not forgotten")


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
