"""clients' consent and erasure (SPEC section 11)

A referral records the client's consent to being referred: referrals.client_consent_given_at
and client_consent_by (who gave or recorded it), null on rows written before. clients.erased_at
marks a client whose personal data was erased for good (flask erase-client,
DELETE /clients/{id}, purge-personal-data); its rows stay, with a placeholder name.

Revision ID: 0013_client_consent_erasure
Revises: 0012_user_preferences
Create Date: 2026-12-01 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = '0013_client_consent_erasure'
down_revision = '0012_user_preferences'
branch_labels = None
depends_on = None


# Columns are added and dropped in place (ALTER TABLE, SQLite 3.35+ alike): a batch copy of
# clients or referrals would have to drop a table other tables' foreign keys point at.
def upgrade() -> None:
    op.add_column('referrals', sa.Column('client_consent_given_at', UTCDateTime(),
                                         nullable=True))
    op.add_column('referrals', sa.Column('client_consent_by', sa.String(length=200),
                                         nullable=True))
    op.add_column('clients', sa.Column('erased_at', UTCDateTime(), nullable=True))


def downgrade() -> None:
    for table, column in (('clients', 'erased_at'), ('referrals', 'client_consent_by'),
                          ('referrals', 'client_consent_given_at')):
        op.execute(f'ALTER TABLE {table} DROP COLUMN {column}')
