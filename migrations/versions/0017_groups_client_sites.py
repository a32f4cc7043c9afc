"""groups as objects and client sites (SPEC section 8)

- groups (name, name_key unique: one group per name whatever its case); organizations.group_id
  replaces organizations.group_name, each distinct name becoming one group (the spelling of
  the lowest organization id that used it), data included;
- client_sites (a client's work sites, each recorded by one firm); referrals.client_site_id
  and client_site_label (the site a referral is for, as named).

Columns are added and dropped with plain ALTER TABLE on both databases (SQLite 3.35+ drops
columns): Alembic's batch mode would copy and drop `organizations`, and with SQLite's foreign
keys on, dropping it deletes every office (ON DELETE CASCADE).

Revision ID: 0017_groups_client_sites
Revises: 0015_organization_contact
Create Date: 2026-12-01 18:30:00.000000
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime
from models.organization import name_key

revision = '0017_groups_client_sites'
down_revision = '0015_organization_contact'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'groups',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('name_key', sa.String(length=64), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_groups')),
        sa.UniqueConstraint('name_key', name=op.f('uq_groups_name_key')),
    )
    _add_reference('organizations', 'group_id', 'groups')
    op.create_index(op.f('ix_organizations_group_id'), 'organizations', ['group_id'])
    _groups_from_names()
    op.execute('ALTER TABLE organizations DROP COLUMN group_name')

    op.create_table(
        'client_sites',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('client_id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('label', sa.String(length=100), nullable=False),
        sa.Column('label_key', sa.String(length=100), nullable=False),
        sa.Column('latitude', sa.Float(), nullable=False),
        sa.Column('longitude', sa.Float(), nullable=False),
        sa.Column('city', sa.String(length=100), nullable=True),
        sa.Column('country', sa.String(length=2), nullable=True),
        sa.Column('address', sa.String(length=300), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.CheckConstraint('latitude BETWEEN -90 AND 90',
                           name=op.f('ck_client_sites_latitude_range')),
        sa.CheckConstraint('longitude BETWEEN -180 AND 180',
                           name=op.f('ck_client_sites_longitude_range')),
        sa.ForeignKeyConstraint(['client_id'], ['clients.id'],
                                name=op.f('fk_client_sites_client_id_clients'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_client_sites_organization_id_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_client_sites')),
    )
    op.create_index('uq_client_sites_label', 'client_sites',
                    ['client_id', 'organization_id', 'label_key'], unique=True)
    op.create_index(op.f('ix_client_sites_organization_id'), 'client_sites',
                    ['organization_id'])
    _add_reference('referrals', 'client_site_id', 'client_sites')
    op.add_column('referrals', sa.Column('client_site_label', sa.String(length=100),
                                         nullable=True))


def downgrade() -> None:
    op.execute('ALTER TABLE referrals DROP COLUMN client_site_label')
    _drop_reference('referrals', 'client_site_id', 'client_sites')
    op.drop_index(op.f('ix_client_sites_organization_id'), table_name='client_sites')
    op.drop_index('uq_client_sites_label', table_name='client_sites')
    op.drop_table('client_sites')

    op.add_column('organizations', sa.Column('group_name', sa.String(length=100),
                                             nullable=True))
    op.execute('UPDATE organizations SET group_name = (SELECT groups.name FROM groups'
               ' WHERE groups.id = organizations.group_id)')
    op.drop_index(op.f('ix_organizations_group_id'), table_name='organizations')
    _drop_reference('organizations', 'group_id', 'groups')
    op.drop_table('groups')


def _add_reference(table: str, column: str, referred: str) -> None:
    """Add a nullable integer column with a named foreign key to `referred`.id."""
    constraint = f'fk_{table}_{column}_{referred}'
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite adds a column's foreign key only inline, with the column.
        op.execute(f'ALTER TABLE {table} ADD COLUMN {column} INTEGER'
                   f' CONSTRAINT {constraint} REFERENCES {referred} (id)')
        return
    op.add_column(table, sa.Column(column, sa.Integer(), nullable=True))
    op.create_foreign_key(constraint, table, referred, [column], ['id'])


def _drop_reference(table: str, column: str, referred: str) -> None:
    """Drop a column added by _add_reference, with its foreign key."""
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint(f'fk_{table}_{column}_{referred}', table, type_='foreignkey')
    op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')


def _groups_from_names() -> None:
    """Make one group of each distinct group name (case and width aside) and point every
    organization that named it there."""
    bind = op.get_bind()
    organizations = sa.table('organizations', sa.column('id', sa.Integer),
                             sa.column('group_name', sa.String),
                             sa.column('group_id', sa.Integer))
    groups = sa.table('groups', sa.column('id', sa.Integer), sa.column('name', sa.String),
                      sa.column('name_key', sa.String), sa.column('created_at', UTCDateTime))
    rows = bind.execute(sa.select(organizations.c.id, organizations.c.group_name)
                        .where(organizations.c.group_name.is_not(None))
                        .order_by(organizations.c.id)).all()
    members: dict[str, list[int]] = {}
    names: dict[str, str] = {}
    for organization_id, group_name in rows:
        name = group_name.strip()
        if not name:
            continue
        key = name_key(name)
        names.setdefault(key, name)  # the first firm's spelling names the group
        members.setdefault(key, []).append(organization_id)
    now = datetime.now(UTC)
    for key, name in names.items():
        group_id = bind.execute(sa.insert(groups).values(name=name, name_key=key,
                                                         created_at=now)
                                .returning(groups.c.id)).scalar_one()
        ids = members[key]
        for start in range(0, len(ids), 1000):
            bind.execute(sa.update(organizations)
                         .where(organizations.c.id.in_(ids[start:start + 1000]))
                         .values(group_id=group_id))
