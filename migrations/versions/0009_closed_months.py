"""closed KPI months, their frozen rows, and corrections booked in a later open month

SPEC section 10: head office closes a month; its rows of every level are stored as computed
then (kpi_month_snapshots) and its exports are made from them for ever. A later change to a
closed month's figures becomes a row of kpi_corrections in the first open month.

Revision ID: 0009_closed_months
Revises: 0008_visit_client_as_named
Create Date: 2026-12-01 14:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = '0009_closed_months'
down_revision = '0008_visit_client_as_named'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'kpi_months',
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('closed_at', UTCDateTime(), nullable=False),
        sa.Column('closed_by', sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint('month', name=op.f('pk_kpi_months')),
    )
    op.create_table(
        'kpi_month_snapshots',
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('level', sa.String(length=12), nullable=False),
        sa.Column('rows', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['month'], ['kpi_months.month'],
                                name=op.f('fk_kpi_month_snapshots_month_kpi_months')),
        sa.PrimaryKeyConstraint('month', 'level', name=op.f('pk_kpi_month_snapshots')),
    )
    op.create_table(
        'kpi_corrections',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('correction_of', sa.String(length=7), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('referral_ids', sa.JSON(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('deltas', sa.JSON(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('actor', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['correction_of'], ['kpi_months.month'],
                                name=op.f('fk_kpi_corrections_correction_of_kpi_months')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_kpi_corrections_organization_id_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_kpi_corrections')),
    )
    op.create_index('ix_kpi_corrections_month', 'kpi_corrections', ['month'])


def downgrade() -> None:
    op.drop_index('ix_kpi_corrections_month', table_name='kpi_corrections')
    op.drop_table('kpi_corrections')
    op.drop_table('kpi_month_snapshots')
    op.drop_table('kpi_months')
