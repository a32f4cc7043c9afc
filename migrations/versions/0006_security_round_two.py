"""issue 11: the client as the referrer named it; revocable portal sessions; unique firm names

- referrals gain the client as their referrer named it (client_name, client_external_ref and
  the place: client_latitude, client_longitude, client_city, client_country, client_address),
  which is what the API and the portal show of a referral's client. Existing referrals are
  filled in from their client's row (what they showed until now).
- users gain session_epoch: a portal session carries the epoch it began in, and signing out,
  a new password or deactivation raises it, ending every session of that user.
- organizations gain name_key (models.organization.name_key: the name NFKC-normalized,
  case-folded, blanks collapsed, as a SHA-256 digest) and a unique index on it among active
  firms. Where active firms already share a name, the oldest keeps it and each other one is
  renamed "<name> (#<id>)", so that nothing is deactivated and every firm stays findable.

Revision ID: 0006_security_round_two
Revises: 0005_people_visits_leads
Create Date: 2026-12-14 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.organization import name_key

revision = '0006_security_round_two'
down_revision = '0005_people_visits_leads'
branch_labels = None
depends_on = None

NAME_LENGTH = 200  # organizations.name
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
    with op.batch_alter_table('referrals') as batch:
        for column, _, type_ in CLIENT_COLUMNS:
            batch.add_column(sa.Column(column, type_, nullable=True))
    op.execute(
        "UPDATE referrals SET " + ", ".join(
            f"{column} = (SELECT clients.{source} FROM clients"
            " WHERE clients.id = referrals.client_id)" for column, source, _ in CLIENT_COLUMNS))

    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('session_epoch', sa.Integer(), server_default='0',
                                   nullable=False))

    with op.batch_alter_table('organizations') as batch:
        batch.add_column(sa.Column('name_key', sa.String(length=64), nullable=True))
    _fill_name_keys()
    op.create_index('uq_organizations_active_name_key', 'organizations', ['name_key'],
                    unique=True, sqlite_where=sa.text('active'),
                    postgresql_where=sa.text('active'))


def _fill_name_keys() -> None:
    """Key every firm; rename the younger of active firms that share a name."""
    connection = op.get_bind()
    organizations = sa.table('organizations', sa.column('id', sa.Integer),
                             sa.column('name', sa.String), sa.column('active', sa.Boolean),
                             sa.column('name_key', sa.String))
    rows = connection.execute(sa.select(organizations.c.id, organizations.c.name,
                                        organizations.c.active)
                              .order_by(organizations.c.id)).all()
    taken = {name_key(row.name) for row in rows if row.active}
    held: set[str] = set()
    values = []
    for row in rows:
        name, key = row.name, name_key(row.name)
        if row.active:
            if key in held:
                name, key = _renamed(row.name, row.id, taken)
                taken.add(key)
            held.add(key)
        values.append({"b_id": row.id, "b_name": name, "b_name_key": key})
    if values:  # one executemany
        connection.execute(organizations.update()
                           .where(organizations.c.id == sa.bindparam("b_id"))
                           .values(name=sa.bindparam("b_name"),
                                   name_key=sa.bindparam("b_name_key")), values)


def _renamed(name: str, organization_id: int, taken: set[str]) -> tuple[str, str]:
    """Return the first of "<name> (#id)", "<name> (#id-2)", ... that no active firm has."""
    attempt = 1
    while True:
        suffix = f" (#{organization_id})" if attempt == 1 else f" (#{organization_id}-{attempt})"
        candidate = name[:NAME_LENGTH - len(suffix)] + suffix
        if name_key(candidate) not in taken:
            return candidate, name_key(candidate)
        attempt += 1


def downgrade() -> None:
    op.drop_index('uq_organizations_active_name_key', table_name='organizations')
    with op.batch_alter_table('organizations') as batch:
        batch.drop_column('name_key')
    with op.batch_alter_table('users') as batch:
        batch.drop_column('session_epoch')
    with op.batch_alter_table('referrals') as batch:
        for column, _, _ in reversed(CLIENT_COLUMNS):
            batch.drop_column(column)
