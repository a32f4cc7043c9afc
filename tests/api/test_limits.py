"""Rate limits: per API key (per address without one), 429 problems with Retry-After."""

from __future__ import annotations

import secrets
import socket

import pytest

from tests.conftest import free_port

ORGS = "/api/v1/organizations"
REDIS_URL = "redis://127.0.0.1:6379"
# The limits' window in these tests. A fixed window runs from a caller's first hit (limits
# stores the counter with that expiry; it is not aligned to the clock's minutes), so a budget
# resets mid-test only if the test's hits spread over more than the window: an hour makes
# that impossible even on a machine stalled for minutes, where a minute did not.
WINDOW = "hour"
WINDOW_SECONDS = 3600


@pytest.fixture
def limited(app, database_url):
    """Build an app over the emptied test database with rate limiting on."""
    from referral_service import create_app

    built = []

    def factory(**config):
        application = create_app({
            "DATABASE_URL": database_url, "TESTING": True, "SECRET_KEY": "test-secret",
            "LOG_FORMAT": "text", "RATELIMIT_ENABLED": True,
            "RATELIMIT_DEFAULT": f"3 per {WINDOW}",
            "RATELIMIT_AUTH_FAILURES": f"100 per {WINDOW}",
            "RATELIMIT_LOGIN": f"2 per {WINDOW}",
            # Apart from any other test (or deployment) sharing the same Redis.
            "RATELIMIT_KEY_PREFIX": "test-" + secrets.token_hex(6),
            **config,
        })
        built.append(application)
        return application

    yield factory
    for application in built:
        application.extensions["db_engine"].dispose()


def _get(client, path, headers=None, address="10.0.0.1"):
    response = client.get(path, headers=headers or {}, environ_base={"REMOTE_ADDR": address})
    response.close()
    return response


def assert_rate_limited(response):
    assert response.status_code == 429
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == 429 and body["title"] and body["detail"]
    # Until the window that began with the first hit ends: at most the window, at least 1 s.
    assert 1 <= int(response.headers["Retry-After"]) <= WINDOW_SECONDS


def test_key_over_its_limit_gets_429_problem_with_retry_after(limited, admin_headers):
    client = limited().test_client()
    for _ in range(3):
        assert _get(client, ORGS, admin_headers).status_code == 200
    assert_rate_limited(client.get(ORGS, headers=admin_headers))


def test_each_key_has_its_own_budget(limited, make_key):
    client = limited().test_client()
    first, second = make_key("crm"), make_key("crm")
    for _ in range(3):
        _get(client, ORGS, first)
    assert _get(client, ORGS, first).status_code == 429
    # Same address, another key: untouched.
    assert _get(client, ORGS, second).status_code == 200


def test_one_budget_spans_every_route(limited, admin_headers):
    client = limited().test_client()
    assert _get(client, ORGS, admin_headers).status_code == 200
    assert _get(client, "/api/v1/skills", admin_headers).status_code == 200
    assert _get(client, ORGS + "/12345", admin_headers).status_code == 404
    assert _get(client, "/api/v1/skills", admin_headers).status_code == 429


def test_without_a_key_requests_count_per_address(limited):
    client = limited().test_client()
    for _ in range(3):
        assert _get(client, ORGS, address="10.0.0.1").status_code == 401
    assert _get(client, ORGS, address="10.0.0.1").status_code == 429
    assert _get(client, ORGS, address="10.0.0.2").status_code == 401


def test_guessing_keys_is_refused_per_address(limited):
    client = limited(RATELIMIT_DEFAULT=f"100 per {WINDOW}",
                     RATELIMIT_AUTH_FAILURES=f"3 per {WINDOW}").test_client()
    for _ in range(3):
        guess = {"Authorization": "Bearer rk_" + secrets.token_urlsafe(32)}
        assert _get(client, ORGS, guess).status_code == 401
    guess = {"Authorization": "Bearer rk_" + secrets.token_urlsafe(32)}
    assert _get(client, ORGS, guess).status_code == 429
    assert _get(client, ORGS, guess, address="10.0.0.2").status_code == 401


def test_probes_metrics_and_docs_are_never_limited(limited):
    client = limited(RATELIMIT_DEFAULT=f"1 per {WINDOW}").test_client()
    for _ in range(5):
        for path in ("/healthz", "/readyz", "/metrics", "/api/v1/openapi.json",
                     "/api/v1/docs", "/api/v1/docs/assets/swagger-ui.css"):
            assert _get(client, path).status_code == 200, path
    # None of them used the address's single request.
    assert _get(client, ORGS).status_code == 401
    assert _get(client, ORGS).status_code == 429


def _login_app(limited, **config):
    from referral_service.limits import login_limit

    application = limited(RATELIMIT_DEFAULT=f"100 per {WINDOW}", **config)

    @login_limit()
    def sign_in():
        return {"signed_in": False}

    application.add_url_rule("/test-sign-in", "test_sign_in", sign_in, methods=["GET", "POST"])
    return application


def test_login_posts_have_a_tighter_limit_per_address(limited):
    client = _login_app(limited).test_client()
    for _ in range(2):
        response = client.post("/test-sign-in", environ_base={"REMOTE_ADDR": "10.0.0.7"})
        assert response.status_code == 200
    assert_rate_limited(client.post("/test-sign-in", environ_base={"REMOTE_ADDR": "10.0.0.7"}))
    # Showing the form is not an attempt, and another address is not affected.
    assert _get(client, "/test-sign-in", address="10.0.0.7").status_code == 200
    assert client.post("/test-sign-in", environ_base={"REMOTE_ADDR": "10.0.0.8"}).status_code \
        == 200


def test_login_limit_is_off_when_rate_limiting_is_disabled(limited):
    client = _login_app(limited, RATELIMIT_ENABLED=False).test_client()
    for _ in range(5):
        assert client.post("/test-sign-in").status_code == 200


def test_disabled_limiter_never_refuses(client, admin_headers):
    for _ in range(20):
        assert _get(client, ORGS, admin_headers).status_code == 200


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.mark.skipif(not _redis_reachable(), reason="no Redis answering on 127.0.0.1:6379")
def test_redis_storage_shares_one_budget_between_workers(limited, admin_headers):
    prefix = "test-" + secrets.token_hex(6)
    # Two apps stand for two gunicorn workers: only a shared storage makes 3 mean 3.
    worker_a = limited(RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=prefix)
    worker_b = limited(RATELIMIT_STORAGE_URI=REDIS_URL, RATELIMIT_KEY_PREFIX=prefix)
    a, b = worker_a.test_client(), worker_b.test_client()
    assert _get(a, ORGS, admin_headers).status_code == 200
    assert _get(b, ORGS, admin_headers).status_code == 200
    assert _get(a, ORGS, admin_headers).status_code == 200
    assert_rate_limited(b.get(ORGS, headers=admin_headers))
    assert _get(a, ORGS, admin_headers).status_code == 429


def test_unreachable_storage_falls_back_instead_of_failing(limited, admin_headers):
    client = limited(RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}").test_client()
    for _ in range(3):
        assert _get(client, ORGS, admin_headers).status_code == 200
    # Counted in the worker's own memory meanwhile.
    assert _get(client, ORGS, admin_headers).status_code == 429


def test_a_malformed_limit_is_refused_at_start_up(database_url):
    from referral_service import create_app

    with pytest.raises(ValueError, match="RATELIMIT_DEFAULT"):
        create_app({"DATABASE_URL": database_url, "RATELIMIT_DEFAULT": "lots per minute",
                    "SECRET_KEY": "x", "LOG_FORMAT": "text"})


def test_a_valid_key_is_never_refused_for_other_callers_failures(limited, admin_headers):
    """Issue 11, row 8: made-up keys from one address (a proxy everyone shares) get 429, the
    valid key and the portal from that same address do not."""
    client = limited(RATELIMIT_DEFAULT=f"100 per {WINDOW}",
                     RATELIMIT_AUTH_FAILURES=f"3 per {WINDOW}").test_client()
    statuses = [_get(client, ORGS, {"Authorization": "Bearer rk_" + secrets.token_urlsafe(32)})
                .status_code for _ in range(6)]
    assert statuses == [401, 401, 401, 429, 429, 429]
    assert _get(client, ORGS).status_code == 429  # no key at all is a failure too
    for _ in range(3):
        assert _get(client, ORGS, admin_headers).status_code == 200
    assert _get(client, "/login").status_code == 200


def test_behind_trusted_proxies_each_forwarded_address_counts_apart(limited):
    forwarded = limited(RATELIMIT_DEFAULT=f"1 per {WINDOW}", TRUSTED_PROXIES=1).test_client()
    for caller in ("203.0.113.1", "203.0.113.2"):
        assert _get(forwarded, ORGS, {"X-Forwarded-For": caller},
                    address="10.0.0.1").status_code == 401
    assert _get(forwarded, ORGS, {"X-Forwarded-For": "203.0.113.1"},
                address="10.0.0.1").status_code == 429
    # Not trusted (the default): the header is anyone's to send, and ignored.
    direct = limited(RATELIMIT_DEFAULT=f"1 per {WINDOW}").test_client()
    assert _get(direct, ORGS, {"X-Forwarded-For": "203.0.113.1"}).status_code == 401
    assert _get(direct, ORGS, {"X-Forwarded-For": "203.0.113.2"}).status_code == 429


def test_a_negative_number_of_proxies_is_refused_at_start_up(database_url):
    from referral_service import create_app

    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        create_app({"DATABASE_URL": database_url, "TESTING": True, "TRUSTED_PROXIES": -1})


def test_memory_counters_start_no_thread_per_hit_and_still_expire(limited, admin_headers):
    """memory:// counts in the worker without starting a sweeping thread every few requests
    (limits' own storage did), and a counter whose window ended is gone when read."""
    import threading
    import time

    from referral_service.limits import MemoryStorage

    app = limited(RATELIMIT_DEFAULT=f"1000 per {WINDOW}")
    storage = app.extensions["rate_limiter"].storage
    assert isinstance(storage, MemoryStorage)
    client = app.test_client()
    _get(client, ORGS, headers=admin_headers)
    started = []
    original = threading.Thread.start
    threading.Thread.start = lambda thread: (started.append(thread), original(thread))[1]
    try:
        assert all(_get(client, ORGS, headers=admin_headers).status_code == 200
                   for _ in range(50))
    finally:
        threading.Thread.start = original
    # limits' storage started a threading.Timer every 10 ms of hits; nothing else here does
    assert [thread for thread in started if isinstance(thread, threading.Timer)] == []
    storage.incr("short", 0.05)
    storage.incr("kept", 3600)
    time.sleep(0.06)
    assert storage.get("short") == 0 and storage.get("kept") == 1
    storage.incr("other", 0.05)
    time.sleep(0.06)
    storage._next_sweep = 0.0  # the sweep is due: the next hit drops every expired counter
    storage.incr("kept", 3600)
    assert "other" not in storage.storage and storage.get("kept") == 2
