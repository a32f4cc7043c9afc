"""Standard Webhooks secrets and events (SPEC section 12)

Placeholder reserved in session 6 so that parallel work chains its migrations; filled by the
work it names.

Revision ID: 0016_standard_webhooks
Revises: 0015_organization_contact
Create Date: 2026-12-01 18:30:00.000000
"""

from __future__ import annotations

revision = '0016_standard_webhooks'
down_revision = '0015_organization_contact'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
