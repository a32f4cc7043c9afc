"""re-offer: a referral's previous referral, its chain's first, and its auto_reoffer choice

SPEC section 11 and issue 15: a declined or expired referral is referred on to the next best
firm. referrals.previous_referral_id names the referral a re-offer follows (unique: a
referral is re-offered at most once, whatever races), chain_root_id the chain's first
referral (null on the first itself; indexed, so a page of referrals reads its chains in one
query), and auto_reoffer whether a decline or expiry re-offers. Rows written before this
revision get auto_reoffer true (the default of AUTO_REOFFER) and no chain.

Revision ID: 0011_reoffer_chain
Revises: 0010_closed_month_exports
Create Date: 2026-12-01 16:10:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0011_reoffer_chain'
down_revision = '0010_closed_month_exports'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('previous_referral_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('chain_root_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('auto_reoffer', sa.Boolean(), nullable=False,
                                      server_default=sa.true()))
        batch_op.create_foreign_key(op.f('fk_referrals_previous_referral_id_referrals'),
                                    'referrals', ['previous_referral_id'], ['id'])
        batch_op.create_foreign_key(op.f('fk_referrals_chain_root_id_referrals'),
                                    'referrals', ['chain_root_id'], ['id'])
        batch_op.create_unique_constraint(op.f('uq_referrals_previous_referral_id'),
                                          ['previous_referral_id'])
        batch_op.create_index(op.f('ix_referrals_chain_root_id'), ['chain_root_id'])


def downgrade() -> None:
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index(op.f('ix_referrals_chain_root_id'))
        batch_op.drop_constraint(op.f('uq_referrals_previous_referral_id'), type_='unique')
        batch_op.drop_constraint(op.f('fk_referrals_chain_root_id_referrals'),
                                 type_='foreignkey')
        batch_op.drop_constraint(op.f('fk_referrals_previous_referral_id_referrals'),
                                 type_='foreignkey')
        batch_op.drop_column('auto_reoffer')
        batch_op.drop_column('chain_root_id')
        batch_op.drop_column('previous_referral_id')
