"""Fixtures shared by every test layer.

The database is chosen with TEST_DB=sqlite (default) or TEST_DB=postgresql; for PostgreSQL a
fresh database is created for the run (TEST_POSTGRES_URL names the server, default the local
one) and dropped at the end. The schema is built by the Alembic migrations, as in production.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent
# A loaded 2-core machine can take tens of seconds to boot several workers.
STARTUP_SECONDS = 90
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _backend() -> str:
    backend = os.environ.get("TEST_DB", "sqlite")
    if backend not in ("sqlite", "postgresql"):
        raise pytest.UsageError("TEST_DB must be sqlite or postgresql")
    return backend


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> Iterator[str]:
    """A migrated, empty database for this test run."""
    if _backend() == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        _migrate(url)
        yield url
        return
    name = f"rs_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    try:
        _migrate(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _migrate(url: str) -> None:
    from referral_service import create_app, migrate

    app = create_app({"DATABASE_URL": url, "TESTING": True})
    migrate.upgrade(app)
    app.extensions["db_engine"].dispose()


@pytest.fixture
def app(database_url, tmp_path):
    """A fresh app over an emptied database."""
    from referral_service import create_app

    application = create_app({
        "DATABASE_URL": database_url,
        "TESTING": True,
        "SECRET_KEY": "test-secret",
        "RATELIMIT_ENABLED": False,
        "SESSION_COOKIE_SECURE": False,
        "LOG_FORMAT": "text",
    })
    _empty_tables(application)
    yield application
    application.extensions["db_engine"].dispose()


def _empty_tables(app) -> None:
    from models import Base

    engine = app.extensions["db_engine"]
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(
                "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY CASCADE"))
        else:
            # Some tables point at each other (referrals and leads, people and departments):
            # check the foreign keys once, at commit, when every table is empty.
            connection.execute(text("PRAGMA defer_foreign_keys = ON"))
            for table in tables:
                connection.execute(text(f'DELETE FROM "{table}"'))


@pytest.fixture
def client(app):
    """Flask's test client."""
    return app.test_client()


@pytest.fixture
def session(app):
    """A read session outside any request (a write session would hold SQLite's write lock)."""
    from referral_service.db import new_session

    db_session = new_session(app, write=False)
    yield db_session
    db_session.close()


@pytest.fixture
def make_key(app):
    """Create an API key and return headers that send it."""
    from referral_service.db import session_scope
    from referral_service.services import auth

    def factory(role: str = "admin", organization_id: int | None = None) -> dict[str, str]:
        with session_scope(app) as db_session:
            _, raw = auth.create_api_key(session=db_session, name=f"test {role}", role=role,
                                         organization_id=organization_id)
        return {"Authorization": f"Bearer {raw}"}

    return factory


@pytest.fixture
def admin_headers(make_key) -> dict[str, str]:
    """Headers of an admin key."""
    return make_key("admin")


def office(city: str = "Kaohsiung", country: str = "TW", **extra) -> dict:
    """An office payload given by city and country."""
    return {"city": city, "country": country, **extra}


def org_payload(name: str = "Harbor Precision", **extra) -> dict:
    """A valid POST /organizations body."""
    body = {
        "name": name,
        "kind": "partner",
        "skills": ["CNC Machining", "Anodizing"],
        "description": "Five-axis machining of aluminium housings.",
        "offices": [{"label": "HQ", "latitude": 22.6273, "longitude": 120.3014}],
        "capacity": 10,
    }
    body.update(extra)
    return body


@pytest.fixture
def make_org(client, admin_headers):
    """Create an organization through the API and return its JSON."""

    def factory(**extra) -> dict:
        response = client.post("/api/v1/organizations", json=org_payload(**extra),
                               headers=admin_headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json()

    return factory


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """A gunicorn server with several workers over the test database."""

    def __init__(self, database_url: str, workers: int = 2, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environment = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": "live-secret",
                       "RATELIMIT_ENABLED": "false", "SESSION_COOKIE_SECURE": "false",
                       "LOG_LEVEL": "WARNING", **env}
        # The server's log goes to a file: a pipe nobody reads would fill and block workers.
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115  (lives as long as the server)
            prefix="gunicorn-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind",
             f"127.0.0.1:{self.port}", "--timeout", "60", "wsgi:app"],
            cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=self.log,
        )
        try:
            self._wait()
        except Exception:
            self.stop()
            raise

    def _wait(self) -> None:
        import requests

        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("gunicorn exited: " + self.log_text())
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not start in {STARTUP_SECONDS} s: " + self.log_text())

    def log_text(self) -> str:
        """Return what the server has logged so far (all of it, once stopped)."""
        if getattr(self, "_final_log", None) is not None:
            return self._final_log
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        """Stop the server and its workers."""
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)
        self.log.close()
        self._final_log = self.log_text()
        Path(self.log.name).unlink(missing_ok=True)


@pytest.fixture
def live_server(app, database_url) -> Iterator[LiveServer]:
    """A real gunicorn server (2 workers) over the emptied test database."""
    server = LiveServer(database_url)
    yield server
    server.stop()
