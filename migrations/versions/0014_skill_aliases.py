"""skill aliases and merged slugs (SPEC section 8)

Placeholder reserved in session 6 so that parallel work chains its migrations; filled by the
work it names.

Revision ID: 0014_skill_aliases
Revises: 0013_client_consent_erasure
Create Date: 2026-12-01 18:30:00.000000
"""

from __future__ import annotations

revision = '0014_skill_aliases'
down_revision = '0013_client_consent_erasure'
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
