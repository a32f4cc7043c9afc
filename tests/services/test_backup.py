"""Backup while the service writes, and restore into a fresh database (SQLite and PostgreSQL)."""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from models import AuditEntry, Office, Organization, OrganizationStats
from referral_service.adapters import backup as backups
from referral_service.db import make_engine, session_scope
from referral_service.services import organizations
from referral_service.services.auth import SYSTEM


def org_data(name: str) -> dict:
    return {"name": name, "kind": "partner", "skills": ["cnc machining"], "description": "",
            "capacity": 5, "offices": [
                {"label": "HQ", "latitude": 22.6, "longitude": 120.3},
                {"label": "North", "latitude": 25.0, "longitude": 121.5}]}


def create_org(app, name: str) -> None:
    with session_scope(app) as session:
        organizations.create(session=session, data=org_data(name), actor=SYSTEM,
                             geocoder=app.extensions["geocoder"])


def cli(app, *args: str, input: str | None = None):  # noqa: A002 -- click's keyword
    """Run a flask command as `flask --app wsgi ...` does: inside an app context."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args), input=input)


def count_orgs(engine: Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(select(func.count()).select_from(Organization))


def orphans(engine: Engine) -> tuple[int, int]:
    """Return (organizations without a stats row, organizations without an office)."""
    with engine.connect() as connection:
        no_stats = connection.scalar(
            select(func.count()).select_from(Organization)
            .where(~select(OrganizationStats.organization_id)
                   .where(OrganizationStats.organization_id == Organization.id).exists()))
        no_office = connection.scalar(
            select(func.count()).select_from(Organization)
            .where(~select(Office.id).where(Office.organization_id == Organization.id).exists()))
    return no_stats, no_office


def pad(app, rows: int) -> None:
    """Bulk-load bulky audit rows (~5 kB each) so that writes overlap the backup."""
    engine = app.extensions["db_engine"]
    filler = "x" * 5000
    with engine.begin() as connection:
        connection.execute(insert(AuditEntry), [
            {"actor": "bulk", "action": "pad", "object_type": "pad", "object_id": str(number),
             "changes": {"filler": filler}} for number in range(rows)])


class Writer:
    """A thread that keeps creating organizations through the service until stopped."""

    def __init__(self, app) -> None:
        self.app = app
        self.created = 0
        self.errors: list[BaseException] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                create_org(self.app, f"Writer Firm {self.created}")
            except BaseException as error:
                self.errors.append(error)
                return
            self.created += 1

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.stop.set()
        self.thread.join(30)


@pytest.fixture
def fresh_database(app, tmp_path):
    """An empty database on the test backend, disposed (and dropped) afterwards."""
    url = make_url(app.extensions["db_engine"].url)
    if url.get_backend_name() == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'restored.db'}")
        yield engine
        engine.dispose()
        return
    name = f"rs_restore_{secrets.token_hex(4)}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(url.set(database=name).render_as_string(hide_password=False))
    yield engine
    engine.dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.slow
def test_backup_taken_during_writes_restores_to_a_consistent_snapshot(
        app, tmp_path, fresh_database):
    engine = app.extensions["db_engine"]
    pad(app, 4_000)
    output = tmp_path / "referrals.backup"
    with Writer(app) as writer:
        while writer.created < 20 and not writer.errors:
            time.sleep(0.01)
        before, written_before = count_orgs(engine), writer.created
        result = backups.backup(engine=engine, output=output)
        after, written_after = count_orgs(engine), writer.created
        time.sleep(0.05)
    assert writer.errors == []
    assert written_after > written_before, "no write overlapped the backup"

    restored = backups.restore(engine=fresh_database, input_=output)

    assert result.size_bytes == output.stat().st_size > 0
    assert result.schema_revision == restored.schema_revision is not None
    if fresh_database.dialect.name == "sqlite":
        assert backups.integrity_check(fresh_database.url.database) == "ok"
    assert before <= count_orgs(fresh_database) <= after
    assert orphans(fresh_database) == (0, 0)
    with fresh_database.connect() as connection:
        actions = dict(connection.execute(
            select(AuditEntry.action, func.count()).group_by(AuditEntry.action)).all())
    # Each organization's audit entry was written in its transaction: the copy has both or neither.
    assert actions == {"pad": 4_000, "organization.create": count_orgs(fresh_database)}


def test_backup_file_is_a_sound_sqlite_database_or_a_pg_dump_archive(app, tmp_path):
    create_org(app, "Harbor Precision")
    output = tmp_path / "copy.backup"
    backups.backup(engine=app.extensions["db_engine"], output=output)
    if app.extensions["db_engine"].dialect.name == "sqlite":
        assert backups.integrity_check(output) == "ok"
        assert not Path(str(output) + "-wal").exists()  # one self-contained file
    else:
        assert output.read_bytes()[:5] == b"PGDMP"
    assert not (tmp_path / "copy.backup.partial").exists()


def test_backup_and_restore_commands_bring_back_the_state_at_backup_time(app, tmp_path):
    create_org(app, "Kept Firm")
    output = tmp_path / "state.backup"

    made = cli(app, "backup", "--output", str(output))
    assert made.exit_code == 0, made.output
    assert "Backed up the" in made.output
    create_org(app, "Firm Added Later")

    refused = cli(app, "restore", "--input", str(output), input="n\n")
    assert refused.exit_code != 0
    assert count_orgs(app.extensions["db_engine"]) == 2

    restored = cli(app, "restore", "--input", str(output), "--yes")
    assert restored.exit_code == 0, restored.output
    with app.extensions["db_engine"].connect() as connection:
        assert connection.scalars(select(Organization.name)).all() == ["Kept Firm"]
    create_org(app, "Firm After Restore")  # the restored database takes writes again
    assert count_orgs(app.extensions["db_engine"]) == 2


def test_restore_refuses_a_file_that_is_not_a_backup_and_leaves_the_database_alone(
        app, tmp_path):
    create_org(app, "Harbor Precision")
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not a backup\n")

    result = cli(app, "restore", "--input", str(bogus), "--yes")

    assert result.exit_code != 0
    assert "not a" in result.output
    assert count_orgs(app.extensions["db_engine"]) == 1


def test_backup_refuses_a_pg_dump_older_than_the_server(app, tmp_path):
    if app.extensions["db_engine"].dialect.name != "postgresql":
        pytest.skip("pg_dump is used only for PostgreSQL")
    old = tmp_path / "pg_dump"
    old.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    old.chmod(0o755)
    with pytest.raises(backups.BackupError, match="install pg_dump"):
        backups.backup(engine=app.extensions["db_engine"], output=tmp_path / "x.backup",
                       pg_dump=str(old))
    assert not (tmp_path / "x.backup").exists()
