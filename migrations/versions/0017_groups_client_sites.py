"""groups as objects and client sites (SPEC section 8)

Placeholder reserved in session 6 so that parallel work chains its migrations; filled by the
work it names.

Revision ID: 0017_groups_client_sites
Revises: 0016_standard_webhooks
Create Date: 2026-12-01 18:30:00.000000
"""

from __future__ import annotations

revision = '0017_groups_client_sites'
down_revision = '0016_standard_webhooks'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
