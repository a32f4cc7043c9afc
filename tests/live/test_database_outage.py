"""A database outage: 503 problems with Retry-After (never a 500), nothing half-written, and
recovery without a restart once the database is back.

The first tests need no server: they make the database fail inside the request. The live test
stops a private PostgreSQL server of its own (never the machine's shared one) under a
two-worker gunicorn and starts it again.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import OperationalError

from tests.conftest import LiveServer, free_port, org_payload

ORGS = "/api/v1/organizations"
RECOVERY_DEADLINE_SECONDS = 10


def assert_unavailable(response) -> None:
    """A 503 problem that tells the client when to retry and nothing about the internals."""
    assert response.status_code == 503
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert int(response.headers["Retry-After"]) > 0
    body = response.text if hasattr(response, "text") else response.get_data(as_text=True)
    for leak in ("Traceback", "psycopg", "sqlite3", "SELECT", "connection refused", "port"):
        assert leak.lower() not in body.lower(), leak


# --- without a server: the database fails inside the request --------------------------------


def test_operational_error_in_a_service_is_a_503_problem(client, admin_headers, monkeypatch):
    from referral_service.services import organizations

    def database_gone(**_kwargs):
        raise OperationalError("SELECT * FROM organizations", {},
                               sqlite3.OperationalError("disk I/O error"))

    monkeypatch.setattr(organizations, "list_", database_gone)
    assert_unavailable(client.get(ORGS, headers=admin_headers))


@pytest.mark.parametrize("url", [
    "sqlite:////nonexistent-folder/referrals.db",
    "postgresql://postgres@127.0.0.1:{port}/referrals",
], ids=["sqlite-cannot-open", "postgresql-refused"])
def test_database_unreachable_at_connection_checkout_is_503(url, tmp_path):
    from referral_service import create_app

    app = create_app({"DATABASE_URL": url.format(port=free_port()), "TESTING": True,
                      "SECRET_KEY": "x", "RATELIMIT_ENABLED": False, "LOG_FORMAT": "text",
                      "INSTANCE_PATH": str(tmp_path)})
    client = app.test_client()
    try:
        # Authentication is the first thing to need the database.
        assert_unavailable(client.get(ORGS, headers={"Authorization": "Bearer rk_whatever"}))
        assert_unavailable(client.post(ORGS, json=org_payload(),
                                       headers={"Authorization": "Bearer rk_whatever"}))
        assert_unavailable(client.get("/readyz"))
        assert client.get("/healthz").status_code == 200
    finally:
        app.extensions["db_engine"].dispose()


def test_a_write_cut_off_by_the_database_leaves_nothing_behind(
    client, admin_headers, monkeypatch
):
    from referral_service.services import audit

    def connection_lost(**_kwargs):
        # Raised after the organization's row was written, before the commit.
        raise OperationalError("INSERT INTO audit_log", {},
                               sqlite3.OperationalError("connection lost"))

    monkeypatch.setattr(audit, "entry", connection_lost)
    assert_unavailable(client.post(ORGS, json=org_payload(), headers=admin_headers))
    monkeypatch.undo()
    assert client.get(ORGS, headers=admin_headers).get_json()["total"] == 0


# --- live: a private PostgreSQL server stopped under gunicorn ---------------------------------


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PrivatePostgres:
    """A throw-away PostgreSQL cluster in a temporary folder, on a free port."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="rs-outage-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        # initdb refuses to run as root: run the server binaries as the postgres user.
        self.as_user: list[str] = []
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8",
                  "--no-sync", "--no-instructions")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bin_dir / tool), *args], cwd=self.root,
                       check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "30", "start")

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `fast` ends every open session at once, as a crash would."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def remove(self) -> None:
        """Stop the server if it runs and delete its folder."""
        subprocess.run([*self.as_user, str(self.bin_dir / "pg_ctl"), "-D", str(self.data),
                        "-m", "immediate", "stop"], cwd=self.root, capture_output=True,
                       timeout=60, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_postgres():
    """A private PostgreSQL server, migrated, that the test may stop and start."""
    bin_dir = _postgres_bin()
    if bin_dir is None:
        pytest.skip("initdb not found: the PostgreSQL server binaries are not installed")
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run initdb as")
    server = PrivatePostgres(bin_dir)
    try:
        server.start()
        from referral_service import create_app, migrate

        app = create_app({"DATABASE_URL": server.url, "SECRET_KEY": "x", "LOG_FORMAT": "text",
                          "LOG_LEVEL": "WARNING", "RATELIMIT_ENABLED": False})
        migrate.upgrade(app)
        app.extensions["db_engine"].dispose()
        yield server
    finally:
        server.remove()


def _admin_key(database_url: str) -> dict[str, str]:
    from referral_service import create_app
    from referral_service.db import session_scope
    from referral_service.services import auth

    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "x", "LOG_FORMAT": "text",
                      "LOG_LEVEL": "WARNING", "RATELIMIT_ENABLED": False})
    with session_scope(app) as session:
        _, raw = auth.create_api_key(session=session, name="outage test", role="admin")
    app.extensions["db_engine"].dispose()
    return {"Authorization": f"Bearer {raw}"}


def _row_counts(database_url: str) -> dict[str, int]:
    from models import Base

    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as connection:
            return {table.name: connection.scalar(select(func.count()).select_from(table))
                    for table in Base.metadata.sorted_tables}
    finally:
        engine.dispose()


@pytest.mark.slow
def test_outage_gives_503_then_service_recovers_by_itself(private_postgres):
    headers = _admin_key(private_postgres.url)
    server = LiveServer(private_postgres.url, workers=2)
    try:
        with requests.post(server.url + ORGS, json=org_payload(name="Before Outage"),
                           headers=headers, timeout=10) as created:
            assert created.status_code == 201
        before = _row_counts(private_postgres.url)

        private_postgres.stop()

        # Several calls each, so that both workers (each with its pooled connections, now
        # dead) answer some of them.
        started = time.monotonic()
        for _ in range(6):
            with requests.get(server.url + ORGS, headers=headers, timeout=10) as listed:
                assert_unavailable(listed)
            with requests.get(server.url + ORGS + "/1", headers=headers, timeout=10) as one:
                assert_unavailable(one)
            with requests.post(server.url + ORGS, json=org_payload(name="During Outage"),
                               headers=headers, timeout=10) as written:
                assert_unavailable(written)
            with requests.get(server.url + "/readyz", timeout=10) as ready:
                assert_unavailable(ready)
            with requests.get(server.url + "/healthz", timeout=10) as alive:
                assert alive.status_code == 200
        per_request_ms = (time.monotonic() - started) / 30 * 1000
        assert per_request_ms < 1000  # refused at once, not hanging until a timeout

        private_postgres.start()
        back_at = time.monotonic()
        recovered_after = None
        while time.monotonic() - back_at < RECOVERY_DEADLINE_SECONDS:
            with requests.get(server.url + ORGS, headers=headers, timeout=10) as listed:
                if listed.status_code == 200:
                    recovered_after = time.monotonic() - back_at
                    break
                assert_unavailable(listed)
            time.sleep(0.1)
        assert recovered_after is not None, "no recovery within the deadline"

        # Every worker is back, not just the one that answered first.
        for _ in range(10):
            with requests.get(server.url + ORGS, headers=headers, timeout=10) as listed:
                assert listed.status_code == 200
                assert [o["name"] for o in listed.json()["items"]] == ["Before Outage"]
            with requests.get(server.url + "/readyz", timeout=10) as ready:
                assert ready.status_code == 200

        # The POSTs made during the outage left no row anywhere.
        assert _row_counts(private_postgres.url) == before
        with requests.post(server.url + ORGS, json=org_payload(name="After Outage"),
                           headers=headers, timeout=10) as written:
            assert written.status_code == 201
    finally:
        server.stop()
    # The outage is in the logs (as warnings), not in any client's response.
    assert "database unavailable" in server.log_text()
    print(f"recovered {recovered_after:.2f} s after the database came back; "
          f"{per_request_ms:.1f} ms per request during the outage")

