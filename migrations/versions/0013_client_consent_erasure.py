"""clients' consent and erasure (SPEC section 11)

Placeholder reserved in session 6 so that parallel work chains its migrations; filled by the
work it names.

Revision ID: 0013_client_consent_erasure
Revises: 0012_user_preferences
Create Date: 2026-12-01 18:30:00.000000
"""

from __future__ import annotations

revision = '0013_client_consent_erasure'
down_revision = '0012_user_preferences'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
