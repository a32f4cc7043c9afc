"""skill aliases and merged slugs (SPEC section 8)

Head office's other names for a skill ("cnc milling" -> cnc-machining), and what a merge of
two slugs leaves behind: the old slug, as an alias of the one it was merged into. One row an
alias; an alias is unique and never its own skill. The audit log's object_id grows from 50
to 100 characters, a skill slug's length: an alias or a merge is audited under its skill.

Revision ID: 0014_skill_aliases
Revises: 0013_client_consent_erasure
Create Date: 2026-12-01 18:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = '0014_skill_aliases'
down_revision = '0013_client_consent_erasure'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'skill_aliases',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('alias', sa.String(length=100), nullable=False),
        sa.Column('skill', sa.String(length=100), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.CheckConstraint('alias <> skill', name=op.f('ck_skill_aliases_not_itself')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_skill_aliases')),
        sa.UniqueConstraint('alias', name=op.f('uq_skill_aliases_alias')),
    )
    with op.batch_alter_table('skill_aliases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_skill_aliases_skill'), ['skill'], unique=False)
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.alter_column('object_id', existing_type=sa.String(length=50),
                              type_=sa.String(length=100), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.alter_column('object_id', existing_type=sa.String(length=100),
                              type_=sa.String(length=50), existing_nullable=False)
    with op.batch_alter_table('skill_aliases', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_skill_aliases_skill'))
    op.drop_table('skill_aliases')
