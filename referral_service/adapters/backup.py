"""Backup and restore of the whole database, consistent while the service keeps writing.

SQLite: the sqlite3 online backup API copies every page in one step inside a read transaction;
in WAL mode writers carry on meanwhile and the copy is the database as of that transaction's
start. The copy is switched to rollback-journal mode so it is one self-contained file.
PostgreSQL: `pg_dump --format=custom` (one repeatable-read snapshot) and `pg_restore --clean
--if-exists --single-transaction`, with the password passed in the environment, never on the
command line.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError


class BackupError(Exception):
    """A backup or restore that could not be made; the message says why and what to do."""


@dataclass(frozen=True)
class BackupResult:
    """A finished backup or restore: the file, its size, how long it took, the schema."""

    path: Path
    backend: str
    size_bytes: int
    seconds: float
    schema_revision: str | None


def backup(*, engine: Engine, output: str | os.PathLike[str], pg_dump: str = "pg_dump"
           ) -> BackupResult:
    """Write a consistent copy of the database behind `engine` to `output`."""
    output = Path(output)
    started = time.monotonic()
    partial = output.with_name(output.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if engine.dialect.name == "sqlite":
            _sqlite_backup(_sqlite_path(engine.url), partial)
        elif engine.dialect.name == "postgresql":
            _check_tool_version(engine, pg_dump)
            _run([pg_dump, "--format=custom", "--file", str(partial)], engine.url)
        else:
            raise BackupError(f"No backup method for {engine.dialect.name} databases.")
        _fsync(partial)
        # Publish the file only once it is complete: a crash leaves no half backup under
        # the requested name.
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(path=output, backend=engine.dialect.name,
                        size_bytes=output.stat().st_size,
                        seconds=time.monotonic() - started,
                        schema_revision=_revision(engine))


def restore(*, engine: Engine, input_: str | os.PathLike[str],
            pg_restore: str = "pg_restore") -> BackupResult:
    """Replace the database behind `engine` with the backup in `input_` (stop the service first)."""
    source = Path(input_)
    if not source.is_file():
        raise BackupError(f"Backup file {source} does not exist.")
    started = time.monotonic()
    # Our own pooled connections would keep reading the old data (SQLite) or hold locks.
    engine.dispose()
    if engine.dialect.name == "sqlite":
        _sqlite_restore(source, _sqlite_path(engine.url))
    elif engine.dialect.name == "postgresql":
        with source.open("rb") as handle:
            if handle.read(5) != b"PGDMP":
                raise BackupError(f"{source} is not a pg_dump custom-format archive.")
        _run([pg_restore, "--clean", "--if-exists", "--no-owner", "--single-transaction",
              "--exit-on-error", str(source)], engine.url)
    else:
        raise BackupError(f"No restore method for {engine.dialect.name} databases.")
    return BackupResult(path=source, backend=engine.dialect.name,
                        size_bytes=source.stat().st_size,
                        seconds=time.monotonic() - started,
                        schema_revision=_revision(engine))


def integrity_check(path: str | os.PathLike[str]) -> str:
    """Return SQLite's verdict on a database file ("ok" when sound)."""
    connection = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True)
    try:
        rows = connection.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as error:
        return str(error)
    finally:
        connection.close()
    return "\n".join(str(row[0]) for row in rows)


# --- SQLite --------------------------------------------------------------------------------


def _sqlite_path(url: URL) -> Path:
    database = url.database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise BackupError("An in-memory SQLite database cannot be backed up or restored.")
    return Path(database)


def _sqlite_backup(source_path: Path, target_path: Path) -> None:
    if not source_path.is_file():
        raise BackupError(f"SQLite database {source_path} does not exist.")
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    target = sqlite3.connect(target_path)
    try:
        # pages=-1: every page in a single step, so the copy is one snapshot; a copy made
        # in several steps restarts whenever another connection writes in between.
        source.backup(target, pages=-1)
        target.execute("PRAGMA journal_mode=DELETE")
        verdict = target.execute("PRAGMA integrity_check").fetchone()[0]
    except sqlite3.Error as error:
        raise BackupError(f"SQLite backup failed: {error}") from None
    finally:
        target.close()
        source.close()
    if verdict != "ok":
        raise BackupError(f"The backup copy failed its integrity check: {verdict}")


def _sqlite_restore(source_path: Path, target_path: Path) -> None:
    verdict = integrity_check(source_path)
    if verdict != "ok":
        raise BackupError(f"{source_path} is not a sound SQLite database: {verdict}")
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in source.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "alembic_version" not in tables:
            raise BackupError(f"{source_path} is not a backup of this service "
                              "(no alembic_version table).")
        target_path.parent.mkdir(parents=True, exist_ok=True)
        # The backup API writes through SQLite's own locking and WAL, so the database file,
        # its -wal and -shm files stay consistent; a plain file copy would not.
        target = sqlite3.connect(target_path, timeout=30)
        try:
            source.backup(target, pages=-1)
            verdict = target.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            target.close()
    except sqlite3.Error as error:
        raise BackupError(f"SQLite restore failed: {error}") from None
    finally:
        source.close()
    if verdict != "ok":
        raise BackupError(f"The restored database failed its integrity check: {verdict}")


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


# --- PostgreSQL ----------------------------------------------------------------------------


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """Return a libpq URI without the password, and an environment that carries it."""
    environment = dict(os.environ)
    if url.password is not None:
        environment["PGPASSWORD"] = str(url.password)
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, environment


def _run(arguments: list[str], url: URL) -> None:
    uri, environment = _libpq(url)
    try:
        # The tool path comes from the deployment's configuration, never from a request.
        finished = subprocess.run([*arguments, "--dbname", uri],  # noqa: S603
                                  env=environment, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise BackupError(f"{arguments[0]} is not installed (set PG_DUMP / PG_RESTORE to "
                          "its path).") from None
    if finished.returncode != 0:
        raise BackupError(f"{Path(arguments[0]).name} failed ({finished.returncode}): "
                          f"{finished.stderr.strip()[-2000:]}")


def tool_major_version(tool: str) -> int:
    """Return the major version of a PostgreSQL client tool ("pg_dump (PostgreSQL) 15.2")."""
    try:
        finished = subprocess.run([tool, "--version"],  # noqa: S603
                                  capture_output=True, text=True, check=True)
    except (FileNotFoundError, subprocess.CalledProcessError):
        raise BackupError(f"{tool} is not installed or does not run (set PG_DUMP to its "
                          "path).") from None
    found = re.search(r"(\d+)(?:\.\d+)?", finished.stdout)
    if not found:
        raise BackupError(f"Cannot read the version of {tool}: {finished.stdout.strip()}")
    return int(found.group(1))


def _check_tool_version(engine: Engine, tool: str) -> None:
    # pg_dump refuses a server newer than itself; say so before it starts.
    with engine.connect() as connection:
        server = int(connection.execute(text("SHOW server_version_num")).scalar_one()) // 10000
    client = tool_major_version(tool)
    if client < server:
        raise BackupError(f"{tool} is version {client} but the server runs PostgreSQL "
                          f"{server}: install pg_dump {server} or newer and set PG_DUMP.")


def _revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")
                                      ).scalar_one_or_none()
    except SQLAlchemyError:
        # A database without the table (not migrated) simply has no revision.
        return None
