"""Pooled PostgreSQL connections the server dropped: pinged when idle, replaced unseen."""

from __future__ import annotations

import time

import psycopg
import pytest

from referral_service import db

BASE = "/api/v1/organizations"


def _terminate_other_backends(database_url: str) -> int:
    """Kill every other server connection to the test database, as a restart would."""
    dsn = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as connection:
        return len(connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall())


@pytest.fixture
def postgresql_url(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite has no server to drop connections")
    return database_url


def test_pooled_connection_dropped_while_idle_is_replaced_before_a_request_sees_it(
    app, client, admin_headers, postgresql_url, monkeypatch
):
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.2)
    assert client.get(BASE, headers=admin_headers).status_code == 200
    assert _terminate_other_backends(postgresql_url) >= 1
    time.sleep(0.3)

    assert client.get(BASE, headers=admin_headers).status_code == 200


def test_busy_connection_is_not_pinged_so_a_drop_costs_one_503(
    app, client, admin_headers, postgresql_url, monkeypatch
):
    # The trade-off of pinging only idle connections: a connection dropped within the idle
    # threshold fails one request (503, retryable), then the pool starts afresh.
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    assert client.get(BASE, headers=admin_headers).status_code == 200
    assert _terminate_other_backends(postgresql_url) >= 1

    failed = client.get(BASE, headers=admin_headers)
    assert failed.status_code == 503
    assert failed.mimetype == "application/problem+json"
    assert client.get(BASE, headers=admin_headers).status_code == 200
