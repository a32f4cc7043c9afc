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
    # Paging: default and largest page size of list endpoints.
    "DEFAULT_PAGE_SIZE": 50,
    "MAX_PAGE_SIZE": 500,
    # Geocoder for office and client places: "gazetteer" (offline GeoNames data) or "nominatim".
    "GEOCODER": "gazetteer",
    "GEOCODER_USER_AGENT": "referral-service",
    # Matching weights (deployment defaults; a request may override them).
    "MATCH_WEIGHT_SKILL": 0.6,
    "MATCH_WEIGHT_LOCATION": 0.25,
    "MATCH_WEIGHT_PERFORMANCE": 0.1,
    "MATCH_WEIGHT_CAPACITY": 0.05,
    # How often, in seconds, a worker looks for profile changes made by other workers.
    "MATCH_INDEX_REFRESH_SECONDS": 1.0,
    # Pending referrals expire after this many days.
    "REFERRAL_EXPIRY_DAYS": 14,
    # A client converted within this many days cannot be referred again (no double credit).
    "ATTRIBUTION_WINDOW_DAYS": 365,
    # Rate limit for API calls per key (Flask-Limiter syntax) and its storage.
    "RATELIMIT_DEFAULT": "600 per minute",
    "RATELIMIT_STORAGE_URI": "memory://",
    "RATELIMIT_ENABLED": True,
    # Webhooks: comma-separated target URLs and the shared HMAC secret.
    "WEBHOOK_URLS": "",
    "WEBHOOK_SECRET": "",
    "WEBHOOK_MAX_ATTEMPTS": 8,
    "WEBHOOK_ALLOW_PRIVATE_TARGETS": False,
    # Log format: "json" (one object per line) or "text".
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "INFO",
    # Session cookie: Secure outside debug; set to False only for plain-HTTP local runs.
    "SESSION_COOKIE_SECURE": True,
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
