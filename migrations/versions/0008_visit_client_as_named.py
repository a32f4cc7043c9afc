"""visits keep their client as the salesperson named it (as referrals do since 0006)

A visit showed the stored client, so a salesperson naming another firm's client by its CRM id
saw that firm's name and place for it. Visits gain client_name ... client_address; existing
rows are filled from the client row.

Revision ID: 0008_visit_client_as_named
Revises: 0007_agreed_targets
Create Date: 2026-12-01 14:25:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008_visit_client_as_named'
down_revision = '0007_agreed_targets'
branch_labels = None
depends_on = None

CLIENT_COLUMNS = (
    ('client_name', 'name', sa.String(length=200)),
    ('client_external_ref', 'external_ref', sa.String(length=100)),
    ('client_latitude', 'latitude', sa.Float()),
    ('client_longitude', 'longitude', sa.Float()),
    ('client_city', 'city', sa.String(length=100)),
    ('client_country', 'country', sa.String(length=2)),
    ('client_address', 'address', sa.String(length=300)),
)


def upgrade() -> None:
    with op.batch_alter_table('visits') as batch:
        for column, _, type_ in CLIENT_COLUMNS:
            batch.add_column(sa.Column(column, type_, nullable=True))
    op.execute(
        "UPDATE visits SET " + ", ".join(
            f"{column} = (SELECT clients.{source} FROM clients"
            " WHERE clients.id = visits.client_id)" for column, source, _ in CLIENT_COLUMNS))


def downgrade() -> None:
    with op.batch_alter_table('visits') as batch:
        for column, _, _type in reversed(CLIENT_COLUMNS):
            batch.drop_column(column)
