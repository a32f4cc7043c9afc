"""people, departments, client visits and leads; where a referral came from (SPEC section 9)

New tables: departments, people, visits, leads. Referrals gain their source (kind, the client
or acquaintance or visit and lead it came from) and the people on each side; every existing
referral came from a firm, so its source_kind is 'organization'. Portal users gain the person
they are: every partner user becomes a person of its organization (named after the e-mail's
local part, which the firm can change), so existing sign-ins keep working.

Revision ID: 0005_people_visits_leads
Revises: 0004_client_place_ref_key
Create Date: 2026-12-01 12:45:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from models.base import UTCDateTime

revision = '0005_people_visits_leads'
down_revision = '0004_client_place_ref_key'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'departments',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('parent_id', sa.Integer(), nullable=True),
        sa.Column('head_person_id', sa.Integer(), nullable=True),
        sa.Column('external_ref', sa.String(length=100), nullable=True),
        sa.Column('external_ref_key', sa.String(length=100), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.CheckConstraint('parent_id IS NULL OR parent_id <> id',
                           name=op.f('ck_departments_not_own_parent')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_departments_organization_id_organizations')),
        sa.ForeignKeyConstraint(['organization_id', 'parent_id'],
                                ['departments.organization_id', 'departments.id'],
                                name='fk_departments_parent_same_organization'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_departments')),
        sa.UniqueConstraint('organization_id', 'id', name='uq_departments_organization_id_id'),
        sa.UniqueConstraint('organization_id', 'name',
                            name='uq_departments_organization_id_name'),
        sa.UniqueConstraint('organization_id', 'external_ref_key',
                            name='uq_departments_organization_id_external_ref_key'),
    )
    op.create_index(op.f('ix_departments_organization_id'), 'departments', ['organization_id'])
    op.create_table(
        'people',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=True),
        sa.Column('external_ref', sa.String(length=100), nullable=True),
        sa.Column('external_ref_key', sa.String(length=100), nullable=True),
        sa.Column('department_id', sa.Integer(), nullable=True),
        sa.Column('manager_id', sa.Integer(), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.CheckConstraint('manager_id IS NULL OR manager_id <> id',
                           name=op.f('ck_people_not_own_manager')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_people_organization_id_organizations')),
        sa.ForeignKeyConstraint(['organization_id', 'department_id'],
                                ['departments.organization_id', 'departments.id'],
                                name='fk_people_department_same_organization'),
        sa.ForeignKeyConstraint(['organization_id', 'manager_id'],
                                ['people.organization_id', 'people.id'],
                                name='fk_people_manager_same_organization'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_people')),
        sa.UniqueConstraint('organization_id', 'id', name='uq_people_organization_id_id'),
        sa.UniqueConstraint('organization_id', 'external_ref_key',
                            name='uq_people_organization_id_external_ref_key'),
    )
    op.create_index(op.f('ix_people_organization_id'), 'people', ['organization_id'])
    op.create_index('ix_people_manager_id', 'people', ['manager_id'])
    op.create_index('ix_people_department_id', 'people', ['department_id'])
    with op.batch_alter_table('departments', schema=None) as batch_op:
        batch_op.create_foreign_key('fk_departments_head_same_organization', 'people',
                                    ['organization_id', 'head_person_id'],
                                    ['organization_id', 'id'])
    op.create_table(
        'visits',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('client_id', sa.Integer(), nullable=False),
        sa.Column('visited_at', UTCDateTime(), nullable=False),
        sa.Column('commitment_description', sa.Text(), nullable=True),
        sa.Column('commitment_amount', sa.Numeric(precision=16, scale=2), nullable=True),
        sa.Column('commitment_currency', sa.String(length=3), nullable=True),
        sa.Column('commitment_expected_on', sa.Date(), nullable=True),
        sa.Column('notes', sa.Text(), nullable=False),
        sa.Column('empty_handed', sa.Boolean(), nullable=False),
        sa.Column('empty_handed_reason', sa.Text(), nullable=True),
        sa.Column('created_by', sa.String(length=200), nullable=False),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.CheckConstraint('NOT empty_handed OR empty_handed_reason IS NOT NULL',
                           name=op.f('ck_visits_empty_handed_has_reason')),
        sa.CheckConstraint('commitment_amount IS NULL OR commitment_amount >= 0',
                           name=op.f('ck_visits_commitment_amount_non_negative')),
        sa.ForeignKeyConstraint(['client_id'], ['clients.id'],
                                name=op.f('fk_visits_client_id_clients')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_visits_organization_id_organizations')),
        sa.ForeignKeyConstraint(['organization_id', 'person_id'],
                                ['people.organization_id', 'people.id'],
                                name='fk_visits_person_same_organization'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_visits')),
        sa.UniqueConstraint('organization_id', 'id', name='uq_visits_organization_id_id'),
    )
    op.create_index(op.f('ix_visits_client_id'), 'visits', ['client_id'])
    op.create_index('ix_visits_person_visited', 'visits', ['person_id', 'visited_at'])
    op.create_index('ix_visits_organization_visited', 'visits',
                    ['organization_id', 'visited_at'])
    op.create_table(
        'leads',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('visit_id', sa.Integer(), nullable=False),
        sa.Column('person_id', sa.Integer(), nullable=False),
        sa.Column('client_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('external_ref', sa.String(length=100), nullable=True),
        sa.Column('contact', sa.String(length=300), nullable=False),
        sa.Column('skills', sa.JSON(), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('relationship', sa.String(length=300), nullable=False),
        sa.Column('latitude', sa.Float(), nullable=True),
        sa.Column('longitude', sa.Float(), nullable=True),
        sa.Column('city', sa.String(length=100), nullable=True),
        sa.Column('country', sa.String(length=2), nullable=True),
        sa.Column('address', sa.String(length=300), nullable=True),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('status_reason', sa.Text(), nullable=True),
        sa.Column('referral_id', sa.Integer(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('updated_at', UTCDateTime(), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.CheckConstraint("status IN ('open', 'won', 'lost', 'referred')",
                           name=op.f('ck_leads_status')),
        sa.CheckConstraint("(status = 'referred') = (referral_id IS NOT NULL)",
                           name=op.f('ck_leads_referred_has_referral')),
        sa.ForeignKeyConstraint(['client_id'], ['clients.id'],
                                name=op.f('fk_leads_client_id_clients')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_leads_organization_id_organizations')),
        sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'],
                                name=op.f('fk_leads_referral_id_referrals')),
        sa.ForeignKeyConstraint(['organization_id', 'visit_id'],
                                ['visits.organization_id', 'visits.id'],
                                name='fk_leads_visit_same_organization'),
        sa.ForeignKeyConstraint(['organization_id', 'person_id'],
                                ['people.organization_id', 'people.id'],
                                name='fk_leads_person_same_organization'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_leads')),
        sa.UniqueConstraint('referral_id', name='uq_leads_referral_id'),
    )
    op.create_index(op.f('ix_leads_client_id'), 'leads', ['client_id'])
    op.create_index('ix_leads_person_status', 'leads', ['person_id', 'status'])
    op.create_index('ix_leads_organization_status', 'leads', ['organization_id', 'status'])
    op.create_index('ix_leads_visit_id', 'leads', ['visit_id'])

    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source_kind', sa.String(length=12), nullable=False,
                                      server_default='organization'))
        batch_op.add_column(sa.Column('source_client_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('source_name', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('source_contact', sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column('source_visit_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('source_lead_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('referred_by_person_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('owner_person_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_referrals_source_client_id_clients'), 'clients',
                                    ['source_client_id'], ['id'])
        batch_op.create_foreign_key(op.f('fk_referrals_source_visit_id_visits'), 'visits',
                                    ['source_visit_id'], ['id'])
        batch_op.create_foreign_key(op.f('fk_referrals_source_lead_id_leads'), 'leads',
                                    ['source_lead_id'], ['id'])
        batch_op.create_foreign_key(op.f('fk_referrals_referred_by_person_id_people'),
                                    'people', ['referred_by_person_id'], ['id'])
        batch_op.create_foreign_key(op.f('fk_referrals_owner_person_id_people'), 'people',
                                    ['owner_person_id'], ['id'])
        batch_op.create_check_constraint(
            op.f('ck_referrals_source_kind'), "source_kind IN ('organization', 'client', 'acquaintance', 'visit')")
        batch_op.create_check_constraint(
            'client_source_names_client',
            "source_kind <> 'client' OR source_client_id IS NOT NULL")
        batch_op.create_check_constraint(
            'acquaintance_source_named',
            "source_kind <> 'acquaintance' OR source_name IS NOT NULL")
        batch_op.create_check_constraint(
            'visit_source_names_lead',
            "source_kind <> 'visit' OR (source_visit_id IS NOT NULL"
            " AND source_lead_id IS NOT NULL)")
        batch_op.create_index('ix_referrals_source_kind', ['source_kind'])
        batch_op.create_index('ix_referrals_referred_by_person_id', ['referred_by_person_id'])
        batch_op.create_index('ix_referrals_owner_person_id', ['owner_person_id'])

    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.add_column(sa.Column('person_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(op.f('fk_users_person_id_people'), 'people',
                                    ['person_id'], ['id'])
        batch_op.create_unique_constraint(op.f('uq_users_person_id'), ['person_id'])
    _people_for_users()


def _people_for_users() -> None:
    """Make every partner user a person of its organization, and link the two."""
    connection = op.get_bind()
    users = sa.table('users', sa.column('id', sa.Integer), sa.column('email', sa.String),
                     sa.column('organization_id', sa.Integer), sa.column('active', sa.Boolean),
                     sa.column('created_at', UTCDateTime()),
                     sa.column('person_id', sa.Integer))
    people = sa.table('people', sa.column('id', sa.Integer),
                      sa.column('organization_id', sa.Integer), sa.column('name', sa.String),
                      sa.column('email', sa.String), sa.column('active', sa.Boolean),
                      sa.column('created_at', UTCDateTime()),
                      sa.column('updated_at', UTCDateTime()), sa.column('version', sa.Integer))
    rows = connection.execute(
        sa.select(users.c.id, users.c.email, users.c.organization_id, users.c.active,
                  users.c.created_at)
        .where(users.c.organization_id.is_not(None), users.c.person_id.is_(None))
        .order_by(users.c.id)).all()
    for user_id, email, organization_id, active, created_at in rows:
        person_id = connection.execute(people.insert().values(
            organization_id=organization_id, name=email.split('@')[0][:200], email=email,
            active=active, created_at=created_at, updated_at=created_at, version=1,
        ).returning(people.c.id)).scalar_one()
        connection.execute(users.update().where(users.c.id == user_id)
                           .values(person_id=person_id))


def downgrade() -> None:
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('uq_users_person_id'), type_='unique')
        batch_op.drop_constraint(op.f('fk_users_person_id_people'), type_='foreignkey')
        batch_op.drop_column('person_id')
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index('ix_referrals_owner_person_id')
        batch_op.drop_index('ix_referrals_referred_by_person_id')
        batch_op.drop_index('ix_referrals_source_kind')
        for name in ('visit_source_names_lead', 'acquaintance_source_named',
                     op.f('ck_referrals_client_source_names_client'), 'source_kind'):
            batch_op.drop_constraint(op.f(f'ck_referrals_{name}'), type_='check')
        for name in ('fk_referrals_owner_person_id_people',
                     'fk_referrals_referred_by_person_id_people',
                     'fk_referrals_source_lead_id_leads', 'fk_referrals_source_visit_id_visits',
                     'fk_referrals_source_client_id_clients'):
            batch_op.drop_constraint(op.f(name), type_='foreignkey')
        for column in ('owner_person_id', 'referred_by_person_id', 'source_lead_id',
                       'source_visit_id', 'source_contact', 'source_name', 'source_client_id',
                       'source_kind'):
            batch_op.drop_column(column)
    op.drop_table('leads')
    op.drop_table('visits')
    with op.batch_alter_table('departments', schema=None) as batch_op:
        batch_op.drop_constraint('fk_departments_head_same_organization', type_='foreignkey')
    op.drop_table('people')
    op.drop_table('departments')
