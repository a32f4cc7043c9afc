"""a firm's contact for referrers (issue 16)

Placeholder reserved in session 6 so that parallel work chains its migrations; filled by the
work it names.

Revision ID: 0015_organization_contact
Revises: 0014_skill_aliases
Create Date: 2026-12-01 18:30:00.000000
"""

from __future__ import annotations

revision = '0015_organization_contact'
down_revision = '0014_skill_aliases'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
