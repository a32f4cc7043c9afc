"""a closed month's export bytes, and corrections of department and person rows

SPEC section 10 and issue 14: a closed month's export served from what was stored at close
at least 10x faster than recomputing it. Writing the XLSX dominated serving it from the
snapshot rows (1.2-1.3x), so closing now stores the bytes of every level and format
(kpi_month_exports, zlib-compressed). A correction names the row it corrects: its level and
the department's or person's id (kpi_corrections.level, row_id; none was written before this
revision). A month closed before this revision has no stored bytes: it is still served from
its snapshot rows, now with the JSON's `corrections` list (empty) added.

Revision ID: 0010_closed_month_exports
Revises: 0009_closed_months
Create Date: 2026-12-01 15:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0010_closed_month_exports'
down_revision = '0009_closed_months'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'kpi_month_exports',
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('level', sa.String(length=12), nullable=False),
        sa.Column('format', sa.String(length=4), nullable=False),
        sa.Column('body_zlib', sa.LargeBinary(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['month'], ['kpi_months.month'],
                                name=op.f('fk_kpi_month_exports_month_kpi_months')),
        sa.PrimaryKeyConstraint('month', 'level', 'format', name=op.f('pk_kpi_month_exports')),
    )
    op.add_column('kpi_corrections', sa.Column('level', sa.String(length=12), nullable=False,
                                               server_default='organization'))
    op.add_column('kpi_corrections', sa.Column('row_id', sa.Integer(), nullable=True))
    op.create_index('ix_kpi_corrections_correction_of', 'kpi_corrections', ['correction_of'])


def downgrade() -> None:
    op.drop_index('ix_kpi_corrections_correction_of', table_name='kpi_corrections')
    with op.batch_alter_table('kpi_corrections') as batch:
        batch.drop_column('row_id')
        batch.drop_column('level')
    op.drop_table('kpi_month_exports')
