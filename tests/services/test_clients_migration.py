"""Migration 0004 on existing clients: CRM ids trimmed and keyed case-insensitively."""

from __future__ import annotations

import os
import secrets

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import POSTGRES_URL


@pytest.fixture
def empty_database_url(tmp_path):
    if os.environ.get("TEST_DB", "sqlite") == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    name = f"rs_migrate_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://"),
                          isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_existing_crm_ids_are_trimmed_and_keyed_the_oldest_keeping_a_folded_duplicate(
    empty_database_url,
):
    from referral_service import create_app, migrate

    app = create_app({"DATABASE_URL": empty_database_url, "TESTING": True})
    engine = app.extensions["db_engine"]
    try:
        migrate.upgrade(app, "0003_kpi_indexes")
        with engine.begin() as connection:
            for number, ref in enumerate(["crm-400", "CRM-400 ", " X-1", None], start=1):
                connection.execute(text(
                    "INSERT INTO clients (id, name, normalized_name, external_ref, created_at) "
                    "VALUES (:id, :name, :name, :ref, CURRENT_TIMESTAMP)"),
                    {"id": number, "name": f"client {number}", "ref": ref})
        migrate.upgrade(app)
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT id, external_ref, external_ref_key FROM clients ORDER BY id")).all()
        assert [tuple(row) for row in rows] == [
            (1, "crm-400", "crm-400"), (2, "CRM-400", None), (3, "X-1", "x-1"),
            (4, None, None)]
    finally:
        engine.dispose()
