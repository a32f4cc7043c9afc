"""Configuration defaults, each documented, overridable from the environment.

Every key below can be set by an environment variable of the same name. Values read from
the environment are converted to the type of the default.
"""

from __future__ import annotations

import os
from typing import Any

DEFAULTS: dict[str, Any] = {
    # SQLAlchemy URL; empty means SQLite in the instance folder (instance/referrals.db).
    "DATABASE_URL": "",
    # Signs the portal's session cookie and CSRF tokens; set it in production.
    "SECRET_KEY": "",
    # Largest request body accepted, in bytes (413 above it).
    "MAX_CONTENT_LENGTH": 1024 * 1024,
    # Geocoder for office and client places: "gazetteer" (offline GeoNames data) or "nominatim".
    "GEOCODER": "gazetteer",
    "GEOCODER_USER_AGENT": "referral-service",
    # Matching weights (deployment defaults; a request may override them).
    "MATCH_WEIGHT_SKILL": 0.6,
    "MATCH_WEIGHT_LOCATION": 0.25,
    "MATCH_WEIGHT_PERFORMANCE": 0.1,
    "MATCH_WEIGHT_CAPACITY": 0.05,
    # The group weight, counted only when a match asks for prefer_group (SPEC section 8): it
    # favours the referrer's affiliates among comparable firms, and no more: with the weights
    # above, 0.6 * (0.75 - 0.25) = 0.30 > location 0.25 + group 0.04, so a firm of the group
    # without the required skills never outranks one with them.
    "MATCH_WEIGHT_GROUP": 0.04,
    # Relevance floor: firms whose skill fit is below it are not proposed (0 turns it off; at
    # most 0.75, the skill fit of a firm with every required skill). POST /match may override
    # it with min_skill_fit.
    "MATCH_MIN_SKILL_FIT": 0.15,
    # How often, in seconds, a worker looks for profile changes made by other workers.
    "MATCH_INDEX_REFRESH_SECONDS": 1.0,
    # A folder path for snapshots of the match index (empty: none). Under gunicorn the master
    # then memory-maps the last snapshot and catches it up from the database instead of
    # building the index, and writes a new one when there is none or it fell behind
    # (adapters/match_snapshot.py; figures in docs/SCALING.md). Use one per database.
    "MATCH_INDEX_SNAPSHOT": "",
    # Pending referrals expire after this many days.
    "REFERRAL_EXPIRY_DAYS": 14,
    # A client converted within this many days cannot be referred again (no double credit).
    "ATTRIBUTION_WINDOW_DAYS": 365,
    # Re-offer (SPEC section 11): a declined or expired referral is referred on to the next
    # best firm not yet tried, at most this many times a chain (0: never). AUTO_REOFFER is
    # the default of a new referral's auto_reoffer (POST /referrals may say otherwise).
    "REOFFER_MAX_HOPS": 2,
    "AUTO_REOFFER": True,
    # A referral (POST /referrals, POST /leads/{id}/refer, the portal's refer form) must carry
    # the client's consent (client.consent: given_at, by); without it, a 422 naming the field.
    "REQUIRE_CLIENT_CONSENT": False,
    # Rate limit of each caller (an API key, else a client address) across all routes, in
    # Flask-Limiter syntax ("600 per minute", "10/second;1000/hour"); 429 with Retry-After.
    "RATELIMIT_DEFAULT": "600 per minute",
    # Bad or missing API keys allowed per client address (guessing keys: then 429 for that
    # address's bad keys, never for a valid key), and portal sign-in POSTs per address.
    "RATELIMIT_AUTH_FAILURES": "30 per minute",
    "RATELIMIT_LOGIN": "10 per minute",
    # A portal account is locked after this many failed sign-ins in a row (0: never), for
    # LOGIN_LOCKOUT_SECONDS, doubled with each further failure up to the max.
    "LOGIN_LOCKOUT_FAILURES": 5,
    "LOGIN_LOCKOUT_SECONDS": 30,
    "LOGIN_LOCKOUT_MAX_SECONDS": 3600,
    # Reverse proxies in front of the app that set X-Forwarded-For/-Proto/-Host/-Port (0:
    # none; the client address is the connection's). Set it to their number behind a load
    # balancer, or every caller shares the proxy's address in the rate limits.
    "TRUSTED_PROXIES": 0,
    # Where counters live: "memory://" (per process) or "redis://127.0.0.1:6379" (shared by
    # every worker and host; use it in production). A prefix keeps deployments apart.
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_KEY_PREFIX": "referral-service",
    # "fixed-window" (cheapest), "sliding-window-counter" or "moving-window" (exact).
    "RATELIMIT_STRATEGY": "fixed-window",
    "RATELIMIT_ENABLED": True,
    # Each worker remembers a valid API key this many seconds (0: look it up on every
    # request), so a revoked key (`flask revoke-api-key`) stops working within this time.
    "API_KEY_CACHE_SECONDS": 10.0,
    # Webhooks: comma-separated target URLs and the shared HMAC secret.
    "WEBHOOK_URLS": "",
    "WEBHOOK_SECRET": "",
    # Attempts per event before it is dead-lettered (`flask webhooks-status` lists those).
    "WEBHOOK_MAX_ATTEMPTS": 8,
    # Targets on private, loopback, link-local or reserved addresses are refused unless true.
    "WEBHOOK_ALLOW_PRIVATE_TARGETS": False,
    # Seconds to wait for a receiver to connect and to answer.
    "WEBHOOK_TIMEOUT_SECONDS": 10.0,
    # Retry backoff: base * 2^(attempt-1) seconds, capped at the max, with jitter (half to
    # all of it). The defaults retry for about an hour before an event is dead.
    "WEBHOOK_BACKOFF_BASE_SECONDS": 30.0,
    "WEBHOOK_BACKOFF_MAX_SECONDS": 3600.0,
    # PostgreSQL backup and restore tools (`flask backup` / `flask restore`).
    "PG_DUMP": "pg_dump",
    "PG_RESTORE": "pg_restore",
    # Log format: "json" (one object per line) or "text"; every request is logged once, at
    # INFO, by the "referral_service.request" logger.
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "INFO",
    # Serve Prometheus metrics at /metrics. Under gunicorn, PROMETHEUS_MULTIPROC_DIR (set by
    # gunicorn.conf.py) makes every worker's counts add up there.
    "METRICS_ENABLED": True,
    # Session cookie: Secure outside debug; set to False only for plain-HTTP local runs.
    "SESSION_COOKIE_SECURE": True,
    # Portal sign-ins last this many hours; then the user signs in again.
    "PORTAL_SESSION_HOURS": 12,
}


def _convert(raw: str, default: Any) -> Any:
    """Convert an environment string to the type of its default."""
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw


def from_environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Return the settings found in the environment, typed like their defaults."""
    environ = os.environ if environ is None else environ
    return {
        key: _convert(environ[key], default) for key, default in DEFAULTS.items() if key in environ
    }
