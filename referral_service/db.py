"""Engine and sessions: one engine per app, one session per request, closed on teardown.

A request says which session it needs: `read_session()` for reads, `write_session()` for a
use case that writes (on SQLite its transaction takes the write lock at BEGIN). Commit and
rollback belong to the use case's unit of work (services/unit_of_work.py), never to a view.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import orjson
from flask import Flask, Response, current_app, g
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

# A pooled PostgreSQL connection idle for longer than this is pinged before use.
PING_AFTER_IDLE_SECONDS = 1.0


def database_url(app: Flask) -> str:
    """Return the configured database URL, defaulting to SQLite in the instance folder."""
    url = app.config.get("DATABASE_URL") or ""
    if not url:
        os.makedirs(app.instance_path, exist_ok=True)
        url = "sqlite:///" + os.path.join(app.instance_path, "referrals.db")
    if url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def json_text(value: object) -> str:
    """Serialize a JSON column's value: orjson, a few times faster than json.dumps.

    An outbox event carries the whole referral; at one per creation this was about a tenth
    of POST /referrals' CPU with json.dumps (py-spy, December). Non-string keys become
    strings, as json.dumps makes them.
    """
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, busy timeout, foreign keys, BEGIN IMMEDIATE writes."""
    if not url.startswith("sqlite"):
        # connect_timeout: a host that drops packets fails fast (503) instead of hanging workers.
        # jit=off: the planner's guess for the KPI's department tree (a recursive CTE, ten
        # times its first step) prices the department and person levels over jit_above_cost,
        # and compiling them took 250-500 ms a call, a third of the query (bench_kpi.py, 1M
        # referrals); nothing here runs long enough to gain from JIT.
        engine = create_engine(url, pool_size=5, max_overflow=10,
                               connect_args={"connect_timeout": 5, "options": "-c jit=off"},
                               json_serializer=json_text)
        _ping_idle_connections(engine)
        return engine
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False},
                           json_serializer=json_text)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy (not the driver) emit BEGIN, so writes can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        # A write transaction takes the write lock at BEGIN; a deferred one that upgrades
        # later fails with "database is locked" under concurrent writers instead of waiting.
        immediate = connection.get_execution_options().get("sqlite_immediate", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _ping_idle_connections(engine: Engine) -> None:
    """Ping a pooled connection before use only if it sat idle (a restarted server dropped it).

    pool_pre_ping would ping on every checkout: one more round trip per request, about a tenth
    of a referral's creation. A connection reused straight away is alive; one that waited may
    not be, and a failed ping makes the pool replace it before the request sees an error.
    """
    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection, record, _proxy) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error:
            alive = False
        if not alive:
            raise exc.DisconnectionError("The pooled connection is gone; reconnecting.")


def init_app(app: Flask) -> None:
    """Create the app's engine and session factories and close the session after each request."""
    engine = make_engine(database_url(app))
    app.extensions["db_engine"] = engine
    app.extensions["db_sessions"] = sessionmaker(bind=engine, expire_on_commit=False)
    app.extensions["db_write_sessions"] = sessionmaker(
        bind=engine.execution_options(sqlite_immediate=True), expire_on_commit=False
    )
    # Registered after observability's: after_request functions run last first, so the
    # session is closed before the request is logged and counted.
    app.after_request(_release_session)
    app.teardown_appcontext(_close_session)


def get_engine(app: Flask | None = None) -> Engine:
    """Return the engine of the current (or given) app."""
    return (app or current_app).extensions["db_engine"]


def new_session(app: Flask | None = None, *, write: bool = True) -> Session:
    """Open a session outside a request (CLI, background jobs)."""
    key = "db_write_sessions" if write else "db_sessions"
    return (app or current_app).extensions[key]()


@contextmanager
def session_scope(app: Flask | None = None, *, write: bool = True) -> Iterator[Session]:
    """Yield a session that is closed afterwards (CLI, jobs); its use cases commit."""
    session = new_session(app, write=write)
    try:
        yield session
    finally:
        session.close()


def read_session() -> Session:
    """Return this request's session for reading (a write session also reads)."""
    if "db_session" not in g:
        g.db_session, g.db_session_writes = new_session(write=False), False
    return g.db_session


def write_session() -> Session:
    """Return this request's session for a use case that writes.

    A read session opened earlier in the request (the API key's lookup) is closed first: on
    SQLite a write transaction must take the write lock at BEGIN, not upgrade a read one.
    One that was never used (the key came from the cache) is, on PostgreSQL, the same as a
    new write session: it becomes the write session (about 30 us of CPU less a write).
    """
    if "db_session" in g and not g.db_session_writes:
        unused = not g.db_session.in_transaction()
        if unused and g.db_session.get_bind().dialect.name == "postgresql":
            g.db_session_writes = True
        else:
            g.pop("db_session").close()
    if "db_session" not in g:
        g.db_session, g.db_session_writes = new_session(write=True), True
    return g.db_session


def _release_session(response: Response) -> Response:
    """Close the request's session before the response is logged, counted and sent."""
    close_session()
    return response


def _close_session(_exc: BaseException | None) -> None:
    # After an unhandled error (no after_request ran) or a streamed response.
    close_session()


def close_session() -> None:
    """Close this request's session, if it opened one; a connection lost meanwhile is dropped.

    What is left open here is a read (a use case commits or rolls back its own writes), whose
    answer is already built. If the server ended the connection meanwhile (a terminated
    backend, a restart), the ROLLBACK of that read fails: nothing uncommitted survives a lost
    connection, so the answer stands and the pool forgets the connection. Raised from a
    teardown, that error became gunicorn's bare 500 after the log had said 200.
    """
    session = g.pop("db_session", None)
    if session is None:
        return
    try:
        session.close()
    except exc.DBAPIError as error:
        log.warning("database connection lost at the end of a request: %s",
                    type(error.orig).__name__)
        session.invalidate()
