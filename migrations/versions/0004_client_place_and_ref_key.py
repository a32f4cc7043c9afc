"""clients: the place as given (city, country, address); the CRM id compared case-insensitively

A client's location was kept only as coordinates: the city, country and address the CRM sent
were lost. And "crm-400" and "CRM-400 " were two clients: external_ref is now kept trimmed and
"the same CRM id" is judged on external_ref_key (trimmed, case-folded), which takes over the
unique constraint from external_ref.

Existing rows get their key here. Where two existing clients fold to one key, the oldest keeps
it and the others keep their external_ref (and their referrals) but no key, so new referrals
with that CRM id go to the oldest.

Revision ID: 0004_client_place_ref_key
Revises: 0003_kpi_indexes
Create Date: 2026-12-10 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0004_client_place_ref_key'
down_revision = '0003_kpi_indexes'
branch_labels = None
depends_on = None

BATCH = 5_000


def upgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('external_ref_key', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('city', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('country', sa.String(length=2), nullable=True))
        batch_op.add_column(sa.Column('address', sa.String(length=300), nullable=True))
        batch_op.drop_constraint('uq_clients_external_ref', type_='unique')
    _fill_keys()
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.create_unique_constraint(batch_op.f('uq_clients_external_ref_key'),
                                          ['external_ref_key'])


def _fill_keys() -> None:
    """Trim every external_ref and give it its key; a folded duplicate gets none (above)."""
    connection = op.get_bind()
    clients = sa.table('clients', sa.column('id', sa.Integer),
                       sa.column('external_ref', sa.String),
                       sa.column('external_ref_key', sa.String))
    taken: set[str] = set()
    changes = []
    for client_id, external_ref in connection.execute(
        sa.select(clients.c.id, clients.c.external_ref)
        .where(clients.c.external_ref.is_not(None)).order_by(clients.c.id)
    ):
        trimmed = external_ref.strip() or None
        key = trimmed.casefold()[:100] if trimmed else None
        if key in taken:
            key = None
        elif key is not None:
            taken.add(key)
        changes.append({"client_id": client_id, "ref": trimmed or external_ref, "key": key})
    update = (clients.update().where(clients.c.id == sa.bindparam("client_id"))
              .values(external_ref=sa.bindparam("ref"), external_ref_key=sa.bindparam("key")))
    for start in range(0, len(changes), BATCH):
        connection.execute(update, changes[start:start + BATCH])


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_clients_external_ref_key'), type_='unique')
        batch_op.drop_column('address')
        batch_op.drop_column('country')
        batch_op.drop_column('city')
        batch_op.drop_column('external_ref_key')
        batch_op.create_unique_constraint('uq_clients_external_ref', ['external_ref'])
