"""KPI indexes: referrals by created_at, KPI targets by month

The monthly KPI reads one month of referrals by created_at, accepted_at or converted_at; the
last two had indexes, the first only led composite ones, so each export scanned the table.

Revision ID: 0003_kpi_indexes
Revises: 0002_webhooks
Create Date: 2026-11-27 03:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = '0003_kpi_indexes'
down_revision = '0002_webhooks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.create_index('ix_referrals_created_at', ['created_at'], unique=False)
    with op.batch_alter_table('kpi_targets', schema=None) as batch_op:
        batch_op.create_index('ix_kpi_targets_month', ['month'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('kpi_targets', schema=None) as batch_op:
        batch_op.drop_index('ix_kpi_targets_month')
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index('ix_referrals_created_at')
