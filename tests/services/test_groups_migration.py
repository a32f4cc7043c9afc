"""Migration 0017 on existing data: group names become groups, offices and all kept."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from tests.services.test_clients_migration import empty_database_url  # noqa: F401 (fixture)


def test_group_names_become_one_group_each_and_come_back_on_downgrade(
    empty_database_url,  # noqa: F811
):
    from referral_service import create_app, migrate

    app = create_app({"DATABASE_URL": empty_database_url, "TESTING": True})
    engine = app.extensions["db_engine"]
    try:
        migrate.upgrade(app, "0015_organization_contact")
        with engine.begin() as connection:
            for number, name, group in ((1, "Alpha", "Formosa Group"),
                                        (2, "Bravo", "FORMOSA  group"), (3, "Charlie", None),
                                        (4, "Delta", "Sakura Holdings"), (5, "Echo", "  ")):
                connection.execute(text(
                    "INSERT INTO organizations (id, name, kind, group_name, description, active,"
                    " created_at, updated_at, version) VALUES (:id, :name, 'affiliate', :group,"
                    " '', TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"),
                    {"id": number, "name": name, "group": group})
                connection.execute(text(
                    "INSERT INTO offices (organization_id, latitude, longitude,"
                    " service_radius_km) VALUES (:id, 22.6, 120.3, 100)"), {"id": number})

        migrate.upgrade(app)
        with engine.connect() as connection:
            groups = connection.execute(text(
                "SELECT o.name, g.name FROM organizations o LEFT JOIN groups g"
                " ON g.id = o.group_id ORDER BY o.id")).all()
            offices = connection.execute(text("SELECT count(*) FROM offices")).scalar()
        assert [tuple(row) for row in groups] == [
            ("Alpha", "Formosa Group"), ("Bravo", "Formosa Group"), ("Charlie", None),
            ("Delta", "Sakura Holdings"), ("Echo", None)]
        assert offices == 5  # no table was copied and dropped

        config = migrate.alembic_config(app)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0015_organization_contact")
        with engine.connect() as connection:
            names = connection.execute(text(
                "SELECT name, group_name FROM organizations ORDER BY id")).all()
        assert [tuple(row) for row in names] == [
            ("Alpha", "Formosa Group"), ("Bravo", "Formosa Group"), ("Charlie", None),
            ("Delta", "Sakura Holdings"), ("Echo", None)]
    finally:
        engine.dispose()
