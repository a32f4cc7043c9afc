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


def upgrade() -> None:
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('client_consent_given_at', UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('client_consent_by', sa.String(length=200),
                                      nullable=True))
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('clients', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_column('client_consent_by')
        batch_op.drop_column('client_consent_given_at')
