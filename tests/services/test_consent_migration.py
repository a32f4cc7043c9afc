"""Migration 0013 on existing data: the consent and erasure columns come and go, the rows
before it stay, with no consent and not erased."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from tests.services.test_clients_migration import empty_database_url  # noqa: F401 (fixture)


def test_consent_and_erasure_columns_are_added_to_existing_rows_and_dropped(
    empty_database_url,  # noqa: F811
):
    from referral_service import create_app, migrate

    app = create_app({"DATABASE_URL": empty_database_url, "TESTING": True})
    engine = app.extensions["db_engine"]
    try:
        migrate.upgrade(app, "0012_user_preferences")
        with engine.begin() as connection:
            for number in (1, 2):
                connection.execute(text(
                    "INSERT INTO organizations (id, name, kind, description, active,"
                    " created_at, updated_at, version) VALUES (:id, :name, 'partner', '',"
                    " TRUE, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"),
                    {"id": number, "name": f"Firm {number}"})
            connection.execute(text(
                "INSERT INTO clients (id, name, normalized_name, created_at)"
                " VALUES (1, 'Old Client', 'oldclient', CURRENT_TIMESTAMP)"))
            connection.execute(text(
                "INSERT INTO referrals (id, referrer_organization_id, receiver_organization_id,"
                " client_id, skills, description, note, status, created_at, updated_at,"
                " version, source_kind, auto_reoffer) VALUES (1, 1, 2, 1, '[]', '', '',"
                " 'pending', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1, 'organization', TRUE)"))
        migrate.upgrade(app, "0013_client_consent_erasure")
        with engine.connect() as connection:
            referral = connection.execute(text(
                "SELECT client_consent_given_at, client_consent_by FROM referrals")).one()
            erased = connection.execute(text("SELECT erased_at FROM clients")).scalar_one()
        assert tuple(referral) == (None, None) and erased is None

        config = migrate.alembic_config(app)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.downgrade(config, "0012_user_preferences")
        with engine.connect() as connection:
            referral_columns = connection.execute(text("SELECT * FROM referrals")).keys()
            client_columns = connection.execute(text("SELECT * FROM clients")).keys()
            kept = connection.execute(text("SELECT count(*) FROM referrals")).scalar()
        assert not [c for c in referral_columns if c.startswith("client_consent")]
        assert "erased_at" not in client_columns
        assert kept == 1
    finally:
        engine.dispose()
