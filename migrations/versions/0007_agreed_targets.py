"""KPI targets agreed between two sides, at organization, department and person level

kpi_targets was one number per organization and month that head office set. It becomes the
agreed target of a scope (organization, department or person) and month, with who agreed it
and the proposal agreed (SPEC section 10); every existing row is an organization's target,
agreed by head office. kpi_target_proposals holds the proposals, counters and decisions, at
most one open per scope and month.

Revision ID: 0007_agreed_targets
Revises: 0006_security_round_two
Create Date: 2026-12-01 13:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = '0007_agreed_targets'
down_revision = '0006_security_round_two'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'kpi_target_proposals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('scope', sa.String(length=12), nullable=False),
        sa.Column('scope_id', sa.Integer(), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('new_clients', sa.Integer(), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('side', sa.String(length=12), nullable=False),
        sa.Column('proposed_by', sa.String(length=200), nullable=False),
        sa.Column('proposed_by_person_id', sa.Integer(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('decided_by', sa.String(length=200), nullable=True),
        sa.Column('decided_at', UTCDateTime(), nullable=True),
        sa.Column('decision_note', sa.Text(), nullable=True),
        sa.Column('counter_of_id', sa.Integer(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.CheckConstraint('new_clients >= 0', name=op.f('ck_kpi_target_proposals_non_negative')),
        sa.CheckConstraint("scope IN ('organization', 'department', 'person')",
                           name=op.f('ck_kpi_target_proposals_scope')),
        sa.CheckConstraint("status IN ('proposed', 'agreed', 'countered', 'declined',"
                           " 'withdrawn')", name=op.f('ck_kpi_target_proposals_status')),
        sa.ForeignKeyConstraint(['counter_of_id'], ['kpi_target_proposals.id'],
                                name=op.f('fk_kpi_target_proposals_counter_of_id_kpi_target_proposals')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_kpi_target_proposals_organization_id_organizations')),
        sa.ForeignKeyConstraint(['proposed_by_person_id'], ['people.id'],
                                name=op.f('fk_kpi_target_proposals_proposed_by_person_id_people')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_kpi_target_proposals')),
    )
    op.create_index('uq_kpi_target_proposals_open', 'kpi_target_proposals',
                    ['scope', 'scope_id', 'month'], unique=True,
                    sqlite_where=sa.text("status = 'proposed'"),
                    postgresql_where=sa.text("status = 'proposed'"))
    op.create_index('ix_kpi_target_proposals_scope', 'kpi_target_proposals',
                    ['scope', 'scope_id', 'month'])
    op.create_index('ix_kpi_target_proposals_organization', 'kpi_target_proposals',
                    ['organization_id', 'status'])

    # The old table steps aside (on PostgreSQL its primary key's index name is global).
    op.drop_index('ix_kpi_targets_month', table_name='kpi_targets')
    op.rename_table('kpi_targets', 'kpi_targets_old')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER INDEX pk_kpi_targets RENAME TO pk_kpi_targets_old')
    op.create_table(
        'kpi_targets',
        sa.Column('scope', sa.String(length=12), nullable=False),
        sa.Column('scope_id', sa.Integer(), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('new_clients', sa.Integer(), nullable=False),
        sa.Column('agreed_by', sa.String(length=200), nullable=False),
        sa.Column('proposal_id', sa.Integer(), nullable=True),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.CheckConstraint('new_clients >= 0', name=op.f('ck_kpi_targets_non_negative')),
        sa.CheckConstraint("scope IN ('organization', 'department', 'person')",
                           name=op.f('ck_kpi_targets_scope')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_kpi_targets_organization_id_organizations')),
        sa.ForeignKeyConstraint(['proposal_id'], ['kpi_target_proposals.id'],
                                name=op.f('fk_kpi_targets_proposal_id_kpi_target_proposals')),
        sa.PrimaryKeyConstraint('scope', 'scope_id', 'month', name=op.f('pk_kpi_targets')),
    )
    op.execute(
        "INSERT INTO kpi_targets (scope, scope_id, month, organization_id, new_clients,"
        " agreed_by, proposal_id, updated_at)"
        " SELECT 'organization', organization_id, month, organization_id, new_clients,"
        " 'head office', NULL, updated_at FROM kpi_targets_old")
    op.drop_table('kpi_targets_old')
    op.create_index('ix_kpi_targets_month', 'kpi_targets', ['month'])


def downgrade() -> None:
    op.drop_index('ix_kpi_targets_month', table_name='kpi_targets')
    op.rename_table('kpi_targets', 'kpi_targets_new')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER INDEX pk_kpi_targets RENAME TO pk_kpi_targets_new')
    op.create_table(
        'kpi_targets',
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('new_clients', sa.Integer(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.CheckConstraint('new_clients >= 0', name=op.f('ck_kpi_targets_non_negative')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_kpi_targets_organization_id_organizations')),
        sa.PrimaryKeyConstraint('organization_id', 'month', name=op.f('pk_kpi_targets')),
    )
    op.execute(
        "INSERT INTO kpi_targets (organization_id, month, new_clients, updated_at)"
        " SELECT scope_id, month, new_clients, updated_at FROM kpi_targets_new"
        " WHERE scope = 'organization'")
    op.drop_table('kpi_targets_new')
    op.drop_table('kpi_target_proposals')
    op.create_index('ix_kpi_targets_month', 'kpi_targets', ['month'])
