"""a firm's business contact for referrers (issue 16)

An organization may give a contact (a name, an e-mail address, a phone number, each optional)
that every signed-in portal user reads on the firm's page, one click from a match list, and
every API key that may read the organization. Null: none given.

Revision ID: 0015_organization_contact
Revises: 0014_skill_aliases
Create Date: 2026-12-01 18:30:00.000000
"""

from __future__ import annotations

from alembic import op

revision = '0015_organization_contact'
down_revision = '0014_skill_aliases'
branch_labels = None
depends_on = None

# (column, type, its check's name, the check): as models/organization.py states them.
COLUMNS = (
    ('contact_name', 'VARCHAR(200)', 'ck_organizations_contact_name_length',
     'contact_name IS NULL OR length(contact_name) BETWEEN 1 AND 200'),
    ('contact_email', 'VARCHAR(254)', 'ck_organizations_contact_email_format',
     "contact_email IS NULL OR (length(contact_email) <= 254 AND contact_email LIKE '%_@_%')"),
    ('contact_phone', 'VARCHAR(40)', 'ck_organizations_contact_phone_length',
     'contact_phone IS NULL OR length(contact_phone) BETWEEN 5 AND 40'),
)


def upgrade() -> None:
    # Each column with its check inline, in place: a batch copy of organizations (SQLite adds
    # a check no other way) would cascade-delete the firms' offices (see 0017).
    for column, type_, check_name, check in COLUMNS:
        op.execute(f'ALTER TABLE organizations ADD COLUMN {column} {type_}'
                   f' CONSTRAINT {check_name} CHECK ({check})')


def downgrade() -> None:
    # A column's own check goes with it, on SQLite and PostgreSQL alike.
    for column, _type, _check_name, _check in reversed(COLUMNS):
        op.execute(f'ALTER TABLE organizations DROP COLUMN {column}')
