"""Migration 0006 on existing data: firms sharing a name, referrals' clients, sessions."""

from __future__ import annotations

from sqlalchemy import text

from tests.services.test_clients_migration import empty_database_url  # noqa: F401 (fixture)


def test_active_firms_sharing_a_name_are_told_apart_and_referrals_keep_their_client(
    empty_database_url,  # noqa: F811
):
    from models.organization import name_key
    from referral_service import create_app, migrate

    app = create_app({"DATABASE_URL": empty_database_url, "TESTING": True})
    engine = app.extensions["db_engine"]
    try:
        migrate.upgrade(app, "0005_people_visits_leads")
        with engine.begin() as connection:
            for number, name, active in ((1, "Alpha", True), (2, "ALPHA ", True),
                                         (3, "alpha", False), (4, "Bravo", True),
                                         (5, "Alpha (#2)", True)):
                connection.execute(text(
                    "INSERT INTO organizations (id, name, kind, description, active, created_at,"
                    " updated_at, version) VALUES (:id, :name, 'partner', '', :active,"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"),
                    {"id": number, "name": name, "active": active})
            connection.execute(text(
                "INSERT INTO users (id, email, password_hash, role, active, created_at)"
                " VALUES (1, 'boss@head.example', 'x', 'admin', TRUE, CURRENT_TIMESTAMP)"))
            connection.execute(text(
                "INSERT INTO clients (id, name, normalized_name, external_ref, external_ref_key,"
                " latitude, longitude, city, country, created_at) VALUES (1, 'Acme Ltd', 'acme',"
                " 'CRM-1', 'crm-1', 22.6, 120.3, 'Kaohsiung', 'TW', CURRENT_TIMESTAMP)"))
            connection.execute(text(
                "INSERT INTO referrals (id, referrer_organization_id, receiver_organization_id,"
                " client_id, skills, description, note, status, source_kind, created_at,"
                " updated_at, version) VALUES (1, 1, 4, 1, '[]', '', '', 'pending',"
                " 'organization', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"))
        migrate.upgrade(app)
        with engine.connect() as connection:
            firms = connection.execute(text(
                "SELECT id, name, name_key FROM organizations ORDER BY id")).all()
            client = connection.execute(text(
                "SELECT client_name, client_external_ref, client_latitude, client_longitude,"
                " client_city, client_country, client_address FROM referrals")).one()
            epoch = connection.execute(text("SELECT session_epoch FROM users")).scalar_one()
        # The oldest keeps the name; the younger active one is renamed past a taken "(#2)".
        assert [(row.id, row.name) for row in firms] == [
            (1, "Alpha"), (2, "ALPHA  (#2-2)"), (3, "alpha"), (4, "Bravo"), (5, "Alpha (#2)")]
        assert all(row.name_key == name_key(row.name) for row in firms)
        assert tuple(client) == ("Acme Ltd", "CRM-1", 22.6, 120.3, "Kaohsiung", "TW", None)
        assert epoch == 0
    finally:
        engine.dispose()
