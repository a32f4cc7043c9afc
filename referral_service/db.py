"""Engine and sessions: one engine per app, one session per request, closed on teardown."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask, current_app, g, request
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, busy timeout, foreign keys, BEGIN IMMEDIATE writes."""
    if not url.startswith("sqlite"):
        # connect_timeout: a host that drops packets fails fast (503) instead of hanging workers.
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                             connect_args={"connect_timeout": 5})
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

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


def init_app(app: Flask) -> None:
    """Create the app's engine and session factories and close the session after each request."""
    engine = make_engine(database_url(app))
    app.extensions["db_engine"] = engine
    app.extensions["db_sessions"] = sessionmaker(bind=engine, expire_on_commit=False)
    app.extensions["db_write_sessions"] = sessionmaker(
        bind=engine.execution_options(sqlite_immediate=True), expire_on_commit=False
    )
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
    """Yield a session that is closed afterwards; the caller commits."""
    session = new_session(app, write=write)
    try:
        yield session
    finally:
        session.close()


def get_session() -> Session:
    """Return this request's session, opening it on first use."""
    if "db_session" not in g:
        write = request.method not in READ_METHODS if request else True
        g.db_session = new_session(write=write)
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    session = g.pop("db_session", None)
    if session is not None:
        session.close()
