"""a portal user's language and time zone, kept in their profile

SPEC section 12: the portal's language is chosen by the user and kept in their profile (and
the time zone with it), so that it follows them to another browser. Null: not chosen yet (the
browser's Accept-Language and the language's usual zone then decide).

Revision ID: 0012_user_preferences
Revises: 0011_reoffer_chain
Create Date: 2026-12-01 16:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012_user_preferences'
down_revision = '0011_reoffer_chain'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column('time_zone', sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_column('time_zone')
        batch_op.drop_column('language')
