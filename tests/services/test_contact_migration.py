"""Migration 0015 on existing data: the contact columns come and go in place, offices kept,
and their checks hold on both databases."""

from __future__ import annotations

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.services.test_clients_migration import empty_database_url  # noqa: F401 (fixture)


def test_contact_columns_are_added_and_dropped_in_place_with_their_checks(
    empty_database_url,  # noqa: F811
):
    from referral_service import create_app, migrate

    app = create_app({"DATABASE_URL": empty_database_url, "TESTING": True})
    engine = app.extensions["db_engine"]
    try:
        migrate.upgrade(app, "0014_skill_aliases")
        with engine.begin() as connection:
            connection.execute(text(
                "INSERT INTO organizations (id, name, kind, description, active, created_at,"
                " updated_at, version) VALUES (1, 'Alpha', 'partner', '', TRUE,"
                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"))
            connection.execute(text(
                "INSERT INTO offices (organization_id, latitude, longitude, service_radius_km)"
                " VALUES (1, 22.6, 120.3, 100)"))
        migrate.upgrade(app, "0015_organization_contact")
        with engine.begin() as connection:
            connection.execute(text(
                "UPDATE organizations SET contact_name = 'Mei Lin',"
                " contact_email = 'mei@alpha.example', contact_phone = '+886 7 123 4567'"))
        for column, value in (("contact_email", "nobody"), ("contact_phone", "123"),
                              ("contact_name", "")):
            with pytest.raises(IntegrityError), engine.begin() as connection:
                connection.execute(text(f"UPDATE organizations SET {column} = :value"),
                                   {"value": value})

        config = migrate.alembic_config(app)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0014_skill_aliases")
        with engine.connect() as connection:
            offices = connection.execute(text("SELECT count(*) FROM offices")).scalar()
            columns = connection.execute(text("SELECT * FROM organizations")).keys()
        assert offices == 1  # no table was copied and dropped
        assert not [column for column in columns if column.startswith("contact_")]
    finally:
        engine.dispose()
