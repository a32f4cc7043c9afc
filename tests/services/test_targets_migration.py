"""Migration 0007 on existing data: every old target stays, as an organization's target
agreed by head office; the downgrade gives the organizations' targets back."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from tests.services.test_clients_migration import empty_database_url  # noqa: F401 (fixture)

OLD_TARGETS = [(1, "2026-01", 5), (1, "2026-02", 0), (2, "2026-01", 12)]


def test_existing_targets_become_organization_targets_agreed_by_head_office(
    empty_database_url,  # noqa: F811
):
    from referral_service import create_app, migrate

    app = create_app({"DATABASE_URL": empty_database_url, "TESTING": True})
    engine = app.extensions["db_engine"]
    try:
        migrate.upgrade(app, "0005_people_visits_leads")
        with engine.begin() as connection:
            for number, name in ((1, "Alpha"), (2, "Bravo")):
                connection.execute(text(
                    "INSERT INTO organizations (id, name, kind, description, active, created_at,"
                    " updated_at, version) VALUES (:id, :name, 'partner', '', TRUE,"
                    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"), {"id": number, "name": name})
            for organization, month, value in OLD_TARGETS:
                connection.execute(text(
                    "INSERT INTO kpi_targets (organization_id, month, new_clients, updated_at)"
                    " VALUES (:org, :month, :value, '2026-01-31 10:00:00')"),
                    {"org": organization, "month": month, "value": value})
        migrate.upgrade(app)
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT scope, scope_id, month, organization_id, new_clients, agreed_by,"
                " proposal_id FROM kpi_targets ORDER BY scope_id, month")).all()
            proposals = connection.execute(text(
                "SELECT count(*) FROM kpi_target_proposals")).scalar()
        assert [tuple(row) for row in rows] == [
            ("organization", org, month, org, value, "head office", None)
            for org, month, value in OLD_TARGETS]
        assert proposals == 0

        command.downgrade(migrate.alembic_config(app), "0006_security_round_two")
        with engine.connect() as connection:
            back = connection.execute(text(
                "SELECT organization_id, month, new_clients FROM kpi_targets"
                " ORDER BY organization_id, month")).all()
        assert [tuple(row) for row in back] == OLD_TARGETS
    finally:
        engine.dispose()
