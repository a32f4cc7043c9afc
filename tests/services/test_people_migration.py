"""Migration 0005 on existing data, and every migration against the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from tests.services.test_clients_migration import empty_database_url  # noqa: F401 (fixture)


def test_partner_users_become_people_and_old_referrals_came_from_a_firm(
    empty_database_url,  # noqa: F811
):
    from referral_service import create_app, migrate

    app = create_app({"DATABASE_URL": empty_database_url, "TESTING": True})
    engine = app.extensions["db_engine"]
    try:
        migrate.upgrade(app, "0004_client_place_ref_key")
        with engine.begin() as connection:
            for number, name in ((1, "Alpha"), (2, "Bravo")):
                connection.execute(text(
                    "INSERT INTO organizations (id, name, kind, description, active, created_at,"
                    " updated_at, version) VALUES (:id, :name, 'partner', '', TRUE,"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"), {"id": number, "name": name})
            for number, email, role, organization in (
                    (1, "boss@head.example", "admin", None),
                    (2, "mei.lin@alpha.example", "partner", 1),
                    (3, "ken@bravo.example", "partner", 2)):
                connection.execute(text(
                    "INSERT INTO users (id, email, password_hash, role, organization_id, active,"
                    " created_at) VALUES (:id, :email, 'x', :role, :org, TRUE,"
                    " CURRENT_TIMESTAMP)"),
                    {"id": number, "email": email, "role": role, "org": organization})
            connection.execute(text(
                "INSERT INTO clients (id, name, normalized_name, created_at)"
                " VALUES (1, 'Acme', 'acme', CURRENT_TIMESTAMP)"))
            connection.execute(text(
                "INSERT INTO referrals (id, referrer_organization_id, receiver_organization_id,"
                " client_id, skills, description, note, status, created_at, updated_at,"
                " version) VALUES (1, 1, 2, 1, '[]', '', '', 'pending', CURRENT_TIMESTAMP,"
                " CURRENT_TIMESTAMP, 1)"))
        migrate.upgrade(app)
        with engine.connect() as connection:
            people = connection.execute(text(
                "SELECT u.email, p.name, p.email, p.organization_id FROM users u"
                " LEFT JOIN people p ON p.id = u.person_id ORDER BY u.id")).all()
            source = connection.execute(text(
                "SELECT source_kind, referred_by_person_id FROM referrals")).one()
        assert [tuple(row) for row in people] == [
            ("boss@head.example", None, None, None),
            ("mei.lin@alpha.example", "mei.lin", "mei.lin@alpha.example", 1),
            ("ken@bravo.example", "ken", "ken@bravo.example", 2)]
        assert tuple(source) == ("organization", None)
    finally:
        engine.dispose()


def test_the_migrations_build_exactly_the_models_schema(empty_database_url):  # noqa: F811
    from models import Base
    from referral_service import create_app, migrate

    app = create_app({"DATABASE_URL": empty_database_url, "TESTING": True})
    engine = app.extensions["db_engine"]
    try:
        migrate.upgrade(app)
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
        assert differences == []
    finally:
        engine.dispose()
